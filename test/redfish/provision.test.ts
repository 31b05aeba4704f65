import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BmcEmulator,
  EMULATOR_PERSONAS,
  type EmulatorPersonaId,
  finishProvisioning,
  provisionBmc,
  RedfishClient,
  type StepEvent,
  startBmcEmulator,
} from '../../redfish/index.js';
import { FAST_EMULATOR, FAST_WAITS, fastClient, type ImageServer, startImageServer } from './helpers.js';

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(async () => {
  await images.close();
});

async function withEmulator<T>(
  persona: EmulatorPersonaId,
  fn: (emu: BmcEmulator, c: RedfishClient) => Promise<T>,
  extra = {},
) {
  const emu = await startBmcEmulator({
    ...FAST_EMULATOR,
    persona,
    serial: `SN-${persona}`,
    imageFetch: { insecure: true },
    ...extra,
  });
  const c = new RedfishClient(fastClient(emu.url));
  try {
    return await fn(emu, c);
  } finally {
    await c.close();
    await emu.close();
  }
}

const waitBoot = async (emu: BmcEmulator) => {
  for (let i = 0; i < 200 && emu.boots.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  return emu.boots[0];
};

describe('provisionBmc against every emulated persona', () => {
  const expected: Record<EmulatorPersonaId, string> = {
    generic: 'virtual-media',
    bluefield: 'image-push',
    idrac: 'virtual-media',
    ilo: 'virtual-media',
    supermicro: 'virtual-media',
    xcc: 'virtual-media',
    openbmc: 'virtual-media',
  };
  for (const persona of Object.keys(EMULATOR_PERSONAS) as EmulatorPersonaId[]) {
    it(`${persona}: auto picks ${expected[persona]} and the system boots the image`, async () => {
      await withEmulator(persona, async (emu, c) => {
        // bmcweb accepts only https:// images: hand it an https URL it can fetch is out of scope here —
        // the URL is checked, the fetch is recorded as failed, the strategy itself must succeed.
        const url =
          persona === 'openbmc'
            ? `${images.url.replace('http:', 'https:')}/dpu.iso`
            : `${images.url}/dpu.iso`;
        const steps: StepEvent[] = [];
        const res = await provisionBmc(c, {
          image: { url },
          waits: FAST_WAITS,
          onStep: (e) => steps.push(e),
        });
        expect(res.strategy).toBe(expected[persona]);
        expect(res.profile).toBe(persona);
        // BlueField goes on to wait for BootProgress OsIsRunning (boot-progress.test.ts).
        expect(
          steps
            .filter((s) => s.status === 'done')
            .map((s) => s.step)
            .at(-1),
        ).toBe(persona === 'bluefield' ? 'os-running' : 'reset');
        const boot = await waitBoot(emu);
        expect(boot).toMatchObject({ imageUrl: url, serial: `SN-${persona}`, via: expected[persona] });
        if (persona !== 'openbmc')
          expect(boot?.fetch).toMatchObject({ headStatus: 200, rangeStatus: 206, bytes: 64 * 1024 });
      });
    });
  }

  it('generic: http-boot on request', async () => {
    await withEmulator('generic', async (emu, c) => {
      const res = await provisionBmc(c, {
        image: { url: `${images.url}/boot.efi` },
        strategy: 'http-boot',
        waits: FAST_WAITS,
      });
      expect(res.strategy).toBe('http-boot');
      expect((await waitBoot(emu))?.via).toBe('http-boot');
      // Once semantics: the override went back to Disabled after the boot.
      expect(emu.resource('/redfish/v1/Systems/DPU')?.Boot.BootSourceOverrideEnabled).toBe('Disabled');
    });
  });

  it('generic: image-push on request; bluefield: boot via Settings for http-boot', async () => {
    await withEmulator('generic', async (emu, c) => {
      const res = await provisionBmc(c, {
        image: { url: `${images.url}/os.img` },
        strategy: 'image-push',
        waits: FAST_WAITS,
      });
      expect(res.strategy).toBe('image-push');
      expect((await waitBoot(emu))?.via).toBe('image-push');
    });
    await withEmulator('bluefield', async (emu, c) => {
      await provisionBmc(c, {
        image: { url: `${images.url}/boot.efi` },
        strategy: 'http-boot',
        waits: FAST_WAITS,
      });
      expect(
        emu.requests.some((r) => r.method === 'PATCH' && r.path === '/redfish/v1/Systems/Bluefield/Settings'),
      ).toBe(true);
      expect((await waitBoot(emu))?.via).toBe('http-boot');
    });
  });

  it('powers on a system that is off (On, not ForceRestart)', async () => {
    await withEmulator('generic', async (emu, c) => {
      await c.post('/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', { ResetType: 'ForceOff' });
      await new Promise((r) => setTimeout(r, 80));
      await provisionBmc(c, { image: { url: `${images.url}/dpu.iso` }, waits: FAST_WAITS });
      const resets = emu.requests
        .filter((r) => r.path.endsWith('ComputerSystem.Reset'))
        .map((r) => (r.body as { ResetType: string }).ResetType);
      expect(resets).toEqual(['ForceOff', 'On']);
    });
  });

  it('finishProvisioning ejects media and clears the override', async () => {
    await withEmulator('generic', async (emu, c) => {
      await provisionBmc(c, { image: { url: `${images.url}/dpu.iso` }, waits: FAST_WAITS });
      await finishProvisioning(c, { waits: FAST_WAITS });
      const slot = emu.resource('/redfish/v1/Managers/BMC/VirtualMedia/CD1');
      expect(slot?.Inserted).toBe(false);
      expect(emu.resource('/redfish/v1/Systems/DPU')?.Boot.BootSourceOverrideTarget).toBe('None');
    });
  });
});
