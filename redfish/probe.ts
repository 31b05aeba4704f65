/**
 * Capability probing: what a BMC really offers (systems, power and reset,
 * boot targets, virtual media slots and how to insert, SimpleUpdate targets,
 * HTTP boot), read once into neutral types. Strategies are chosen from this,
 * never from the vendor alone.
 */
import { Attr, withSpan } from '../otel/index.js';
import { odataId, type RedfishClient, type RedfishJson } from './client.js';
import { RedfishError } from './errors.js';
import { type BmcIdentity, selectProfile, type VendorProfile } from './profiles/index.js';
import {
  type BootDevice,
  type BootMode,
  bootDeviceFromRedfish,
  bootModeFromRedfish,
  type MediaKind,
  mediaKindFromRedfish,
  type PowerState,
  powerStateFromRedfish,
  type ResetKind,
  resetKindFromRedfish,
  type TransferProtocol,
  transferProtocolFromRedfish,
} from './vocabulary.js';

/** A ComputerSystem as probed. */
export interface SystemInfo {
  readonly id: string;
  readonly path: string;
  readonly systemType: string;
  readonly manufacturer: string;
  readonly model: string;
  readonly serial: string;
  readonly powerState: PowerState;
  /** Reset action target, if the system has one. */
  readonly resetTarget: string | undefined;
  /** Reset types offered (raw Redfish strings, from AllowableValues or ActionInfo; empty = unknown). */
  readonly resetTypesRaw: readonly string[];
  readonly resetKinds: readonly ResetKind[];
  /** The system has a Boot object (one-time override possible). */
  readonly hasBoot: boolean;
  /** Raw BootSourceOverrideTarget AllowableValues (may hold vendor values like UsbCd; empty = unknown). */
  readonly bootTargetsRaw: readonly string[];
  readonly bootDevices: readonly BootDevice[];
  /** Boot modes offered; empty when the system does not report BootSourceOverrideMode (HPE Gen9). */
  readonly bootModes: readonly BootMode[];
  readonly bootModeReported: boolean;
  /** `Boot.HttpBootUri` present (ComputerSystem ≥ v1_9). */
  readonly httpBootUri: boolean;
  /** `@Redfish.Settings` SettingsObject path. */
  readonly settingsPath: string | undefined;
  readonly virtualMediaPath: string | undefined;
  readonly managerPaths: readonly string[];
  /** `BootProgress` (ComputerSystem v1_13), when the system reports it. */
  readonly bootProgress: BootProgress | undefined;
  readonly raw: RedfishJson;
}

/**
 * `ComputerSystem.BootProgress` as reported: `LastState` (DMTF enum, `OEM` when the state is vendor
 * defined), `OemLastState` (e.g. BlueField `OsIsRunning`) and `LastStateTime`; empty strings when absent.
 */
export interface BootProgress {
  readonly lastState: string;
  readonly oemLastState: string;
  readonly lastStateTime: string;
}

/** Reads `BootProgress` from a ComputerSystem body; undefined when the system does not report it. */
export function bootProgressOf(system: RedfishJson): BootProgress | undefined {
  const bp = system.BootProgress as RedfishJson | undefined;
  if (!bp || typeof bp !== 'object') return undefined;
  return {
    lastState: str(bp.LastState),
    oemLastState: str(bp.OemLastState),
    lastStateTime: str(bp.LastStateTime),
  };
}

/** A Manager as probed. */
export interface ManagerInfo {
  readonly id: string;
  readonly path: string;
  readonly model: string;
  readonly firmwareVersion: string;
  readonly virtualMediaPath: string | undefined;
  readonly raw: RedfishJson;
}

/** How a slot takes an image. */
export type InsertMethod = 'action' | 'patch' | 'none';

/** A virtual media slot usable by the chosen system. */
export interface MediaSlotInfo {
  readonly id: string;
  readonly path: string;
  readonly owner: 'system' | 'manager';
  readonly kinds: readonly MediaKind[];
  readonly insert: InsertMethod;
  readonly insertTarget: string | undefined;
  readonly ejectTarget: string | undefined;
  /** TransferProtocolType AllowableValues of InsertMedia (empty = unknown). */
  readonly transferProtocols: readonly TransferProtocol[];
  readonly inserted: boolean;
  readonly image: string | null;
  readonly connectedVia: string | undefined;
}

/** UpdateService.SimpleUpdate as probed. */
export interface UpdateInfo {
  readonly simpleUpdateTarget: string;
  /** TransferProtocol AllowableValues (raw, empty = unknown). */
  readonly protocolsRaw: readonly string[];
  readonly protocols: readonly TransferProtocol[];
  /** FirmwareInventory member paths. */
  readonly inventory: readonly string[];
  /** Why the inventory could not be read (e.g. `GET …/FirmwareInventory: HTTP 404`), when it could not. */
  readonly inventoryError?: string;
  /** Inventory paths that take an OS image per the profile, best first. */
  readonly osTargets: readonly string[];
}

