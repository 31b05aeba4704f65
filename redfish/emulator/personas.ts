/**
 * What each emulated BMC looks like and which dialect rules it enforces. These
 * are the emulator's side of the vendor quirks that `redfish/profiles/` handle:
 * the controller is tested against a BMC that really rejects what the real
 * firmware rejects. Sources are the same as the profiles' (../shared/notes/redfish.md §2).
 */

/** One virtual media slot of an emulated BMC. */
export interface EmulatedSlot {
  readonly id: string;
  readonly mediaTypes: readonly string[];
  /** Advertises `#VirtualMedia.InsertMedia`/`EjectMedia` (else PATCH only). */
  readonly actions: boolean;
}

/** Requests whose success a BMC may answer with messages instead of a bare 204 (or the resource). */
export type SuccessKind = 'reset' | 'insert' | 'eject' | 'patch' | 'rshim';

/** One `@Message.ExtendedInfo` entry of a success answer, as the firmware words it. */
export interface SuccessMessage {
  readonly id: string;
  /** Absent where the firmware sends only the MessageId (HPE iLO). */
  readonly text?: string;
  readonly severity?: string;
  readonly resolution?: string;
}

/**
 * How a BMC answers successful requests when it says more than 204 (DSP0266 allows a 200 with
 * `@Message.ExtendedInfo`): the messages per request kind, and — HPE iLO — the `error.code` its
 * successes are wrapped in. Kinds not listed answer as DMTF's minimum (204, or the resource).
 */
export interface SuccessAnswers {
  readonly messages: Partial<Record<SuccessKind, readonly SuccessMessage[]>>;
  readonly wrapInError?: string;
}

/** bmcweb `messages::success` (Base registry "Success"), as OpenBMC-based BMCs answer actions. */
const BMCWEB_SUCCESS: readonly SuccessMessage[] = [
  {
    id: 'Base.1.16.Success',
    text: 'The request completed successfully.',
    severity: 'OK',
    resolution: 'None',
  },
];

/** Emulated BMC dialect: identity, layout and rules it enforces. Read-only data. */
export interface EmulatorPersona {
  readonly id: string;
  readonly description: string;
  readonly manufacturer: string;
  readonly model: string;
  readonly firmwareVersion: string;
  readonly redfishVersion: string;
  /** ServiceRoot `Product` (NVIDIA DPF detects BlueField generations from it). */
  readonly product?: string;
  readonly systemId: string;
  readonly managerId: string;
  readonly systemType: 'DPU' | 'Physical';
  /** Where slots are linked from; `both` puts one set of slots under the manager, linked from both. */
  readonly mediaUnder: 'system' | 'manager' | 'both' | 'none';
  readonly slots: readonly EmulatedSlot[];
  readonly bootTargets: readonly string[];
  /** Boot changes only accepted on `{system}/Settings`, applied at next reset. */
  readonly bootOnSettings: boolean;
  /** `Boot.HttpBootUri` + `UefiHttp` offered. */
  readonly httpBoot: boolean;
  readonly resetTypes: readonly string[];
  /** UpdateService.SimpleUpdate: firmware inventory ids that accept images, and protocols. */
  readonly simpleUpdate?: { readonly inventory: readonly string[]; readonly protocols: readonly string[] };
  /** BlueField BMC RShim switch under `Managers/{id}/Oem/Nvidia`. */
  readonly rshim?: boolean;
  /**
   * `BootProgress.OemLastState` values the system moves through after a reset (`LastState: OEM`); the
   * first is set when the reset starts, the rest follow once it is On, the last one stays.
   */
  readonly bootProgress?: readonly string[];
  /** Messages on success (see {@link SuccessAnswers}); unset: 204 / the resource, no messages. */
  readonly success?: SuccessAnswers;
  readonly rules: {
    /** Supermicro X11/X12: 400 when InsertMedia carries `Inserted`/`WriteProtected`. */
    readonly rejectInsertedProps?: boolean;
    /** OpenBMC bmcweb: only https:// (or smb://) images; `TransferMethod` must be `Stream`. */
    readonly httpsOnly?: boolean;
    readonly requireTransferMethod?: boolean;
    /** HPE iLO: EjectMedia without a JSON body → 415. */
    readonly ejectNeedsBody?: boolean;
    /** Dell iDRAC: the slot still reports Inserted for this many GETs after eject. */
    readonly staleInsertedReads?: number;
    /** Lenovo XCC: PATCH insert must carry `Inserted`. */
    readonly patchNeedsInserted?: boolean;
    /** HPE iLO: 400 UnableToModifyDuringSystemPOST for boot PATCH while powering on. */
    readonly rejectBootDuringPost?: boolean;
    /** Supermicro: the virtual CD only boots with this override target (`Cd` boots the disk). */
    readonly virtualCdTarget?: string;
  };
}

const DMTF_TARGETS = ['None', 'Pxe', 'Cd', 'Usb', 'Hdd', 'BiosSetup', 'UefiShell', 'UefiHttp'] as const;
const ALL_RESETS = [
  'On',
  'ForceOff',
  'GracefulShutdown',
  'GracefulRestart',
  'ForceRestart',
  'PowerCycle',
] as const;
const CD = ['CD', 'DVD'] as const;

