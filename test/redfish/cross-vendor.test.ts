/**
 * Cross-vendor specs (STYLE.md lesson 13): one table per operation listing the exact mutating requests
 * the controller sends to each emulated BMC dialect. A profile change that alters the wire shows here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EMULATOR_PERSONAS,
  type EmulatorPersonaId,
  finishProvisioning,
  provisionBmc,
  RedfishClient,
  type RecordedRequest,
  startBmcEmulator,
} from '../../redfish/index.js';
import { FAST_EMULATOR, FAST_WAITS, fastClient, type ImageServer, startImageServer } from './helpers.js';

type Req = [method: string, path: string, body: unknown];
const IMG = '<image>';

/** Virtual media insert, per dialect. */
const INSERT: Partial<Record<EmulatorPersonaId, Req>> = {
  generic: [
    'POST',
    '/redfish/v1/Managers/BMC/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia',
    { Image: IMG, Inserted: true, WriteProtected: true },
  ],
  // iDRAC ≥ 6.00.02: media under the system, slot 1.
  idrac: [
    'POST',
    '/redfish/v1/Systems/System.Embedded.1/VirtualMedia/1/Actions/VirtualMedia.InsertMedia',
    { Image: IMG, Inserted: true, WriteProtected: true },
  ],
  // iLO: the CD slot is Managers/1/VirtualMedia/2 (slot 1 is floppy/USB).
  ilo: [
    'POST',
    '/redfish/v1/Managers/1/VirtualMedia/2/Actions/VirtualMedia.InsertMedia',
    { Image: IMG, Inserted: true, WriteProtected: true },
  ],
  // Supermicro: no Inserted/WriteProtected.
  supermicro: [
    'POST',
    '/redfish/v1/Managers/1/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia',
    { Image: IMG },
  ],
  // Lenovo XCC: PATCH, with Inserted.
  xcc: [
    'PATCH',
    '/redfish/v1/Managers/1/VirtualMedia/EXT1',
    { Image: IMG, Inserted: true, WriteProtected: true },
  ],
  // OpenBMC: https image, TransferProtocolType and TransferMethod Stream on the Legacy slot.
  openbmc: [
    'POST',
    '/redfish/v1/Managers/bmc/VirtualMedia/Slot_1/Actions/VirtualMedia.InsertMedia',
    {
      Image: IMG,
      Inserted: true,
      WriteProtected: true,
      TransferProtocolType: 'HTTPS',
      TransferMethod: 'Stream',
    },
  ],
};

/** One-time boot override to the virtual CD. */
const BOOT_CD: Partial<Record<EmulatorPersonaId, Req>> = {
  generic: [
    'PATCH',
    '/redfish/v1/Systems/DPU',
    {
      Boot: {
        BootSourceOverrideTarget: 'Cd',
        BootSourceOverrideEnabled: 'Once',
        BootSourceOverrideMode: 'UEFI',
      },
    },
  ],
  idrac: [
    'PATCH',
    '/redfish/v1/Systems/System.Embedded.1',
    {
      Boot: {
        BootSourceOverrideTarget: 'Cd',
        BootSourceOverrideEnabled: 'Once',
        BootSourceOverrideMode: 'UEFI',
      },
    },
  ],
  ilo: [
    'PATCH',
    '/redfish/v1/Systems/1',
    {
      Boot: {
        BootSourceOverrideTarget: 'Cd',
        BootSourceOverrideEnabled: 'Once',
        BootSourceOverrideMode: 'UEFI',
      },
    },
  ],
  supermicro: [
    'PATCH',
    '/redfish/v1/Systems/1',
    {
      Boot: {
        BootSourceOverrideTarget: 'UsbCd',
        BootSourceOverrideEnabled: 'Once',
        BootSourceOverrideMode: 'UEFI',
      },
    },
  ],
  xcc: [
    'PATCH',
    '/redfish/v1/Systems/1',
    {
      Boot: {
        BootSourceOverrideTarget: 'Cd',
        BootSourceOverrideEnabled: 'Once',
        BootSourceOverrideMode: 'UEFI',
      },
    },
  ],
  openbmc: [
    'PATCH',
    '/redfish/v1/Systems/system',
    {
      Boot: {
        BootSourceOverrideTarget: 'Cd',
        BootSourceOverrideEnabled: 'Once',
        BootSourceOverrideMode: 'UEFI',
      },
    },
  ],
};

/** Reset into the image (all systems start On). */
const RESET: Record<EmulatorPersonaId, Req> = {
  generic: ['POST', '/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', { ResetType: 'ForceRestart' }],
  bluefield: [
    'POST',
    '/redfish/v1/Systems/Bluefield/Actions/ComputerSystem.Reset',
    { ResetType: 'ForceRestart' },
  ],
  idrac: [
    'POST',
    '/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset',
    { ResetType: 'ForceRestart' },
  ],
  ilo: ['POST', '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', { ResetType: 'ForceRestart' }],
  supermicro: ['POST', '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', { ResetType: 'ForceRestart' }],
  xcc: ['POST', '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', { ResetType: 'ForceRestart' }],
  openbmc: ['POST', '/redfish/v1/Systems/system/Actions/ComputerSystem.Reset', { ResetType: 'ForceRestart' }],
};

