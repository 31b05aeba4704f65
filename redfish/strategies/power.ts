/**
 * Reset into the new boot source and confirm the power state, bounded.
 */
import type { RedfishClient, RedfishJson } from '../client.js';
import type { ResetHooks } from './context.js';
import { RedfishError } from '../errors.js';
import type { SystemInfo } from '../probe.js';
import { type PowerState, powerStateFromRedfish, type ResetKind, resetKindToRedfish } from '../vocabulary.js';
import { type PollOptions, pollUntil } from '../wait.js';

/** Reads the current power state of a system. */
export async function readPower(
  client: RedfishClient,
  system: SystemInfo,
  onSystem?: (body: RedfishJson) => void,
): Promise<PowerState> {
  const body = (await client.get(system.path)).body;
  onSystem?.(body);
  return powerStateFromRedfish(body.PowerState);
}

/** Waits (bounded, with backoff) until the system reports `want`. */
export async function waitForPower(
  client: RedfishClient,
  system: SystemInfo,
  want: PowerState,
  poll: PollOptions,
  onSystem?: (body: RedfishJson) => void,
): Promise<void> {
  let last: PowerState = 'unknown';
  await pollUntil(
    `${system.id} to be powered ${want}`,
    poll,
    async () => {
      last = await readPower(client, system, onSystem);
      return last === want ? true : undefined;
    },
    () => last,
    client.signal,
  );
}

function offered(system: SystemInfo, kind: ResetKind): boolean {
  // No AllowableValues: "the service can accept a request without the parameter" — assume the DMTF basics.
  return system.resetTypesRaw.length === 0 || system.resetTypesRaw.includes(resetKindToRedfish(kind));
}

/**
 * The reset plan that (re)boots the system, from what it offers: `On` when off; else ForceRestart,
 * PowerCycle or GracefulRestart; else ForceOff then On. Throws REDFISH_ERR_UNSUPPORTED when none fits.
 */
export function planReboot(system: SystemInfo, power: PowerState): ResetKind[] {
  if (power === 'off' || power === 'powering-off') {
    if (offered(system, 'on')) return ['on'];
    if (offered(system, 'force-on')) return ['force-on'];
  } else {
    for (const k of ['force-restart', 'power-cycle', 'graceful-restart'] as const)
      if (offered(system, k)) return [k];
    if (offered(system, 'force-off') && offered(system, 'on')) return ['force-off', 'on'];
  }
  throw new RedfishError(
    'REDFISH_ERR_UNSUPPORTED',
    `system ${system.id} offers no reset that reboots it (ResetType AllowableValues: ${system.resetTypesRaw.join(', ') || 'none'})`,
  );
}

/**
 * POSTs ComputerSystem.Reset for each kind in `plan`, waiting for the intermediate state, then waits
 * until the system is On. `hooks.beforeReset` runs once, after the plan is known and before the first POST.
 * A 400/409 on `On` re-reads PowerState and accepts it if the system is already
 * coming up (iDRAC10 409 ActionParameterValueConflict shortly after ForceOff; Ironic power.py).
 */
export async function rebootAndConfirm(
  client: RedfishClient,
  system: SystemInfo,
  poll: PollOptions,
  hooks: ResetHooks = {},
): Promise<string> {
  if (!system.resetTarget)
    throw new RedfishError(
      'REDFISH_ERR_UNSUPPORTED',
      `system ${system.id} has no ComputerSystem.Reset action`,
    );
  const power = await readPower(client, system);
  const plan = planReboot(system, power);
  await hooks.beforeReset?.();
  for (const kind of plan) {
    try {
      await client.post(system.resetTarget, { ResetType: resetKindToRedfish(kind) });
    } catch (err) {
      const conflict = err instanceof RedfishError && (err.status === 400 || err.status === 409);
      const now =
        conflict && (kind === 'on' || kind === 'force-on') ? await readPower(client, system) : undefined;
      if (!(now === 'on' || now === 'powering-on')) throw err;
    }
    if (kind === 'force-off') await waitForPower(client, system, 'off', poll, hooks.onSystem);
  }
  await waitForPower(client, system, 'on', poll, hooks.onSystem);
  return `${plan.map(resetKindToRedfish).join(' → ')} (was ${power}); now On`;
}
