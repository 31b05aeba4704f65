import { defineProfile } from './base.js';

/** Lenovo XClarity Controller. */
export const lenovoXccProfile = defineProfile({
  id: 'xcc',
  name: 'Lenovo XCC',
  match: { manufacturer: /^Lenovo/i },
  virtualMedia: {
    // Older XCC (SD530, fw < 2.50) have no InsertMedia action: PATCH only, and the PATCH needs
    // `Inserted` (sushy fix-virtual-media-fallback; bmclib; lenovo/python-redfish-lenovo#9). Probing finds
    // the missing action; the default insert fields already carry Inserted.
    search: 'manager-first',
  },
  notes: ['Up to 4 files can be mounted concurrently; fw < 2.50 has no predefined VirtualMedia members.'],
});
