import { defineProfile } from './base.js';

/** Dell iDRAC 9 (≥ 6.00.02) and iDRAC 10. */
export const dellIdracProfile = defineProfile({
  id: 'idrac',
  name: 'Dell iDRAC',
  match: { manufacturer: /^Dell/i },
  // iDRAC 503 RAC0218 "maximum number of user sessions" (gofish#75); SYS518 "not ready" (Ironic);
  // iDRAC10 409 ActionParameterValueConflict on `On` shortly after ForceOff (Ironic power_on_conflict_retry_*).
  transientMessageIds: ['RAC0218', 'ActionParameterValueConflict'],
  virtualMedia: {
    // iDRAC ≥ 6.00.02 moved VirtualMedia to Systems/System.Embedded.1/VirtualMedia/{1,2}
    // (dell/iDRAC-Redfish-Scripting#265); iDRAC10 boots only slot 1 (Ironic `_get_acceptable_media_id`).
    search: 'system-first',
    preferredSlots: ['1', 'CD'],
    // iDRAC reports `Inserted` briefly after eject (Ironic story 2008504): the eject confirmation polls,
    // which the defaults already do; no flag needed.
  },
  notes: [
    'iDRAC < 6.00 needs the OEM ImportSystemConfiguration path (not implemented): standard virtual-media boot is broken there.',
    'Boot-mode changes are BIOS jobs applied on reboot.',
  ],
});
