/**
 * The built-in vendor profiles and how one is picked for a BMC: from
 * Manufacturer / Model / firmware / product, overridable per BMC by id.
 */
import { RedfishError } from '../errors.js';
import { dellIdracProfile } from './dell-idrac.js';
import { genericProfile } from './generic.js';
import { hpeIloProfile } from './hpe-ilo.js';
import { lenovoXccProfile } from './lenovo-xcc.js';
import { nvidiaBluefieldProfile } from './nvidia-bluefield.js';
import { openbmcProfile } from './openbmc.js';
import { supermicroProfile } from './supermicro.js';
import type { BmcIdentity, VendorProfile } from './types.js';

export { defineProfile, PROFILE_DEFAULTS } from './base.js';
export type { BmcIdentity, HookContext, InsertFields, VendorProfile, VendorProfileSpec } from './types.js';

/** Every built-in profile, most specific first; `generic` last. */
export const VENDOR_PROFILES: readonly VendorProfile[] = Object.freeze([
  nvidiaBluefieldProfile,
  dellIdracProfile,
  hpeIloProfile,
  supermicroProfile,
  lenovoXccProfile,
  openbmcProfile,
  genericProfile,
]);

/** A built-in profile by id (`generic`, `idrac`, `ilo`, `supermicro`, `xcc`, `openbmc`, `bluefield`). */
export function profileById(id: string): VendorProfile {
  const p = VENDOR_PROFILES.find((v) => v.id === id);
  if (!p)
    throw new RedfishError(
      'REDFISH_ERR_UNKNOWN_PROFILE',
      `unknown vendor profile '${id}' (known: ${VENDOR_PROFILES.map((v) => v.id).join(', ')})`,
    );
  return p;
}

/**
 * Picks the profile for a BMC identity: the first profile whose every pattern matches, else generic.
 * `override` (an operator's per-BMC setting) wins.
 */
export function selectProfile(
  identity: BmcIdentity & { managerId?: string },
  override?: string,
): VendorProfile {
  if (override) return profileById(override);
  for (const p of VENDOR_PROFILES) {
    const m = p.match;
    if (!m) continue;
    const ok =
      (!m.manufacturer ||
        m.manufacturer.test(identity.manufacturer) ||
        m.manufacturer.test(identity.vendor)) &&
      (!m.model || m.model.test(identity.model) || m.model.test(identity.product)) &&
      (!m.firmware || m.firmware.test(identity.firmwareVersion)) &&
      (!m.product || m.product.test(identity.product)) &&
      (!m.managerId || m.managerId.test(identity.managerId ?? ''));
    if (ok) return p;
  }
  return genericProfile;
}