/** Everything `bmc check` reports and strategies decide on. */
export interface BmcProbe {
  readonly origin: string;
  readonly redfishVersion: string;
  readonly identity: BmcIdentity;
  readonly profile: VendorProfile;
  /** True when the profile came from an explicit override. */
  readonly profileOverridden: boolean;
  readonly systems: readonly SystemInfo[];
  /** The system to provision (preferring `SystemType: DPU`). */
  readonly system: SystemInfo;
  readonly managers: readonly ManagerInfo[];
  /** Slots usable by `system`, in the order they will be tried; only CD/DVD slots are usable for ISOs. */
  readonly mediaSlots: readonly MediaSlotInfo[];
  readonly update: UpdateInfo | undefined;
  /** Why `update` is undefined, naming what is actually missing (no UpdateService link, no action, a failed GET). */
  readonly updateMissing?: string;
}

/** Options of {@link probeBmc}. */
export interface ProbeOptions {
  /** System Id (or path) to use instead of the automatic choice. */
  readonly systemId?: string;
  /** Vendor profile id overriding the automatic choice (operator setting on the BMC record). */
  readonly profileId?: string;
}

const MAX_MEMBERS = 32;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const members = (c: RedfishJson): string[] =>
  (Array.isArray(c.Members) ? c.Members : [])
    .map(odataId)
    .filter((x): x is string => !!x)
    .slice(0, MAX_MEMBERS);

async function actionInfoValues(
  client: RedfishClient,
  action: RedfishJson,
  param: string,
): Promise<string[]> {
  const direct = action[`${param}@Redfish.AllowableValues`];
  if (Array.isArray(direct)) return direct.filter((x): x is string => typeof x === 'string');
  const info = action['@Redfish.ActionInfo'];
  if (typeof info !== 'string') return [];
  try {
    const params = (await client.get(info)).body.Parameters;
    const p = Array.isArray(params) ? (params as RedfishJson[]).find((x) => x.Name === param) : undefined;
    return Array.isArray(p?.AllowableValues)
      ? (p.AllowableValues as unknown[]).filter((x): x is string => typeof x === 'string')
      : [];
  } catch {
    return []; // ActionInfo is optional; unknown means "try and let the BMC say".
  }
}

async function readSystem(client: RedfishClient, path: string): Promise<SystemInfo> {
  const raw = (await client.get(path)).body;
  const reset = (raw.Actions as RedfishJson | undefined)?.['#ComputerSystem.Reset'] as
    | RedfishJson
    | undefined;
  const resetTypesRaw = reset ? await actionInfoValues(client, reset, 'ResetType') : [];
  const boot = raw.Boot as RedfishJson | undefined;
  const targets = Array.isArray(boot?.['BootSourceOverrideTarget@Redfish.AllowableValues'])
    ? (boot['BootSourceOverrideTarget@Redfish.AllowableValues'] as unknown[]).filter(
        (x): x is string => typeof x === 'string',
      )
    : [];
  const modesRaw = Array.isArray(boot?.['BootSourceOverrideMode@Redfish.AllowableValues'])
    ? (boot['BootSourceOverrideMode@Redfish.AllowableValues'] as unknown[])
    : boot && 'BootSourceOverrideMode' in boot
      ? ['UEFI', 'Legacy']
      : [];
  const links = raw.Links as RedfishJson | undefined;
  return {
    id: str(raw.Id) || path.split('/').pop() || path,
    path: odataId(raw)?.replace(/\/$/, '') ?? path,
    systemType: str(raw.SystemType),
    manufacturer: str(raw.Manufacturer),
    model: str(raw.Model),
    serial: str(raw.SerialNumber),
    powerState: powerStateFromRedfish(raw.PowerState),
    resetTarget: typeof reset?.target === 'string' ? reset.target : undefined,
    resetTypesRaw,
    resetKinds: resetTypesRaw.map(resetKindFromRedfish).filter((k): k is ResetKind => !!k),
    hasBoot: !!boot,
    bootTargetsRaw: targets,
    bootDevices: [...new Set(targets.map(bootDeviceFromRedfish).filter((d): d is BootDevice => !!d))],
    bootModes: modesRaw.map(bootModeFromRedfish).filter((m): m is BootMode => !!m),
    bootModeReported: !!boot && 'BootSourceOverrideMode' in boot,
    httpBootUri: !!boot && 'HttpBootUri' in boot,
    settingsPath: odataId((raw['@Redfish.Settings'] as RedfishJson | undefined)?.SettingsObject),
    virtualMediaPath: odataId(raw.VirtualMedia),
    managerPaths: (Array.isArray(links?.ManagedBy) ? links.ManagedBy : [])
      .map(odataId)
      .filter((x): x is string => !!x),
    bootProgress: bootProgressOf(raw),
    raw,
  };
}

