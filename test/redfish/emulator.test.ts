import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedfishClient, startBmcEmulator } from '../../redfish/index.js';
import { FAST_EMULATOR, fastClient, type ImageServer, startImageServer } from './helpers.js';

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(() => images.close());

describe('BMC emulator', () => {
  it('power steps stay ordered when the event loop stalls (regression: systems stuck PoweringOn)', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, powerTransitionMs: 20 });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      await c.post('/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', { ResetType: 'ForceRestart' });
      const until = Date.now() + 80;
      while (Date.now() < until) {
        // stall: both transition timers expire before either runs
      }
      await new Promise((r) => setTimeout(r, 30));
      expect(emu.resource('/redfish/v1/Systems/DPU')?.PowerState).toBe('On');
    } finally {
      await c.close();
      await emu.close();
    }
  });

  it('fetches the image like a BMC on boot (HEAD, Range, full) and reports the boot', async () => {
    const seen: string[] = [];
    const emu = await startBmcEmulator({
      ...FAST_EMULATOR,
      serial: 'EMU-1',
      onBoot: (e) => {
        seen.push(`${e.serial} ${e.via} ${e.imageUrl}`);
      },
    });
    const c = new RedfishClient(fastClient(emu.url));
    const url = `${images.url}/hook.iso`;
    try {
      await c.post('/redfish/v1/Managers/BMC/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia', {
        Image: url,
      });
      await c.patch(
        '/redfish/v1/Systems/DPU',
        { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' } },
        'fetch',
      );
      await c.post('/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', { ResetType: 'ForceRestart' });
      for (let i = 0; i < 200 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(seen).toEqual([`EMU-1 virtual-media ${url}`]);
      const hits = images.hits.filter((h) => h.path === '/hook.iso');
      expect(hits.map((h) => `${h.method} ${h.range ?? ''}`)).toEqual(['HEAD ', 'GET bytes=0-1023', 'GET ']);
      // Once: consumed by the boot; a second reset boots the disk (no new event).
      expect(emu.resource('/redfish/v1/Systems/DPU')?.Boot.BootSourceOverrideEnabled).toBe('Disabled');
    } finally {
      await c.close();
      await emu.close();
    }
  });

  it('rejects bad boot targets and unknown reset types with DMTF messages', async () => {
    const emu = await startBmcEmulator(FAST_EMULATOR);
    const c = new RedfishClient(fastClient(emu.url));
    try {
      await expect(
        c.patch('/redfish/v1/Systems/DPU', { Boot: { BootSourceOverrideTarget: 'Floppy' } }),
      ).rejects.toMatchObject({
        status: 400,
        messages: [expect.objectContaining({ MessageId: 'Base.1.16.PropertyValueNotInList' })],
      });
      await expect(
        c.post('/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', { ResetType: 'Suspend' }),
      ).rejects.toMatchObject({
        status: 400,
        messages: [expect.objectContaining({ RelatedProperties: ['#/ResetType'] })],
      });
    } finally {
      await c.close();
      await emu.close();
    }
  });

  it('password change: 403 until the account password is PATCHed, then the new password works', async () => {
    const emu = await startBmcEmulator({
      ...FAST_EMULATOR,
      persona: 'bluefield',
      passwordChangeRequired: true,
    });
    const c = new RedfishClient(fastClient(emu.url, { auth: 'basic' }));
    try {
      await expect(c.get('/redfish/v1/Systems')).rejects.toMatchObject({
        code: 'REDFISH_ERR_PASSWORD_CHANGE_REQUIRED',
      });
      await c.patch('/redfish/v1/AccountService/Accounts/1', { Password: 'n3w-Secret' });
      const fresh = new RedfishClient(fastClient(emu.url, { password: 'n3w-Secret' }));
      expect((await fresh.get('/redfish/v1/Systems')).status).toBe(200);
      await fresh.close();
    } finally {
      await c.close();
      await emu.close();
    }
  });
});
