/**
 * One-time boot override, on the system or its `@Redfish.Settings` object as
 * the BMC wants, with the target mapped through the profile.
 */
import type { RedfishClient, RedfishJson } from '../client.js';
import { RedfishError } from '../errors.js';
import type { BmcProbe } from '../probe.js';
import type { VendorProfile } from '../profiles/index.js';
import {
  type BootDevice,
  type BootPersistence,
  bootDeviceToRedfish,
  bootModeToRedfish,
  bootPersistenceToRedfish,
} from '../vocabulary.js';

/** The Redfish BootSourceOverrideTarget for a neutral device on this BMC (Cd → UsbCd on Supermicro). */
export function bootTargetFor(
  device: BootDevice,
  profile: VendorProfile,
  allowable: readonly string[],
): string {
  return device === 'cd' ? profile.hooks.cdBootTarget(allowable) : bootDeviceToRedfish(device);
}

/**
 * Where Boot must be PATCHed: the settings object when the profile says always (BlueField), or when the
 * profile defers to the BMC and the settings object carries Boot (sushy); else the system.
 */
export async function bootResource(client: RedfishClient, probe: BmcProbe): Promise<string> {
  const { system, profile } = probe;
  if (!system.settingsPath || profile.boot.where === 'system') return system.path;
  if (profile.boot.where === 'settings-always') return system.settingsPath;
  try {
    const s = (await client.get(system.settingsPath)).body;
    return s.Boot && typeof s.Boot === 'object' ? system.settingsPath : system.path;
  } catch (err) {
    if (client.signal?.aborted) throw err; // the run's deadline, not an unreadable settings object
    return system.path;
  }
}

/** Sets a boot override. Returns a detail line. */
export async function setBootOverride(
  client: RedfishClient,
  probe: BmcProbe,
  device: BootDevice,
  persistence: BootPersistence,
  extra: RedfishJson = {},
): Promise<string> {
  const { system, profile } = probe;
  if (!system.hasBoot)
    throw new RedfishError(
      'REDFISH_ERR_UNSUPPORTED',
      `system ${system.id} has no Boot object: no boot override possible`,
    );
  const target = device === 'none' ? 'None' : bootTargetFor(device, profile, system.bootTargetsRaw);
  if (system.bootTargetsRaw.length > 0 && !system.bootTargetsRaw.includes(target))
    throw new RedfishError(
      'REDFISH_ERR_UNSUPPORTED',
      `boot target ${target} is not offered by ${system.id} (AllowableValues: ${system.bootTargetsRaw.join(', ')})`,
    );
  const boot: RedfishJson = {
    BootSourceOverrideTarget: target,
    // Supermicro needs BootSourceOverrideEnabled in every request (Ironic management.py): always sent.
    BootSourceOverrideEnabled: bootPersistenceToRedfish(persistence),
    ...extra,
  };
  if (
    device !== 'none' &&
    profile.boot.sendMode &&
    system.bootModeReported &&
    system.bootModes.includes('uefi')
  )
    boot.BootSourceOverrideMode = bootModeToRedfish('uefi');
  const where = await bootResource(client, probe);
  await client.patch(where, { Boot: boot }, 'fetch');
  return `${where}: Boot ${JSON.stringify(boot)}${await readBackOverride(client, where, boot)}`;
}

/**
 * Marker in a step detail when the BMC stored `Continuous` where `Once` was asked: callers (the CLI,
 * jobs) must clear the override after the install (`finishProvisioning` does).
 */
export const KEPT_CONTINUOUS = 'BMC keeps the override Continuous where Once was asked';

/**
 * Reads the override back after the PATCH (a 200/204 does not mean the BMC stored what was asked):
 * BlueField keeps an override "persistent until it is set to none" (NVIDIA BlueField BMC docs,
 * boot-configuration), and some BMCs silently ignore Enabled. Returns a suffix for the step detail;
 * a cleared override that did not clear is an error, since the next boot would go to the image again.
 */
async function readBackOverride(client: RedfishClient, where: string, asked: RedfishJson): Promise<string> {
  let got: RedfishJson | undefined;
  try {
    got = (await client.get(where)).body.Boot as RedfishJson | undefined;
  } catch (err) {
    if (client.signal?.aborted || !(err instanceof RedfishError && err.code === 'REDFISH_ERR_HTTP'))
      throw err;
    return `; read-back failed: ${err.message}`;
  }
  const enabled = got?.BootSourceOverrideEnabled;
  if (typeof enabled !== 'string') return '; read-back: no BootSourceOverrideEnabled reported';
  if (asked.BootSourceOverrideEnabled === 'Once' && enabled === 'Continuous')
    return `; ${KEPT_CONTINUOUS}: it will be cleared after the install (finishProvisioning)`;
  if (asked.BootSourceOverrideEnabled === 'Disabled' && enabled !== 'Disabled')
    throw new RedfishError(
      'REDFISH_ERR_UNSUPPORTED',
      `${where}: the boot override was not cleared (read back BootSourceOverrideEnabled ${enabled}, target ${String(got?.BootSourceOverrideTarget)})`,
      { path: where },
    );
  return enabled === asked.BootSourceOverrideEnabled
    ? '; read back as set'
    : `; read back Enabled ${enabled}`;
}