async function readSlot(
  client: RedfishClient,
  path: string,
  owner: 'system' | 'manager',
): Promise<MediaSlotInfo> {
  const res = await client.get(path);
  const raw = res.body;
  const actions = raw.Actions as RedfishJson | undefined;
  const ins = actions?.['#VirtualMedia.InsertMedia'] as RedfishJson | undefined;
  const ej = actions?.['#VirtualMedia.EjectMedia'] as RedfishJson | undefined;
  const allow = res.headers.allow;
  // sushy falls back to PATCH only when GET's Allow lists PATCH (`base.py:_allow_patch`); with no Allow
  // header at all we still try PATCH, as DMTF Tacklebox does.
  const insert: InsertMethod =
    typeof ins?.target === 'string' ? 'action' : !allow || /PATCH/i.test(allow) ? 'patch' : 'none';
  const protos = ins ? await actionInfoValues(client, ins, 'TransferProtocolType') : [];
  return {
    id: str(raw.Id) || path.split('/').pop() || path,
    path: odataId(raw)?.replace(/\/$/, '') ?? path,
    owner,
    kinds: (Array.isArray(raw.MediaTypes) ? raw.MediaTypes : [])
      .map(mediaKindFromRedfish)
      .filter((k): k is MediaKind => !!k),
    insert,
    insertTarget: typeof ins?.target === 'string' ? ins.target : undefined,
    ejectTarget: typeof ej?.target === 'string' ? ej.target : undefined,
    transferProtocols: protos.map(transferProtocolFromRedfish).filter((p): p is TransferProtocol => !!p),
    inserted: raw.Inserted === true,
    image: typeof raw.Image === 'string' ? raw.Image : null,
    connectedVia: typeof raw.ConnectedVia === 'string' ? raw.ConnectedVia : undefined,
  };
}

/** Picks the system: an explicit id/path, else the first `SystemType: DPU`, else the first. */
export function chooseSystem(systems: readonly SystemInfo[], systemId?: string): SystemInfo {
  if (systemId) {
    const s = systems.find(
      (x) => x.id === systemId || x.path === systemId || x.path.endsWith(`/${systemId}`),
    );
    if (!s)
      throw new RedfishError(
        'REDFISH_ERR_NO_SYSTEM',
        `system '${systemId}' not found (have: ${systems.map((x) => x.id).join(', ') || 'none'})`,
      );
    return s;
  }
  // DMTF 2025 models a DPU as its own ComputerSystem with SystemType DPU (mockup public-smartnic).
  const s = systems.find((x) => x.systemType === 'DPU') ?? systems[0];
  if (!s) throw new RedfishError('REDFISH_ERR_NO_SYSTEM', 'the BMC lists no ComputerSystem');
  return s;
}

/** Orders slots per profile: preferred ids first, then system/manager order; drops non-preferred when only those boot. */
export function orderSlots(slots: readonly MediaSlotInfo[], profile: VendorProfile): MediaSlotInfo[] {
  const vm = profile.virtualMedia;
  const ownerRank = (s: MediaSlotInfo) => ((vm.search === 'system-first') === (s.owner === 'system') ? 0 : 1);
  const prefRank = (s: MediaSlotInfo) => {
    const i = vm.preferredSlots.indexOf(s.id);
    return i < 0 ? vm.preferredSlots.length : i;
  };
  const sorted = [...slots].sort((a, b) => prefRank(a) - prefRank(b) || ownerRank(a) - ownerRank(b));
  if (vm.onlyPreferredSlots && vm.preferredSlots.length > 0)
    return sorted.filter((s) => vm.preferredSlots.includes(s.id));
  return sorted;
}