/** Emulated BMC personas, by id. */
export const EMULATOR_PERSONAS = Object.freeze({
  generic: {
    id: 'generic',
    description:
      'DMTF-conformant DPU BMC (SystemType DPU, virtual media on system and manager, HTTP boot, SimpleUpdate)',
    manufacturer: 'Contoso',
    model: 'DPU-9900',
    firmwareVersion: '1.0.0',
    redfishVersion: '1.20.0',
    systemId: 'DPU',
    managerId: 'BMC',
    systemType: 'DPU',
    mediaUnder: 'both',
    slots: [
      { id: 'CD1', mediaTypes: CD, actions: true },
      { id: 'USB1', mediaTypes: ['USBStick'], actions: true },
    ],
    bootTargets: DMTF_TARGETS,
    bootOnSettings: false,
    httpBoot: true,
    resetTypes: ALL_RESETS,
    simpleUpdate: { inventory: ['BMC', 'DPU_OS'], protocols: ['HTTP', 'HTTPS'] },
    rules: {},
  },
  bluefield: {
    id: 'bluefield',
    description: 'NVIDIA BlueField-3 BMC (bmcweb): no virtual media, BFB push to DPU_OS, boot on Settings',
    manufacturer: 'Nvidia',
    model: 'BlueField-3 DPU',
    firmwareVersion: 'BF-24.10-17',
    redfishVersion: '1.17.0',
    product: 'BlueField-3 DPU',
    systemId: 'Bluefield',
    managerId: 'Bluefield_BMC',
    systemType: 'DPU',
    mediaUnder: 'none',
    slots: [],
    bootTargets: ['None', 'Pxe', 'Hdd', 'UefiShell', 'UefiHttp', 'UefiBootNext'],
    bootOnSettings: true,
    httpBoot: true,
    resetTypes: ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart'],
    simpleUpdate: { inventory: ['BMC_Firmware', 'DPU_OS', 'DPU_NIC'], protocols: ['HTTP', 'HTTPS', 'SCP'] },
    rshim: true,
    // NVIDIA BlueField BMC docs, "BlueField Arm State" (BMC 24.04–25.07): the Arm boot stages as
    // OemLastState under BootProgress; OsIsRunning = booted in DPU mode.
    bootProgress: ['BootRom', 'BL2', 'BL31', 'UEFI', 'OsStarting', 'OsIsRunning'],
    success: {
      messages: {
        // bmcweb systems.hpp processComputerSystemResetActionPost → setDbusPropertyAction, which ends in
        // messages::success (redfish-core/src/utils/dbus_utils.cpp afterSetPropertyAction).
        reset: BMCWEB_SUCCESS,
        // NVIDIA/bmcweb nvidia_oem_dpu.hpp requestOemNvidiaRshim → messages::success; NVIDIA DPF's
        // EnableBMCRShim decodes the answer as ExtendedInfo and wants 200.
        rshim: BMCWEB_SUCCESS,
      },
    },
    rules: {},
  },
  idrac: {
    id: 'idrac',
    description: 'Dell iDRAC9 ≥6.00.02: media under Systems/System.Embedded.1, stale Inserted after eject',
    manufacturer: 'Dell Inc.',
    model: 'PowerEdge R760',
    firmwareVersion: '7.00.00.00',
    redfishVersion: '1.18.1',
    systemId: 'System.Embedded.1',
    managerId: 'iDRAC.Embedded.1',
    systemType: 'Physical',
    mediaUnder: 'system',
    slots: [
      { id: '1', mediaTypes: CD, actions: true },
      { id: '2', mediaTypes: ['USBStick'], actions: true },
    ],
    bootTargets: [
      'None',
      'Pxe',
      'Floppy',
      'Cd',
      'Hdd',
      'BiosSetup',
      'Utilities',
      'UefiTarget',
      'SDCard',
      'UefiHttp',
    ],
    bootOnSettings: false,
    httpBoot: false,
    resetTypes: [
      'On',
      'ForceOff',
      'ForceRestart',
      'GracefulRestart',
      'GracefulShutdown',
      'PushPowerButton',
      'Nmi',
      'PowerCycle',
    ],
    success: {
      messages: {
        // iDRAC9 answers a PATCH 200 with these two (sample of dellemc/openmanage-ansible-modules
        // idrac_user, iDRAC 4.x/5.x); Reset and the media actions answer 204.
        patch: [
          {
            id: 'Base.1.12.Success',
            text: 'Successfully Completed Request',
            severity: 'OK',
            resolution: 'None',
          },
          {
            id: 'IDRAC.2.8.SYS413',
            text: 'The operation successfully completed.',
            severity: 'Informational',
            resolution: 'No response action is required.',
          },
        ],
      },
    },
    rules: { staleInsertedReads: 2 },
  },
  ilo: {
    id: 'ilo',
    description: 'HPE iLO 6: EjectMedia needs {} body, 400 during POST',
    manufacturer: 'HPE',
    model: 'ProLiant DL380 Gen11',
    firmwareVersion: 'iLO 6 v1.59',
    redfishVersion: '1.13.0',
    systemId: '1',
    managerId: '1',
    systemType: 'Physical',
    mediaUnder: 'manager',
    slots: [
      { id: '1', mediaTypes: ['Floppy', 'USBStick'], actions: true },
      { id: '2', mediaTypes: CD, actions: true },
    ],
    bootTargets: [
      'None',
      'Cd',
      'Hdd',
      'Usb',
      'SDCard',
      'Utilities',
      'Diags',
      'BiosSetup',
      'Pxe',
      'UefiShell',
      'UefiHttp',
      'UefiTarget',
    ],
    bootOnSettings: false,
    httpBoot: false,
    resetTypes: [
      'On',
      'ForceOff',
      'GracefulShutdown',
      'ForceRestart',
      'Nmi',
      'PushPowerButton',
      'GracefulRestart',
    ],
    success: {
      // HewlettPackard/ilo-rest-api-docs: actions and PATCHes answer 200 with only a MessageId, under
      // `error` even on success.
      messages: {
        reset: [{ id: 'Base.1.12.Success' }],
        insert: [{ id: 'Base.1.12.Success' }],
        eject: [{ id: 'Base.1.12.Success' }],
        patch: [{ id: 'Base.1.12.Success' }],
      },
      wrapInError: 'iLO.0.10.ExtendedInfo',
    },
    rules: { ejectNeedsBody: true, rejectBootDuringPost: true },
  },
  supermicro: {
    id: 'supermicro',
    description: 'Supermicro X12: InsertMedia rejects Inserted/WriteProtected, CD boot target UsbCd',
    manufacturer: 'Supermicro',
    model: 'X12DPi-NT6',
    firmwareVersion: '01.04.08',
    redfishVersion: '1.11.0',
    systemId: '1',
    managerId: '1',
    systemType: 'Physical',
    mediaUnder: 'manager',
    slots: [{ id: 'CD1', mediaTypes: CD, actions: true }],
    bootTargets: [
      'None',
      'Pxe',
      'Floppy',
      'Cd',
      'Usb',
      'Hdd',
      'BiosSetup',
      'UsbCd',
      'UefiBootNext',
      'UefiHttp',
    ],
    bootOnSettings: false,
    httpBoot: false,
    resetTypes: ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'Nmi', 'ForceOn'],
    rules: { rejectInsertedProps: true, virtualCdTarget: 'UsbCd' },
  },
  xcc: {
    id: 'xcc',
    description: 'Lenovo XCC (SD530-era): no InsertMedia action, PATCH with Inserted',
    manufacturer: 'Lenovo',
    model: 'ThinkSystem SD530',
    firmwareVersion: 'TEI392O-2.40',
    redfishVersion: '1.5.0',
    systemId: '1',
    managerId: '1',
    systemType: 'Physical',
    mediaUnder: 'manager',
    slots: [
      { id: 'EXT1', mediaTypes: CD, actions: false },
      { id: 'EXT2', mediaTypes: ['USBStick'], actions: false },
    ],
    bootTargets: ['None', 'Pxe', 'Cd', 'Usb', 'Hdd', 'BiosSetup', 'Diags', 'UefiTarget'],
    bootOnSettings: false,
    httpBoot: false,
    resetTypes: ['On', 'Nmi', 'GracefulShutdown', 'GracefulRestart', 'ForceOn', 'ForceOff', 'ForceRestart'],
    rules: { patchNeedsInserted: true },
  },
  openbmc: {
    id: 'openbmc',
    description: 'OpenBMC bmcweb: Legacy slots on Managers/bmc, https:// only, TransferMethod Stream',
    manufacturer: 'OpenBMC',
    model: 'romulus',
    firmwareVersion: '2.15.0-dev',
    redfishVersion: '1.17.0',
    systemId: 'system',
    managerId: 'bmc',
    systemType: 'Physical',
    mediaUnder: 'manager',
    slots: [
      { id: 'Slot_0', mediaTypes: ['USBStick'], actions: false },
      { id: 'Slot_1', mediaTypes: CD, actions: true },
    ],
    bootTargets: ['None', 'Pxe', 'Hdd', 'Cd', 'Diags', 'BiosSetup', 'Usb'],
    bootOnSettings: false,
    httpBoot: false,
    resetTypes: [
      'On',
      'ForceOff',
      'ForceOn',
      'ForceRestart',
      'GracefulRestart',
      'GracefulShutdown',
      'PowerCycle',
      'Nmi',
    ],
    // bmcweb: ComputerSystem.Reset ends in messages::success (as for the BlueField above).
    success: { messages: { reset: BMCWEB_SUCCESS } },
    rules: { httpsOnly: true, requireTransferMethod: true },
  },
} as const satisfies Record<string, EmulatorPersona>);

/** Id of a built-in emulator persona. */
export type EmulatorPersonaId = keyof typeof EMULATOR_PERSONAS;
