import { defineProfile } from './base.js';

/** Supermicro X11/X12/X13 BMC. */
export const supermicroProfile = defineProfile({
  id: 'supermicro',
  name: 'Supermicro',
  match: { manufacturer: /^Supermicro/i },
  virtualMedia: {
    search: 'manager-first',
    // X11/X12: 400 "The property Inserted is not in the list of valid properties" — omit Inserted and
    // WriteProtected (sushy fix-insert-media-payload; ansible community.general#4839).
    insertFields: { inserted: false, writeProtected: false },
    // After eject ImageName is not cleared; ConnectedVia NotConnected is the reliable empty signal
    // (ansible community.general#12537).
    emptySignal: 'connected-via',
  },
  hooks: {
    // The virtual CD boots only with target UsbCd (except ARS-111GL-NHR, which lists only Cd):
    // map Cd → UsbCd when the BMC offers it (sushy `set_system_boot_options`).
    cdBootTarget: (allowable) => (allowable.includes('UsbCd') ? 'UsbCd' : 'Cd'),
  },
  notes: [
    'Must send BootSourceOverrideEnabled every time (always done); boot mode may reset to BIOS after a device change (Ironic stories 2008547/2008712).',
    'Cannot import a custom CA for HTTPS virtual media (suse-edge#220): serve the ISO over plain HTTP.',
  ],
});
