/**
 * Documented defaults for every profile field (kysely's adapter-base idea: one
 * place holds the defaults, profiles state only how they differ), and
 * `defineProfile`, which merges and deep-freezes.
 */
import type { VendorProfile, VendorProfileSpec } from './types.js';

/** The defaults, each with the reason it is the default. */
export const PROFILE_DEFAULTS = {
  // Busy states seen across vendors; retrying them is always safe because the BMC did nothing.
  // DMTF Base registry: ServiceTemporarilyUnavailable; iLO: UnableToModifyDuringSystemPOST,
  // InvalidOperationForSystemState (sushy retry list); iDRAC: SYS518 "not ready" (Ironic).
  transientMessageIds: [
    'ServiceTemporarilyUnavailable',
    'UnableToModifyDuringSystemPOST',
    'InvalidOperationForSystemState',
    'SYS518',
  ],
  virtualMedia: {
    // ComputerSystem.VirtualMedia (v1_13) supersedes Manager.VirtualMedia (deprecated since Manager v1_10):
    // DMTF Tacklebox and Ironic look on the system first.
    search: 'system-first',
    preferredSlots: [],
    onlyPreferredSlots: false,
    // VirtualMedia.v1_6_5 InsertMedia: Inserted and WriteProtected default to true; sent explicitly
    // because bmcweb defaults WriteProtected to false, unlike the spec.
    insertFields: {
      inserted: true,
      writeProtected: true,
      transferMethod: false,
      transferProtocolType: false,
    },
    imageSchemes: undefined,
    // HPE iLO answers 415/400 to EjectMedia without a body (sushy fix-eject-media-empty-dict); `{}` is
    // valid for every BMC, so it is the default.
    ejectBody: 'empty-object',
    emptySignal: 'inserted',
  },
  boot: {
    // sushy: PATCH the @Redfish.Settings object only when it carries the Boot properties.
    where: 'settings-when-advertised',
    sendMode: true,
  },
  imagePush: {
    // BlueField-2/3 `DPU_OS`, BlueField-4 `BlueField_OS_Image_CPU_0` (NVIDIA docs; DPF client.go).
    osTargets: [/^DPU_OS$/i, /OS_Image/i],
    targetsLeadingSlash: true,
    // DMTF defines no "OS is up" value a generic BMC reliably reports: power On ends the run.
    awaitOemLastState: undefined,
  },
  hooks: {
    /** DMTF `Cd`. */
    cdBootTarget: (_allowable: readonly string[]) => 'Cd',
  },
} as const;

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) if (!(v instanceof RegExp)) deepFreeze(v);
  }
  return o;
}

/** Builds a read-only profile from a spec, filling every unspecified field from {@link PROFILE_DEFAULTS}. */
export function defineProfile(spec: VendorProfileSpec): VendorProfile {
  const d = PROFILE_DEFAULTS;
  const profile: VendorProfile = {
    id: spec.id,
    name: spec.name,
    ...(spec.match ? { match: spec.match } : {}),
    transientMessageIds: [...d.transientMessageIds, ...(spec.transientMessageIds ?? [])],
    virtualMedia: {
      ...d.virtualMedia,
      ...spec.virtualMedia,
      insertFields: { ...d.virtualMedia.insertFields, ...spec.virtualMedia?.insertFields },
    },
    boot: { ...d.boot, ...spec.boot },
    imagePush: { ...d.imagePush, ...spec.imagePush },
    hooks: { ...d.hooks, ...spec.hooks },
    notes: spec.notes ?? [],
  };
  return deepFreeze(profile);
}
