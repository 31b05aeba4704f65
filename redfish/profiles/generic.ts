import { defineProfile } from './base.js';

/** DMTF-conformant BMC (DSP0266 / 2025.4 schemas): every default, nothing else. Used when no other profile matches. */
export const genericProfile = defineProfile({
  id: 'generic',
  name: 'Generic DMTF Redfish',
  notes: [
    'Capabilities are probed; dialect errors (TransferProtocolType, TransferMethod, credentials) are retried as sushy does.',
  ],
});
