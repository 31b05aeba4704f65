import { odataId, type RedfishJson } from '../client.js';
import { defineProfile } from './base.js';

/** NVIDIA BlueField-2/3/4 DPU BMC (bmcweb-based). */
export const nvidiaBluefieldProfile = defineProfile({
  id: 'bluefield',
  name: 'NVIDIA BlueField BMC',
  // DPF detects BlueField from ServiceRoot Product / the Bluefield_BMC manager id (doca-platform client.go).
  match: { manufacturer: /^NVIDIA/i, model: /BlueField/i },
  virtualMedia: {
    // BlueField-4 stages the OS and InsertMedia's it from Managers/{bmc}/VirtualMedia/IMAGE (DPF
    // insertVirtualMedia) with TransferMethod Stream; BF-2/3 have no virtual media at all.
    search: 'manager-first',
    preferredSlots: ['IMAGE'],
    insertFields: { transferMethod: true },
  },
  boot: {
    // BlueField BMC docs (boot-configuration): Boot must be PATCHed to Systems/Bluefield/Settings,
    // pending until the next boot.
    where: 'settings-always',
  },
  imagePush: {
    // BF-2/3: BFB → FirmwareInventory/DPU_OS; BF-4: BlueField_OS_Image_CPU_0 (NVIDIA docs, DPF).
    osTargets: [/^DPU_OS$/i, /^BlueField_OS_Image/i],
    // NVIDIA's documented SimpleUpdate writes Targets without a leading slash
    // ("redfish/v1/UpdateService/FirmwareInventory/DPU_OS"); BMC ≥ 24.07 for HTTP/HTTPS.
    targetsLeadingSlash: false,
    // The BFB installs on the Arm after the push; NVIDIA's BFB-from-BMC procedure then waits for
    // Systems/Bluefield BootProgress.OemLastState "OsIsRunning" (DPF `Installing` does the same).
    // BootProgress with OemLastState BootRom → BL2 → BL31 → UEFI → OsStarting → OsIsRunning is
    // documented from BlueField BMC firmware 24.04 ("Monitoring BlueField Arm State") through 25.07
    // ("BlueField Arm State"); "OsIsRunning" marks boot complete in DPU mode (NIC mode stops at UEFI).
    // The BMC polls the Arm over NC-SI only every ~30 s, so states can be skipped or stale right after
    // a reset — hence the wait ignores an OsIsRunning left over from before it (strategies/os-ready.ts).
    // Firmware without BootProgress is not waited on.
    awaitOemLastState: 'OsIsRunning',
  },
  hooks: {
    /**
     * The BFB goes to the DPU through the BMC's RShim: enable it first (`PATCH Managers/<bmc>/Oem/Nvidia
     * {"BmcRShim":{"BmcRShimEnabled":true}}`, NVIDIA docs "deploying BlueField software using BFB from
     * BMC"); the host's RShim must be off. Skipped when the manager does not expose the switch.
     */
    beforeImagePush: async ({ client, probe }) => {
      for (const m of probe.managers) {
        const oem = (m.raw.Oem as RedfishJson | undefined)?.Nvidia;
        const path = odataId(oem) ?? (oem ? `${m.path}/Oem/Nvidia` : undefined);
        if (!path) continue;
        const cur = await client.get(path);
        const enabled = (cur.body.BmcRShim as RedfishJson | undefined)?.BmcRShimEnabled === true;
        if (!enabled) await client.patch(path, { BmcRShim: { BmcRShimEnabled: true } }, cur.etag);
        return enabled ? `BMC RShim already enabled (${path})` : `enabled BMC RShim (${path})`;
      }
      return undefined;
    },
  },
  notes: [
    'Default password 0penBmc must be changed first (403 PasswordChangeRequired); BF-3 user root, BF-4 admin.',
    'After the BFB task completes, the DPU installs and reports BootProgress.OemLastState OsIsRunning (~3 min more for cloud-init).',
  ],
});
