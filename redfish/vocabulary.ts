/**
 * The neutral vocabulary used inside dpu-ztp (STYLE.md lesson 7) and its one
 * translation to and from Redfish strings (ComputerSystem.v1_27_0, Resource.json
 * ResetType, VirtualMedia.v1_6_5). Nothing else in `redfish/` spells a raw
 * Redfish enum value for these concepts.
 */

/** Power state of a system. */
export type PowerState = 'on' | 'off' | 'powering-on' | 'powering-off' | 'paused' | 'unknown';
/** Where the next boot comes from. */
export type BootDevice = 'none' | 'pxe' | 'cd' | 'usb' | 'hdd' | 'bios-setup' | 'uefi-http' | 'uefi-target';
/** Firmware boot mode. */
export type BootMode = 'uefi' | 'legacy';
/** How long a boot override lasts. */
export type BootPersistence = 'disabled' | 'once' | 'continuous';
/** A kind of virtual medium. */
export type MediaKind = 'cd' | 'dvd' | 'floppy' | 'usb-stick';
/** A reset request. */
export type ResetKind =
  | 'on'
  | 'force-off'
  | 'graceful-shutdown'
  | 'graceful-restart'
  | 'force-restart'
  | 'power-cycle'
  | 'force-on'
  | 'push-power-button'
  | 'nmi';
/** Image transfer protocol (InsertMedia TransferProtocolType / SimpleUpdate TransferProtocol). */
export type TransferProtocol = 'http' | 'https' | 'cifs' | 'nfs' | 'ftp' | 'sftp' | 'scp' | 'tftp';
/** State of a BMC task. */
export type TaskState = 'running' | 'completed' | 'failed';

const POWER: Record<string, PowerState> = {
  On: 'on',
  Off: 'off',
  PoweringOn: 'powering-on',
  PoweringOff: 'powering-off',
  Paused: 'paused',
};

/** Redfish `PowerState` → {@link PowerState} (anything else → `unknown`). */
export function powerStateFromRedfish(value: unknown): PowerState {
  return (typeof value === 'string' && POWER[value]) || 'unknown';
}

const BOOT_DEVICE: Record<BootDevice, string> = {
  none: 'None',
  pxe: 'Pxe',
  cd: 'Cd',
  usb: 'Usb',
  hdd: 'Hdd',
  'bios-setup': 'BiosSetup',
  'uefi-http': 'UefiHttp',
  'uefi-target': 'UefiTarget',
};

/** {@link BootDevice} → Redfish `BootSourceOverrideTarget`. */
export function bootDeviceToRedfish(device: BootDevice): string {
  return BOOT_DEVICE[device];
}

/**
 * Redfish `BootSourceOverrideTarget` → {@link BootDevice}; vendor aliases (Supermicro `UsbCd`) map to the
 * device they boot. Unknown targets give `undefined`.
 */
export function bootDeviceFromRedfish(value: unknown): BootDevice | undefined {
  if (value === 'UsbCd') return 'cd';
  for (const [k, v] of Object.entries(BOOT_DEVICE)) if (v === value) return k as BootDevice;
  return undefined;
}

/** {@link BootMode} → Redfish `BootSourceOverrideMode`. */
export function bootModeToRedfish(mode: BootMode): string {
  return mode === 'uefi' ? 'UEFI' : 'Legacy';
}

/** Redfish `BootSourceOverrideMode` → {@link BootMode}. */
export function bootModeFromRedfish(value: unknown): BootMode | undefined {
  return value === 'UEFI' ? 'uefi' : value === 'Legacy' ? 'legacy' : undefined;
}

const PERSISTENCE: Record<BootPersistence, string> = {
  disabled: 'Disabled',
  once: 'Once',
  continuous: 'Continuous',
};

/** {@link BootPersistence} → Redfish `BootSourceOverrideEnabled`. */
export function bootPersistenceToRedfish(p: BootPersistence): string {
  return PERSISTENCE[p];
}

/** Redfish `BootSourceOverrideEnabled` → {@link BootPersistence}. */
export function bootPersistenceFromRedfish(value: unknown): BootPersistence | undefined {
  for (const [k, v] of Object.entries(PERSISTENCE)) if (v === value) return k as BootPersistence;
  return undefined;
}

const MEDIA: Record<MediaKind, string> = { cd: 'CD', dvd: 'DVD', floppy: 'Floppy', 'usb-stick': 'USBStick' };

/** Redfish `MediaTypes` entry → {@link MediaKind}. */
export function mediaKindFromRedfish(value: unknown): MediaKind | undefined {
  for (const [k, v] of Object.entries(MEDIA)) if (v === value) return k as MediaKind;
  return undefined;
}

/** {@link MediaKind} → Redfish `MediaTypes` entry. */
export function mediaKindToRedfish(kind: MediaKind): string {
  return MEDIA[kind];
}

const RESET: Record<ResetKind, string> = {
  on: 'On',
  'force-off': 'ForceOff',
  'graceful-shutdown': 'GracefulShutdown',
  'graceful-restart': 'GracefulRestart',
  'force-restart': 'ForceRestart',
  'power-cycle': 'PowerCycle',
  'force-on': 'ForceOn',
  'push-power-button': 'PushPowerButton',
  nmi: 'Nmi',
};

/** {@link ResetKind} → Redfish `ResetType`. */
export function resetKindToRedfish(kind: ResetKind): string {
  return RESET[kind];
}

/** Redfish `ResetType` → {@link ResetKind} (unknown vendor values → `undefined`). */
export function resetKindFromRedfish(value: unknown): ResetKind | undefined {
  for (const [k, v] of Object.entries(RESET)) if (v === value) return k as ResetKind;
  return undefined;
}

/** {@link TransferProtocol} → Redfish `TransferProtocolType` / `TransferProtocol` (`HTTPS`, `CIFS`, …). */
export function transferProtocolToRedfish(p: TransferProtocol): string {
  return p.toUpperCase();
}

/** Redfish `TransferProtocolType` → {@link TransferProtocol}. */
export function transferProtocolFromRedfish(value: unknown): TransferProtocol | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.toLowerCase();
  return (['http', 'https', 'cifs', 'nfs', 'ftp', 'sftp', 'scp', 'tftp'] as const).find((p) => p === v);
}

/** The transfer protocol implied by a URL scheme (`smb://` → cifs), or `undefined`. */
export function transferProtocolOfUrl(url: string): TransferProtocol | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'smb') return 'cifs';
  return transferProtocolFromRedfish(scheme);
}

/** Redfish `TaskState` → {@link TaskState} (DSP0268 Task.v1_7: Exception/Killed/Cancelled are failures). */
export function taskStateFromRedfish(value: unknown): TaskState {
  switch (value) {
    case 'Completed':
      return 'completed';
    case 'Exception':
    case 'Killed':
    case 'Cancelled':
      return 'failed';
    default:
      return 'running';
  }
}
