/**
 * The overall deadline of a provisioning run (`provisionBmc({timeoutMs})`, `bmc provision --timeout`):
 * whatever the BMC does — a power transition or task that never finishes, a request that never gets an
 * answer, a Retry-After longer than the run may take — the run ends with REDFISH_ERR_DEADLINE naming the
 * step it was in, on time, even when every individual wait would have waited much longer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BmcEmulator,
  type BmcEmulatorOptions,
  type EmulatorPersonaId,
  provisionBmc,
  RedfishClient,
  type RedfishClientOptions,
  RedfishError,
  type StepEvent,
  startBmcEmulator,
  type StrategyWaits,
} from '../../redfish/index.js';
import { cli, FAST_EMULATOR, fastClient, type ImageServer, startImageServer } from './helpers.js';

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(() => images.close());

/** Waits whose own bounds are far beyond the deadline under test: only the deadline can end them. */
/**
 * Room above a deadline for a loaded machine; every wait it cuts short is 60 s or more. The
 * deadlines themselves (2 s) leave the steps before the stalled one time to finish under load.
 */
const SLACK_MS = 2_500;

const LONG_WAITS: StrategyWaits = {
  power: { timeoutMs: 60_000, intervalMs: 10, maxIntervalMs: 40 },
  media: { timeoutMs: 60_000, intervalMs: 10, maxIntervalMs: 40 },
  task: { timeoutMs: 60_000, intervalMs: 10, maxIntervalMs: 40 },
  os: { timeoutMs: 60_000, intervalMs: 10, maxIntervalMs: 40 },
};

async function runWithDeadline(
  persona: EmulatorPersonaId,
  timeoutMs: number,
  arrange: (emu: BmcEmulator) => void,
  opts: { emulator?: BmcEmulatorOptions; client?: Partial<RedfishClientOptions> } = {},
) {
  const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona, ...opts.emulator });
  const c = new RedfishClient(fastClient(emu.url, opts.client));
  const steps: StepEvent[] = [];
  arrange(emu);
  const t0 = Date.now();
  try {
    const err = await provisionBmc(c, {
      image: { url: `${images.url}/os.img` },
      waits: LONG_WAITS,
      timeoutMs,
      onStep: (e) => steps.push(e),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const ms = Date.now() - t0;
    // The client itself is not poisoned by the run's deadline: it still answers afterwards.
    const after = await c.get('/redfish/v1/Systems');
    return { err: err as RedfishError | undefined, ms, steps, after: after.status };
  } finally {
    await c.close();
    await emu.close();
  }
}

describe('overall deadline of a provisioning run', () => {
  it('a power transition that never finishes: REDFISH_ERR_DEADLINE in the reset step, on time', async () => {
    const out = await runWithDeadline('generic', 2_000, (emu) => {
      emu.faults.stallPower = true;
    });
    expect(out.err).toBeInstanceOf(RedfishError);
    expect(out.err?.code).toBe('REDFISH_ERR_DEADLINE');
    expect(out.err?.message).toMatch(/did not finish within 2 s: stopped during virtual-media step reset/);
    expect(out.ms).toBeGreaterThanOrEqual(1_990);
    // Cut at the deadline, far below the 60 s waits (the margin absorbs a loaded CI machine).
    expect(out.ms).toBeLessThan(2_000 + SLACK_MS);
    expect(out.steps.at(-1)).toMatchObject({ step: 'reset', status: 'failed' });
    expect(out.after).toBe(200);
  });

  it('a SimpleUpdate task that never finishes: REDFISH_ERR_DEADLINE in the task step', async () => {
    const out = await runWithDeadline('bluefield', 2_000, (emu) => {
      emu.faults.stallTasks = true;
    });
    expect(out.err?.code).toBe('REDFISH_ERR_DEADLINE');
    expect(out.err?.message).toContain('image-push step task');
    expect(out.ms).toBeLessThan(2_000 + SLACK_MS);
  });

  it('a request the BMC never answers is cut off by the deadline, not the 30 s request timeout', async () => {
    const out = await runWithDeadline(
      'generic',
      400,
      (emu) => emu.faults.add({ method: 'GET', path: '/redfish/v1/Systems/DPU', delayMs: 60_000 }),
      { client: { timeouts: { connectMs: 2_000, requestMs: 30_000 } } },
    );
    expect(out.err?.code).toBe('REDFISH_ERR_DEADLINE');
    expect(out.err?.message).toContain('stopped during probe');
    expect(out.ms).toBeLessThan(400 + SLACK_MS);
  });

  it('a Retry-After longer than the time left ends the retry delay at the deadline', async () => {
    const out = await runWithDeadline(
      'generic',
      2_000,
      (emu) =>
        emu.faults.add({
          path: /InsertMedia$/,
          status: 503,
          retryAfter: 30,
          messageId: 'Base.1.16.ServiceTemporarilyUnavailable',
        }),
      { client: { retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 60_000 } } },
    );
    expect(out.err?.code).toBe('REDFISH_ERR_DEADLINE');
    expect(out.err?.message).toContain('virtual-media step insert');
    expect(out.ms).toBeLessThan(2_000 + SLACK_MS);
  });

  it('a run that finishes in time is not affected, and a bad timeoutMs is a config error', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'generic' });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      const r = await provisionBmc(c, {
        image: { url: `${images.url}/dpu.iso` },
        waits: LONG_WAITS,
        timeoutMs: 10_000,
      });
      expect(r.strategy).toBe('virtual-media');
      await expect(
        provisionBmc(c, { image: { url: `${images.url}/dpu.iso` }, timeoutMs: 0 }),
      ).rejects.toMatchObject({ code: 'REDFISH_ERR_CONFIG' });
    } finally {
      await c.close();
      await emu.close();
    }
  });

  it('cli: bmc provision --timeout bounds the whole run and exits 1 with the coded error', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'bluefield' });
    emu.faults.stallTasks = true;
    try {
      const t0 = Date.now();
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
        '3',
      ]);
      // 3 s of run plus a process start, against the 45 min default task wait.
      expect(Date.now() - t0).toBeLessThan(3_000 + 4 * SLACK_MS);
      expect(r.code).toBe(1);
      expect(r.out).toContain('[image-push] task FAILED');
      expect(r.err).toMatch(
        /^error: REDFISH_ERR_DEADLINE: provisioning did not finish within 3 s: stopped during image-push step task/,
      );
    } finally {
      await emu.close();
    }
  });
});