/** Teardown eject. */
const EJECT: Partial<Record<EmulatorPersonaId, Req>> = {
  generic: ['POST', '/redfish/v1/Managers/BMC/VirtualMedia/CD1/Actions/VirtualMedia.EjectMedia', {}],
  idrac: ['POST', '/redfish/v1/Systems/System.Embedded.1/VirtualMedia/1/Actions/VirtualMedia.EjectMedia', {}],
  // iLO 415s an EjectMedia without `{}`.
  ilo: ['POST', '/redfish/v1/Managers/1/VirtualMedia/2/Actions/VirtualMedia.EjectMedia', {}],
  supermicro: ['POST', '/redfish/v1/Managers/1/VirtualMedia/CD1/Actions/VirtualMedia.EjectMedia', {}],
  xcc: ['PATCH', '/redfish/v1/Managers/1/VirtualMedia/EXT1', { Image: null, Inserted: false }],
  openbmc: ['POST', '/redfish/v1/Managers/bmc/VirtualMedia/Slot_1/Actions/VirtualMedia.EjectMedia', {}],
};

/** Teardown: clear the boot override (BlueField: on the Settings object). */
const CLEAR_BOOT: Record<EmulatorPersonaId, Req> = {
  generic: [
    'PATCH',
    '/redfish/v1/Systems/DPU',
    { Boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' } },
  ],
  bluefield: [
    'PATCH',
    '/redfish/v1/Systems/Bluefield/Settings',
    { Boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' } },
  ],
  idrac: [
    'PATCH',
    '/redfish/v1/Systems/System.Embedded.1',
    { Boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' } },
  ],
  ilo: [
    'PATCH',
    '/redfish/v1/Systems/1',
    { Boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' } },
  ],
  supermicro: [
    'PATCH',
    '/redfish/v1/Systems/1',
    { Boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' } },
  ],
  xcc: [
    'PATCH',
    '/redfish/v1/Systems/1',
    { Boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' } },
  ],
  openbmc: [
    'PATCH',
    '/redfish/v1/Systems/system',
    { Boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' } },
  ],
};

/** Image push (BlueField: RShim first, Targets without a leading slash). */
const IMAGE_PUSH: Partial<Record<EmulatorPersonaId, Req[]>> = {
  bluefield: [
    ['PATCH', '/redfish/v1/Managers/Bluefield_BMC/Oem/Nvidia', { BmcRShim: { BmcRShimEnabled: true } }],
    [
      'POST',
      '/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate',
      {
        ImageURI: IMG,
        Targets: ['redfish/v1/UpdateService/FirmwareInventory/DPU_OS'],
        TransferProtocol: 'HTTP',
      },
    ],
  ],
};

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(() => images.close());

const mutating = (reqs: RecordedRequest[], url: string): Req[] =>
  reqs
    .filter((r) => r.method !== 'GET' && !r.path.includes('/SessionService/Sessions'))
    .map((r) => [r.method, r.path, JSON.parse(JSON.stringify(r.body ?? null).replaceAll(url, IMG))]);

describe('cross-vendor request tables', () => {
  for (const persona of Object.keys(EMULATOR_PERSONAS) as EmulatorPersonaId[]) {
    it(`${persona}: provision + finish send exactly the tabled requests, PATCHes with If-Match`, async () => {
      const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona });
      const c = new RedfishClient(fastClient(emu.url));
      const url = persona === 'openbmc' ? 'https://images.invalid/dpu.iso' : `${images.url}/dpu.iso`;
      try {
        await provisionBmc(c, { image: { url }, waits: FAST_WAITS });
        await finishProvisioning(c, { waits: FAST_WAITS });
      } finally {
        await c.close();
        await emu.close();
      }
      const expected: Req[] = [
        ...(INSERT[persona] ? [INSERT[persona]!, BOOT_CD[persona]!] : IMAGE_PUSH[persona]!),
        RESET[persona],
        ...(EJECT[persona] ? [EJECT[persona]!] : []),
        CLEAR_BOOT[persona],
      ];
      expect(mutating(emu.requests, url)).toEqual(expected);
      for (const p of emu.requests.filter((r) => r.method === 'PATCH'))
        expect(p.ifMatch, p.path).toBeTruthy();
    });
  }

  it('the generic profile on a Supermicro adapts the payload from the BMC errors (sushy-style), but only the profile knows UsbCd', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'supermicro' });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      await provisionBmc(c, {
        image: { url: `${images.url}/dpu.iso` },
        profileId: 'generic',
        waits: FAST_WAITS,
      });
    } finally {
      await c.close();
      await emu.close();
    }
    const inserts = emu.requests
      .filter((r) => r.path.endsWith('InsertMedia'))
      .map((r) => Object.keys(r.body as object));
    expect(inserts).toEqual([
      ['Image', 'Inserted', 'WriteProtected'],
      ['Image', 'WriteProtected'],
      ['Image'],
    ]);
    const boot = emu.requests.find((r) => r.method === 'PATCH' && r.path === '/redfish/v1/Systems/1');
    expect(
      (boot?.body as { Boot?: { BootSourceOverrideTarget?: string } } | undefined)?.Boot
        ?.BootSourceOverrideTarget,
    ).toBe('Cd');
    // …and the Supermicro then boots its disk, not the CD: no boot event.
    expect(emu.boots).toHaveLength(0);
  });

  it('the generic profile on OpenBMC adds TransferMethod when bmcweb asks for it', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'openbmc' });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      await provisionBmc(c, {
        image: { url: 'https://images.invalid/dpu.iso' },
        profileId: 'generic',
        waits: FAST_WAITS,
      });
    } finally {
      await c.close();
      await emu.close();
    }
    const inserts = emu.requests
      .filter((r) => r.path.endsWith('InsertMedia'))
      .map((r) => (r.body as { TransferMethod?: string }).TransferMethod);
    expect(inserts).toEqual([undefined, 'Stream']);
  });
});
