/**
 * BlueField: after the reset of an image push, the run waits (bounded) until the system reports
 * `BootProgress.OemLastState == "OsIsRunning"` — the profile's `imagePush.awaitOemLastState` — where
 * the system reports BootProgress at all. The emulator's bluefield persona moves BootProgress through
 * BootRom → … → OsIsRunning after a reset; its fault layer can stop it or freeze it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BmcEmulator,
  EMULATOR_PERSONAS,
  type EmulatorPersona,
  type EmulatorPersonaId,
  profileById,
  provisionBmc,
  RedfishClient,
  type RedfishError,
  type StepEvent,
  startBmcEmulator,
  VENDOR_PROFILES,
} from '../../redfish/index.js';
import { FAST_EMULATOR, FAST_WAITS, fastClient, type ImageServer, startImageServer } from './helpers.js';

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(() => images.close());

const SHORT_OS = { ...FAST_WAITS, os: { timeoutMs: 400, intervalMs: 10, maxIntervalMs: 40 } };

async function push(
  persona: EmulatorPersonaId | EmulatorPersona,
  arrange: (emu: BmcEmulator) => void = () => undefined,
  waits = FAST_WAITS,
  osBootMs?: number,
) {
  const emu = await startBmcEmulator({
    ...FAST_EMULATOR,
    persona,
    ...(osBootMs !== undefined ? { osBootMs } : {}),
  });
  const c = new RedfishClient(fastClient(emu.url));
  const steps: StepEvent[] = [];
  arrange(emu);
  const t0 = Date.now();
  try {
    const out = await provisionBmc(c, {
      image: { url: `${images.url}/os.bfb` },
      strategy: 'image-push',
      waits,
      onStep: (e) => steps.push(e),
    }).then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, e: e as RedfishError }),
    );
    const sys = emu.resource(
      `/redfish/v1/Systems/${typeof persona === 'string' ? 'Bluefield' : persona.systemId}`,
    );
    return { ...out, steps, ms: Date.now() - t0, bootProgress: sys?.BootProgress };
  } finally {
    await c.close();
    await emu.close();
  }
}

const done = (steps: StepEvent[], step: string) => steps.find((s) => s.step === step && s.status === 'done');

describe('BlueField: wait for BootProgress OsIsRunning after an image push', () => {
  it('only the BlueField profile waits, for OsIsRunning', () => {
    expect(profileById('bluefield').imagePush.awaitOemLastState).toBe('OsIsRunning');
    for (const p of VENDOR_PROFILES.filter((v) => v.id !== 'bluefield'))
      expect(p.imagePush.awaitOemLastState, p.id).toBeUndefined();
  });

  it('follows the Arm through its boot stages and ends when the OS runs', async () => {
    const out = await push('bluefield');
    expect(out.ok).toBe(true);
    expect(out.steps.filter((s) => s.status === 'done').map((s) => s.step)).toEqual([
      'prepare',
      'simple-update',
      'task',
      'reset',
      'os-running',
    ]);
    const detail = done(out.steps, 'os-running')?.detail ?? '';
    expect(detail).toMatch(/^BootProgress\.OemLastState OsIsRunning \(seen: .+ → OsIsRunning\)$/);
    // The stages in between are sampled, never reordered.
    const seen = /seen: (.*)\)/.exec(detail)?.[1]?.split(' → ') ?? [];
    const order = EMULATOR_PERSONAS.bluefield.bootProgress;
    expect(seen.map((s) => order.indexOf(s as (typeof order)[number]))).toEqual(
      [...seen.map((s) => order.indexOf(s as (typeof order)[number]))].sort((a, b) => a - b),
    );
    expect(out.bootProgress).toMatchObject({ LastState: 'OEM', OemLastState: 'OsIsRunning' });
  });

  it('an Arm stuck in UEFI fails with REDFISH_ERR_WAIT_TIMEOUT naming the state, within the bound', async () => {
    const out = await push(
      'bluefield',
      (emu) => {
        emu.faults.bootProgressStopsAt = 'UEFI';
      },
      SHORT_OS,
    );
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.e.code).toBe('REDFISH_ERR_WAIT_TIMEOUT');
    expect(out.e.message).toMatch(/BootProgress\.OemLastState OsIsRunning \(last seen: UEFI\)/);
    expect(out.steps.at(-1)).toMatchObject({ step: 'os-running', status: 'failed' });
    expect(out.ms).toBeLessThan(1_500);
  });

  it('an OsIsRunning left over from before the reset does not count', async () => {
    // The BMC refreshes BootProgress only every ~30 s: right after the reset it may still show the
    // old OS running. Here it never notices the reboot at all.
    const out = await push(
      'bluefield',
      (emu) => {
        emu.faults.frozenBootProgress = true;
      },
      SHORT_OS,
    );
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.e.code).toBe('REDFISH_ERR_WAIT_TIMEOUT');
    expect(out.e.message).toContain('last seen: OsIsRunning left over from before the reset');
  });

  it('an Arm back at OsIsRunning before the first poll, on a BMC without LastStateTime, is not waited out', async () => {
    // The reads made while the reset was confirmed saw BootRom: that is the evidence the OS restarted,
    // so the wait need not catch a short-lived state in its own polls (issue 13).
    const out = await push(
      'bluefield',
      (emu) => {
        emu.faults.bootProgressWithoutTime = true;
      },
      SHORT_OS,
      1, // the Arm runs the OS again within milliseconds of power On
    );
    expect(out.ok).toBe(true);
    expect(out.bootProgress).not.toHaveProperty('LastStateTime');
    expect(done(out.steps, 'os-running')?.detail).toMatch(/seen: BootRom.* → OsIsRunning\)$/);
  });

  it('a BlueField system that reports no BootProgress is not waited on', async () => {
    const { bootProgress: _, ...older } = EMULATOR_PERSONAS.bluefield;
    const out = await push({ ...older, id: 'bluefield-no-bootprogress' });
    expect(out.ok).toBe(true);
    expect(done(out.steps, 'os-running')?.detail).toBe('not waited: Bluefield reports no BootProgress');
  });
});
