import { defineProfile } from './base.js';

/** HPE iLO 5/6. */
export const hpeIloProfile = defineProfile({
  id: 'ilo',
  name: 'HPE iLO',
  match: { manufacturer: /^(HPE|Hewlett)/i },
  // iLO answers 400 UnableToModifyDuringSystemPOST while the system is in POST, and
  // InvalidOperationForSystemState right after power operations (Ironic post_boot_retry_*, sushy retry list).
  transientMessageIds: ['UnableToModifyDuringSystemPOST', 'InvalidOperationForSystemState'],
  virtualMedia: {
    // iLO keeps VirtualMedia under Managers/1 only.
    search: 'manager-first',
    // iLO: EjectMedia needs a `{}` body, else 415/400 (sushy fix-eject-media-empty-dict).
    ejectBody: 'empty-object',
  },
  notes: [
    'Gen9/DL160 lack BootSourceOverrideMode; probing drops the mode when the system does not report it.',
  ],
});
