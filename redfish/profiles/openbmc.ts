import { defineProfile } from './base.js';

/** OpenBMC bmcweb (and BMCs built on it without their own profile). */
export const openbmcProfile = defineProfile({
  id: 'openbmc',
  name: 'OpenBMC (bmcweb)',
  match: { manufacturer: /^OpenBMC/i },
  virtualMedia: {
    // bmcweb serves InsertMedia only on Managers/bmc "Legacy" slots (virtual_media.hpp).
    search: 'manager-first',
    // bmcweb `validateParams`: TransferMethod must be Stream; WriteProtected defaults to false, so send it.
    insertFields: { transferMethod: true, transferProtocolType: true },
    // bmcweb getTransferProtocolFromParam: only https:// and smb:// — plain http:// is rejected
    // with ResourceAtUriInUnknownFormat.
    imageSchemes: ['https', 'smb'],
  },
  notes: ['Serve the ISO over HTTPS (or SMB): plain HTTP is rejected.'],
});
