/**
 * `--strategy auto` falls back: when the chosen strategy fails for a reason of its own (insert refused,
 * task Exception, a step the BMC rejects), the next usable strategy in STRATEGY_ORDER runs, after what
 * the failed one left behind (media, a pending boot override) is undone. Auth, TLS, an unreachable BMC,
 * a wait that ran out and a named strategy never fall back. The generic persona offers all three.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BmcEmulator,
  provisionBmc,
  RedfishClient,
  type RedfishError,
  type StepEvent,
  startBmcEmulator,
} from '../../redfish/index.js';
import { cli, FAST_EMULATOR, FAST_WAITS, fastClient, type ImageServer, startImageServer } from './helpers.js';

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(() => images.close());

/** The BMC cannot reach the image for virtual media (DMTF Base registry, as bmcweb/iDRAC report it). */
const INSERT_REFUSED = {
  path: /InsertMedia$/,
  status: 400,
  times: 10,
  messageId: 'Base.1.16.CouldNotEstablishConnection',
  message:
    "An attempt to access the resource, file, or image at the URI 'http://images/dpu.iso' was unsuccessful because a connection could not be established.",
};

async function provision(arrange: (emu: BmcEmulator) => void, strategy: 'auto' | 'virtual-media' = 'auto') {
  const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'generic', serial: 'SN-FB' });
  const c = new RedfishClient(fastClient(emu.url));
  const steps: StepEvent[] = [];
  arrange(emu);
  try {
    const out = await provisionBmc(c, {
      image: { url: `${images.url}/dpu.img` },
      strategy,
      waits: FAST_WAITS,
      onStep: (e) => steps.push(e),
    }).then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, e: e as RedfishError }),
    );
    for (let i = 0; i < 100 && out.ok && emu.boots.length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    return { ...out, steps, emu, posts: emu.requests.filter((r) => r.method === 'POST').map((r) => r.path) };
  } finally {
    await c.close();
    await emu.close();
  }
}