/** Probes a BMC. Reads only (GETs); never changes the BMC. */
export async function probeBmc(client: RedfishClient, options: ProbeOptions = {}): Promise<BmcProbe> {
  return withSpan('redfish.probe', { [Attr.bmcUrl]: client.origin }, async (span) => {
    const root = await client.serviceRoot();
    const systemsPath = odataId(root.Systems);
    if (!systemsPath)
      throw new RedfishError('REDFISH_ERR_NO_SYSTEM', 'the service root has no Systems collection');
    const systemPaths = members((await client.get(systemsPath)).body);
    const systems = await Promise.all(systemPaths.map((p) => readSystem(client, p)));
    const system = chooseSystem(systems, options.systemId);
    span.setAttribute(Attr.redfishSystem, system.id);

    const managersPath = odataId(root.Managers);
    const managerPaths = managersPath ? members((await client.get(managersPath)).body) : [];
    const managers: ManagerInfo[] = await Promise.all(
      managerPaths.map(async (p) => {
        const raw = (await client.get(p)).body;
        return {
          id: str(raw.Id) || p.split('/').pop() || p,
          path: odataId(raw)?.replace(/\/$/, '') ?? p,
          model: str(raw.Model),
          firmwareVersion: str(raw.FirmwareVersion),
          virtualMediaPath: odataId(raw.VirtualMedia),
          raw,
        };
      }),
    );
    // The system's managers (Huawei 1288H lacks Links.ManagedBy: then every manager, as sushy retries).
    const own = managers.filter((m) => system.managerPaths.some((p) => p.replace(/\/$/, '') === m.path));
    const sysManagers = own.length > 0 ? own : managers;
    const primary = sysManagers[0];

    const identity: BmcIdentity = {
      manufacturer: system.manufacturer || str(primary?.raw.Manufacturer) || str(root.Vendor),
      model: system.model || primary?.model || '',
      firmwareVersion: primary?.firmwareVersion ?? '',
      product: str(root.Product),
      vendor: str(root.Vendor),
    };
    const profile = selectProfile({ ...identity, managerId: primary?.id ?? '' }, options.profileId);
    span.setAttribute(Attr.bmcVendorProfile, profile.id);
    client.addTransientMessageIds(profile.transientMessageIds);
    client.setVendorProfile(profile.id);

    // Virtual media collections: the system's, and its managers'.
    const collections: { path: string; owner: 'system' | 'manager' }[] = [];
    if (system.virtualMediaPath) collections.push({ path: system.virtualMediaPath, owner: 'system' });
    for (const m of sysManagers)
      if (m.virtualMediaPath) collections.push({ path: m.virtualMediaPath, owner: 'manager' });
    const seen = new Set<string>();
    const slots: MediaSlotInfo[] = [];
    for (const c of collections) {
      let paths: string[];
      try {
        paths = members((await client.get(c.path)).body);
      } catch (err) {
        if (err instanceof RedfishError && err.code === 'REDFISH_ERR_HTTP') continue;
        throw err;
      }
      for (const p of paths) {
        const key = p.replace(/\/$/, '');
        if (seen.has(key)) continue;
        seen.add(key);
        slots.push(await readSlot(client, p, c.owner));
      }
    }

    let update: UpdateInfo | undefined;
    let updateMissing: string | undefined;
    const updatePath = odataId(root.UpdateService);
    if (!updatePath) updateMissing = 'the service root has no UpdateService';
    else {
      let svc: RedfishJson | undefined;
      try {
        svc = (await client.get(updatePath)).body;
      } catch (err) {
        if (!(err instanceof RedfishError && err.code === 'REDFISH_ERR_HTTP')) throw err;
        updateMissing = `GET ${updatePath} failed: ${err.message}`;
      }
      const act = (svc?.Actions as RedfishJson | undefined)?.['#UpdateService.SimpleUpdate'] as
        | RedfishJson
        | undefined;
      if (svc && !(act && typeof act.target === 'string'))
        updateMissing = `${updatePath} has no #UpdateService.SimpleUpdate action`;
      if (svc && act && typeof act.target === 'string') {
        const protocolsRaw = await actionInfoValues(client, act, 'TransferProtocol');
        const invPath = odataId(svc.FirmwareInventory);
        let inventory: string[] = [];
        let inventoryError: string | undefined;
        // A missing or failing inventory is its own finding, not "no SimpleUpdate".
        if (!invPath) inventoryError = `${updatePath} has no FirmwareInventory`;
        else
          try {
            inventory = members((await client.get(invPath)).body);
          } catch (err) {
            if (!(err instanceof RedfishError && err.code === 'REDFISH_ERR_HTTP')) throw err;
            inventoryError = `GET ${invPath} failed: ${err.message}`;
          }
        const osTargets = profile.imagePush.osTargets.flatMap((re) =>
          inventory.filter((p) => re.test(p.replace(/\/$/, '').split('/').pop() ?? '')),
        );
        update = {
          simpleUpdateTarget: act.target,
          protocolsRaw,
          protocols: protocolsRaw.map(transferProtocolFromRedfish).filter((p): p is TransferProtocol => !!p),
          inventory,
          ...(inventoryError ? { inventoryError } : {}),
          osTargets: [...new Set(osTargets)],
        };
      }
    }

    return {
      origin: client.origin,
      redfishVersion: str(root.RedfishVersion),
      identity,
      profile,
      profileOverridden: !!options.profileId,
      systems,
      system,
      managers,
      mediaSlots: orderSlots(slots, profile),
      update,
      ...(updateMissing ? { updateMissing } : {}),
    };
  });
}
