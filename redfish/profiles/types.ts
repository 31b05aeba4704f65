/**
 * The shape of a vendor profile (STYLE.md lesson 8): typed, read-only data plus
 * small per-capability hooks. Strategies read flags and call hooks; they never
 * branch on a vendor name. Defaults live in one place (`base.ts`).
 */
import type { RedfishClient } from '../client.js';
import type { BmcProbe } from '../probe.js';

/** Identity read from the BMC that profiles are matched against. */
export interface BmcIdentity {
  readonly manufacturer: string;
  readonly model: string;
  readonly firmwareVersion: string;
  /** ServiceRoot `Product` / `Vendor`. */
  readonly product: string;
  readonly vendor: string;
}

/** What a hook may use: the client, and the probe of the BMC. */
export interface HookContext {
  readonly client: RedfishClient;
  readonly probe: BmcProbe;
}

/** Which optional fields an insert payload carries up front (more are added when the BMC asks). */
export interface InsertFields {
  /** `Inserted: true` (Supermicro X11/X12 rejects it). */
  readonly inserted: boolean;
  /** `WriteProtected: true` (Supermicro rejects it; bmcweb defaults to false). */
  readonly writeProtected: boolean;
  /** `TransferMethod: "Stream"` (bmcweb requires it). */
  readonly transferMethod: boolean;
  /** `TransferProtocolType` derived from the URL scheme. */
  readonly transferProtocolType: boolean;
}

/** A vendor profile. Build with `defineProfile` so unspecified fields take the documented defaults. */
export interface VendorProfile {
  readonly id: string;
  readonly name: string;
  /**
   * How the profile is picked: every given pattern must match (manufacturer/model/firmware from
   * ComputerSystem and Manager, product/vendor from the service root). The generic profile has none.
   */
  readonly match?: {
    readonly manufacturer?: RegExp;
    readonly model?: RegExp;
    readonly firmware?: RegExp;
    readonly product?: RegExp;
    readonly managerId?: RegExp;
  };
  /** MessageId suffixes that mean "busy now, retry" on 400/409. */
  readonly transientMessageIds: readonly string[];
  readonly virtualMedia: {
    /** Where to look for slots first. Tacklebox/Ironic: system first; bmclib: manager first. */
    readonly search: 'system-first' | 'manager-first';
    /** Slot ids tried first, in order. */
    readonly preferredSlots: readonly string[];
    /** Only the preferred slots boot (iDRAC10: slot 1). */
    readonly onlyPreferredSlots: boolean;
    readonly insertFields: InsertFields;
    /** Image URL schemes the BMC accepts (`undefined`: any). */
    readonly imageSchemes: readonly string[] | undefined;
    /** EjectMedia body. */
    readonly ejectBody: 'empty-object' | 'none';
    /** What proves a slot empty: `Inserted: false`, or also `ConnectedVia: NotConnected`. */
    readonly emptySignal: 'inserted' | 'connected-via';
  };
  readonly boot: {
    /** Where Boot is PATCHed: the system, its `@Redfish.Settings` object when that carries Boot, or always the settings object. */
    readonly where: 'system' | 'settings-when-advertised' | 'settings-always';
    /** Send `BootSourceOverrideMode` (HPE Gen9 rejects a full Boot object). */
    readonly sendMode: boolean;
  };
  readonly imagePush: {
    /** FirmwareInventory member ids that take an OS image (first match wins). */
    readonly osTargets: readonly RegExp[];
    /** Write `Targets` with a leading slash (BlueField docs write them without). */
    readonly targetsLeadingSlash: boolean;
    /**
     * After the reset that follows the push, wait (bounded by `waits.os`) until the system's
     * `BootProgress.OemLastState` reads this value — where the system reports BootProgress at all.
     * `undefined`: the run ends once the system is On.
     */
    readonly awaitOemLastState: string | undefined;
  };
  readonly hooks: {
    /** The BootSourceOverrideTarget that boots the virtual CD, given the system's AllowableValues. */
    readonly cdBootTarget: (allowable: readonly string[]) => string;
    /** Runs before SimpleUpdate (BlueField: enable the BMC RShim). */
    readonly beforeImagePush?: (ctx: HookContext) => Promise<string | undefined>;
  };
  /** Notes for `bmc check` output and the README. */
  readonly notes: readonly string[];
}

/** Partial profile accepted by `defineProfile`. */
export interface VendorProfileSpec {
  readonly id: string;
  readonly name: string;
  readonly match?: VendorProfile['match'];
  readonly transientMessageIds?: readonly string[];
  readonly virtualMedia?: Partial<Omit<VendorProfile['virtualMedia'], 'insertFields'>> & {
    readonly insertFields?: Partial<InsertFields>;
  };
  readonly boot?: Partial<VendorProfile['boot']>;
  readonly imagePush?: Partial<VendorProfile['imagePush']>;
  readonly hooks?: Partial<VendorProfile['hooks']>;
  readonly notes?: readonly string[];
}