describe('strategy fallback with --strategy auto', () => {
  it('virtual-media insert refused → image-push runs and the system boots the pushed image', async () => {
    const out = await provision((emu) => emu.faults.add(INSERT_REFUSED));
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.r.strategy).toBe('image-push');
    expect(out.r.attempts.map((a) => [a.strategy, a.failedStep, a.error?.code])).toEqual([
      ['virtual-media', 'insert', 'REDFISH_ERR_HTTP'],
      ['image-push', undefined, undefined],
    ]);
    expect(out.r.attempts[0]?.error?.hasMessage('CouldNotEstablishConnection')).toBe(true);
    const fb = out.steps.find((s) => s.status === 'fallback');
    expect(fb).toMatchObject({ strategy: 'virtual-media', step: 'insert', next: 'image-push' });
    expect(fb?.detail).toMatch(/^REDFISH_ERR_HTTP: .*connection could not be established/);
    expect(out.posts.some((p) => p.endsWith('UpdateService.SimpleUpdate'))).toBe(true);
    expect(out.emu.boots.map((b) => b.via)).toEqual(['image-push']);
  });

  it('a failure after the boot override was set undoes it, so the next strategy boots its own image', async () => {
    // The CD is inserted and "boot once from CD" is pending when the reset is refused; without the undo
    // the image-push reset would boot the CD instead of the pushed image.
    const out = await provision((emu) =>
      emu.faults.add({
        path: /ComputerSystem\.Reset$/,
        status: 400,
        messageId: 'Base.1.16.ActionParameterNotSupported',
        message: 'The parameter ResetType for the action ComputerSystem.Reset is not supported.',
      }),
    );
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.r.attempts.map((a) => [a.strategy, a.failedStep])).toEqual([
      ['virtual-media', 'reset'],
      ['image-push', undefined],
    ]);
    const undo = out.steps.find((s) => s.step === 'undo' && s.status === 'done');
    expect(undo?.detail).toMatch(/ejected CD1.*Boot .*"BootSourceOverrideTarget":"None"/);
    expect(out.emu.boots.map((b) => b.via)).toEqual(['image-push']);
    expect(out.emu.resource('/redfish/v1/Managers/BMC/VirtualMedia/CD1')?.Inserted).toBe(false);
  });

  it('when every usable strategy fails, REDFISH_ERR_ALL_STRATEGIES_FAILED lists each attempt and why', async () => {
    const out = await provision((emu) => {
      emu.faults.add(INSERT_REFUSED);
      emu.faults.failTasks = 'BFB signature check failed';
      emu.faults.add({
        method: 'PATCH',
        path: '/redfish/v1/Systems/DPU',
        status: 400,
        times: 10,
        messageId: 'Base.1.16.PropertyValueNotInList',
        message: "The value 'UefiHttp' for the property BootSourceOverrideTarget is not in the list.",
      });
    });
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.e.code).toBe('REDFISH_ERR_ALL_STRATEGIES_FAILED');
    expect(out.e.message).toMatch(
      /virtual-media failed at insert \(REDFISH_ERR_HTTP: .*\); image-push failed at task \(REDFISH_ERR_TASK_FAILED: .*BFB signature check failed\); http-boot failed at boot-override \(REDFISH_ERR_HTTP: .*UefiHttp/,
    );
    for (const id of ['CouldNotEstablishConnection', 'TaskAborted', 'PropertyValueNotInList'])
      expect(out.e.hasMessage(id), id).toBe(true);
    expect(out.steps.filter((s) => s.status === 'fallback').map((s) => s.next)).toEqual([
      'image-push',
      'http-boot',
    ]);
  });

  it('an unreachable BMC or a privilege error does not fall back', async () => {
    const reset = await provision((emu) => emu.faults.add({ path: /InsertMedia$/, reset: true, times: 10 }));
    expect(reset.ok).toBe(false);
    if (reset.ok) return;
    expect(reset.e.code).toBe('REDFISH_ERR_CONNECTION');
    expect(reset.steps.some((s) => s.status === 'fallback')).toBe(false);
    expect(reset.posts.some((p) => p.endsWith('SimpleUpdate'))).toBe(false);

    const forbidden = await provision((emu) =>
      emu.faults.add({
        path: /InsertMedia$/,
        status: 403,
        messageId: 'Base.1.16.InsufficientPrivilege',
        message: 'There are insufficient privileges for the account to perform the requested operation.',
      }),
    );
    expect(forbidden.ok).toBe(false);
    if (forbidden.ok) return;
    expect(forbidden.e).toMatchObject({ code: 'REDFISH_ERR_HTTP', status: 403 });
    expect(forbidden.posts.some((p) => p.endsWith('SimpleUpdate'))).toBe(false);
  });

  it('a wait that ran out does not fall back: the system may still be booting the image', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'generic' });
    emu.faults.stallPower = true;
    const c = new RedfishClient(fastClient(emu.url));
    try {
      const err = await provisionBmc(c, {
        image: { url: `${images.url}/dpu.iso` },
        waits: { ...FAST_WAITS, power: { timeoutMs: 200, intervalMs: 10, maxIntervalMs: 40 } },
      }).catch((e: unknown) => e as RedfishError);
      expect(err).toMatchObject({ code: 'REDFISH_ERR_WAIT_TIMEOUT' });
      expect(emu.requests.some((r) => r.path.endsWith('SimpleUpdate'))).toBe(false);
    } finally {
      await c.close();
      await emu.close();
    }
  });

  it('a named strategy runs alone: its failure is the error', async () => {
    const out = await provision((emu) => emu.faults.add(INSERT_REFUSED), 'virtual-media');
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.e.code).toBe('REDFISH_ERR_HTTP');
    expect(out.posts.some((p) => p.endsWith('SimpleUpdate'))).toBe(false);
  });

  it('cli: prints what failed and what is tried next, then the strategy that worked', async () => {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'generic', serial: 'SN-CLI' });
    emu.faults.add(INSERT_REFUSED);
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
        `${images.url}/dpu.img`,
        '--timeout',
        '10',
      ]);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain('[virtual-media] insert FAILED');
      expect(r.out).toMatch(
        /\[virtual-media\] gave up at insert \(REDFISH_ERR_HTTP: .*\); trying image-push next/,
      );
      expect(r.out).toContain('[virtual-media] undo done: CD1');
      expect(r.out).toMatch(/provisioned: system DPU \(SN SN-CLI\) .* via image-push/);
    } finally {
      await emu.close();
    }
  });
});
