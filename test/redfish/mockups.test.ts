/**
 * `bmc check` against the DMTF mockups in ../shared/redfish-mockups (read at test time, never copied),
 * served by the emulator's --mockup mode, and the CLI commands run in-process.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BmcEmulator,
  checkBmc,
  provisionBmc,
  RedfishClient,
  startBmcEmulator,
} from '../../redfish/index.js';
import {
  cli,
  FAST_EMULATOR,
  FAST_WAITS,
  fastClient,
  type ImageServer,
  mockupsDir,
  startImageServer,
} from './helpers.js';
import { inCI } from '../helpers/tools.js';

const smartnic = join(mockupsDir, 'public-smartnic');
const rackmount = join(mockupsDir, 'public-rackmount1');

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(() => images.close());

if (inCI && !existsSync(smartnic)) throw new Error(`DMTF mockups missing under CI=true: ${smartnic}`);

describe.skipIf(!existsSync(smartnic))('DMTF mockups', () => {
  let emu: BmcEmulator | undefined;
  afterEach(async () => {
    await emu?.close();
    emu = undefined;
  });

  it('public-smartnic: prefers the SystemType DPU system; reports why nothing works on it', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, mockupDir: smartnic });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      const r = await checkBmc(c);
      expect(r.redfishVersion).toBe('1.15.0');
      expect(r.system.id).toBe('Card1-SoC');
      expect(r.systems.map((s) => s.id)).toEqual(['437XR1138R2', 'Card1-SoC']);
      expect(r.profile.id).toBe('generic');
      // CD1 under Managers/BMC has no InsertMedia action but headers.json allows PATCH.
      expect(r.virtualMedia.find((m) => m.id === 'CD1')).toMatchObject({
        under: 'manager',
        insert: 'patch',
        inserted: true,
      });
      expect(r.recommended).toBeUndefined();
      expect(r.strategies.find((s) => s.strategy === 'virtual-media')?.reasons.join()).toMatch(
        /no Boot object/,
      );
    } finally {
      await c.close();
    }
  });

  it('public-smartnic: choosing the host system gives virtual media via the manager slot', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, mockupDir: smartnic });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      const r = await checkBmc(c, { systemId: '437XR1138R2' });
      expect(r.recommended).toBe('virtual-media');
    } finally {
      await c.close();
    }
  });

  it('public-rackmount1: virtual media by PATCH under the system; SimpleUpdate offers no OS target', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, mockupDir: rackmount });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      const r = await checkBmc(c);
      expect(r.system.id).toBe('437XR1138R2');
      expect(r.virtualMedia.map((m) => `${m.id}:${m.under}:${m.insert}`)).toEqual([
        'Floppy1:system:patch',
        'CD1:system:patch',
        'CD2:system:patch',
      ]);
      expect(r.simpleUpdate?.protocols).toContain('HTTPS'); // from SimpleUpdateActionInfo
      expect(r.recommended).toBe('virtual-media');
      expect(r.strategies.find((s) => s.strategy === 'image-push')?.usable).toBe(false);
    } finally {
      await c.close();
    }
  });

  it('public-rackmount1: provisions by PATCH (eject the stale CD first) and boots the image', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, mockupDir: rackmount, serial: 'RACK-1' });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      const url = `${images.url}/dpu.iso`;
      const r = await provisionBmc(c, { image: { url }, waits: FAST_WAITS });
      expect(r.strategy).toBe('virtual-media');
      const patches = emu.requests.filter((q) => q.method === 'PATCH').map((q) => q.path);
      expect(patches.slice(0, 3)).toEqual([
        '/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD1',
        '/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD2',
        '/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD1',
      ]);
      for (let i = 0; i < 100 && emu.boots.length === 0; i++) await new Promise((res) => setTimeout(res, 10));
      expect(emu.boots[0]).toMatchObject({ imageUrl: url, serial: 'RACK-1', via: 'virtual-media' });
    } finally {
      await c.close();
    }
  });

  it('cli: bmc check exits 0 on rackmount1 and non-zero on the smartnic DPU; --json is machine-readable', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, mockupDir: rackmount });
    const ok = await cli(['bmc', 'check', '--bmc', emu.url, '--username', 'admin', '--password', 'secret']);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/ok {3}virtual-media .*\(recommended\)/);
    await emu.close();
    emu = await startBmcEmulator({ ...FAST_EMULATOR, mockupDir: smartnic });
    const bad = await cli([
      'bmc',
      'check',
      '--bmc',
      emu.url,
      '--username',
      'admin',
      '--password',
      'secret',
      '--json',
    ]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out).system.id).toBe('Card1-SoC');
    expect(bad.err).toMatch(/^error: REDFISH_ERR_NO_STRATEGY: /);
  });

  it('cli: bmc check reports wrong credentials as REDFISH_ERR_AUTH', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, mockupDir: rackmount });
    const r = await cli(['bmc', 'check', '--bmc', emu.url, '--username', 'admin', '--password', 'nope']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: REDFISH_ERR_AUTH: /);
  });
});

describe('cli: bmc provision', () => {
  it('prints each step and exits 0 when the system was reset into the image', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'bluefield', serial: 'BF-9' });
    try {
      const r = await cli([
        'bmc',
        'provision',
        '--bmc',
        emu.url,
        '--username',
        'admin',
        '--password',
        'secret',
        '--image',
        `${images.url}/os.bfb`,
        '--timeout',
        '5',
      ]);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain('[image-push] prepare done: enabled BMC RShim');
      expect(r.out).toContain('[image-push] task done');
      expect(r.out).toMatch(/\[image-push\] os-running done: BootProgress\.OemLastState OsIsRunning/);
      expect(r.out).toMatch(
        /provisioned: system Bluefield \(SN BF-9\) .* via image-push \[profile bluefield\]/,
      );
    } finally {
      await emu.close();
    }
  });

  it('rejects a strategy the BMC does not offer, and bad flags', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'bluefield' });
    try {
      const r = await cli([
        'bmc',
        'provision',
        '--bmc',
        emu.url,
        '--username',
        'admin',
        '--password',
        'secret',
        '--image',
        `${images.url}/x.iso`,
        '--strategy',
        'virtual-media',
      ]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^error: REDFISH_ERR_NO_STRATEGY: strategy virtual-media will not work/);
      const u = await cli([
        'bmc',
        'provision',
        '--bmc',
        emu.url,
        '--username',
        'a',
        '--password',
        'b',
        '--image',
        'x',
        '--strategy',
        'pxe',
      ]);
      expect(u.code).toBe(2);
      expect(u.err).toMatch(/CLI_ERR_USAGE/);
    } finally {
      await emu.close();
    }
  });
});
