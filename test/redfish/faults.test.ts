/**
 * Faults during provisioning: each is retried or reported with the BMC's own message, never a hang.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BmcEmulator,
  type BmcEmulatorOptions,
  provisionBmc,
  RedfishClient,
  type RedfishClientOptions,
  RedfishError,
  type StrategyName,
  startBmcEmulator,
} from '../../redfish/index.js';
import { FAST_EMULATOR, FAST_WAITS, fastClient, type ImageServer, startImageServer } from './helpers.js';

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(() => images.close());

async function run(
  opts: BmcEmulatorOptions,
  arrange: (emu: BmcEmulator, c: RedfishClient) => Promise<void> | void,
  clientExtra: Partial<RedfishClientOptions> = {},
  strategy: 'auto' | StrategyName = 'auto',
  waits = FAST_WAITS,
) {
  const emu = await startBmcEmulator({ ...FAST_EMULATOR, ...opts });
  const c = new RedfishClient(fastClient(emu.url, clientExtra));
  const t0 = Date.now();
  try {
    await arrange(emu, c);
    const result = await provisionBmc(c, { image: { url: `${images.url}/dpu.iso` }, strategy, waits }).then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, e: e as RedfishError }),
    );
    return { ...result, ms: Date.now() - t0, emu };
  } finally {
    await c.close();
    await emu.close();
  }
}

describe('faults during provisioning', () => {
  it('503 + Retry-After on InsertMedia: waits as told, then succeeds', async () => {
    const out = await run({}, (emu) => {
      emu.faults.add({
        path: /InsertMedia$/,
        status: 503,
        retryAfter: 1,
        messageId: 'Base.1.16.ServiceTemporarilyUnavailable',
      });
    });
    expect(out.ok).toBe(true);
    expect(out.ms).toBeGreaterThanOrEqual(1_000);
    expect(out.emu.requests.filter((r) => r.path.endsWith('InsertMedia'))).toHaveLength(2);
  });

  it('connection reset on the Reset action is retried', async () => {
    const out = await run({}, (emu) => emu.faults.add({ path: /ComputerSystem\.Reset$/, reset: true }));
    expect(out.ok).toBe(true);
  });

  it('412 on the boot PATCH (ETag went stale) is re-read and retried', async () => {
    const out = await run({}, (emu) =>
      emu.faults.add({
        method: 'PATCH',
        path: '/redfish/v1/Systems/DPU',
        status: 412,
        messageId: 'Base.1.16.PreconditionFailed',
      }),
    );
    expect(out.ok).toBe(true);
    const patches = out.emu.requests.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(2);
  });

  it('iLO 400 UnableToModifyDuringSystemPOST is a transient state for the iLO profile', async () => {
    const out = await run({ persona: 'ilo' }, (emu) =>
      emu.faults.add({
        method: 'PATCH',
        path: '/redfish/v1/Systems/1',
        status: 400,
        times: 2,
        messageId: 'iLO.2.15.UnableToModifyDuringSystemPOST',
        message: 'The value for the property cannot be changed while the computer system is in POST.',
      }),
    );
    expect(out.ok).toBe(true);
  });

  it('a 500 that persists is reported with the BMC message and resolution', async () => {
    const out = await run({ persona: 'idrac' }, (emu) =>
      emu.faults.add({
        path: /InsertMedia$/,
        status: 500,
        times: 10,
        messageId: 'IDRAC.2.8.RAC0904',
        message: 'The remote file location is not accessible or reachable.',
      }),
    );
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.e).toBeInstanceOf(RedfishError);
    expect(out.e.code).toBe('REDFISH_ERR_HTTP');
    expect(out.e.status).toBe(500);
    expect(out.e.hasMessage('RAC0904')).toBe(true);
    expect(out.e.message).toContain('The remote file location is not accessible or reachable.');
  });

  it('a SimpleUpdate task ending in Exception fails with REDFISH_ERR_TASK_FAILED and the task message', async () => {
    // Named strategy: with auto, the failed push would fall back to http-boot (fallback.test.ts).
    const out = await run(
      { persona: 'bluefield' },
      (emu) => {
        emu.faults.failTasks = 'BFB image verification failed';
      },
      {},
      'image-push',
    );
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.e.code).toBe('REDFISH_ERR_TASK_FAILED');
    expect(out.e.message).toContain('BFB image verification failed');
    expect(out.e.messages[0]?.MessageId).toBe('TaskEvent.1.0.TaskAborted');
  });

  it('an unreachable image fails the push task with the BMC transfer message', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'bluefield' });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      const err = await provisionBmc(c, {
        image: { url: `${images.url}/missing.bfb` },
        strategy: 'image-push',
        waits: FAST_WAITS,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REDFISH_ERR_TASK_FAILED' });
      expect((err as RedfishError).hasMessage('TransferFailed')).toBe(true);
    } finally {
      await c.close();
      await emu.close();
    }
  });

  it('a slot that stays inserted fails with REDFISH_ERR_MEDIA_STUCK within the media timeout', async () => {
    const out = await run(
      {},
      async (emu, c) => {
        await c.post('/redfish/v1/Managers/BMC/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia', {
          Image: 'http://old/old.iso',
        });
        emu.faults.stuckMedia = true;
      },
      {},
      'virtual-media',
    );
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.e.code).toBe('REDFISH_ERR_MEDIA_STUCK');
    expect(out.e.message).toContain('old.iso');
    expect(out.ms).toBeLessThan(FAST_WAITS.media.timeoutMs + 3_000);
  });

  it('iDRAC reporting Inserted briefly after eject is waited out', async () => {
    const out = await run({ persona: 'idrac' }, async (_emu, c) => {
      await c.post('/redfish/v1/Systems/System.Embedded.1/VirtualMedia/1/Actions/VirtualMedia.InsertMedia', {
        Image: 'http://old/old.iso',
      });
    });
    expect(out.ok).toBe(true);
  });

  it('a BMC that stops answering fails with REDFISH_ERR_TIMEOUT, bounded', async () => {
    const out = await run(
      {},
      (emu) => emu.faults.add({ path: '/redfish/v1/Systems/DPU', delayMs: 30_000, times: 10 }),
      {
        timeouts: { connectMs: 500, requestMs: 200 },
        retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 10, maxRetryAfterMs: 10 },
      },
    );
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.e.code).toBe('REDFISH_ERR_TIMEOUT');
    // Two 200 ms attempts, not the BMC's 30 s (room left for a loaded machine).
    expect(out.ms).toBeLessThan(5_000);
  });

  it('a system that never finishes powering on fails with REDFISH_ERR_WAIT_TIMEOUT', async () => {
    const waits = { ...FAST_WAITS, power: { timeoutMs: 400, intervalMs: 10, maxIntervalMs: 50 } };
    const out = await run({ powerTransitionMs: 60_000 }, () => undefined, {}, 'auto', waits);
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.e.code).toBe('REDFISH_ERR_WAIT_TIMEOUT');
    expect(out.e.message).toMatch(/powered on/);
    expect(out.ms).toBeLessThan(400 + 3_000);
  });

  it('no strategy: REDFISH_ERR_NO_STRATEGY lists why each one will not work', async () => {
    const out = await run({ persona: 'bluefield' }, () => undefined, {}, 'auto');
    expect(out.ok).toBe(true); // sanity: bluefield does have image-push
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'xcc' });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      await expect(
        provisionBmc(c, { image: { url: `${images.url}/x.bfb` }, strategy: 'image-push', waits: FAST_WAITS }),
      ).rejects.toMatchObject({
        code: 'REDFISH_ERR_NO_STRATEGY',
        message: expect.stringContaining('the service root has no UpdateService'),
      });
    } finally {
      await c.close();
      await emu.close();
    }
  });

  it('OpenBMC refuses a plain http:// image up front (bmcweb accepts https/smb only)', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'openbmc' });
    const c = new RedfishClient(fastClient(emu.url));
    try {
      await expect(
        provisionBmc(c, { image: { url: `${images.url}/dpu.iso` }, waits: FAST_WAITS }),
      ).rejects.toMatchObject({
        code: 'REDFISH_ERR_NO_STRATEGY',
        message: expect.stringContaining('https/smb'),
      });
    } finally {
      await c.close();
      await emu.close();
    }
  });
});
