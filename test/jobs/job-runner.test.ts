/**
 * The job runner against emulated BMCs (virtual media and BlueField image
 * push), on PGlite or PostgreSQL: every step recorded in order, media ejected
 * and the override cleared afterwards; and the stops — a device that never
 * calls home, a device reporting an error, a BMC answering 503, a BMC that
 * drops connections, cancel mid-job, retry of the failed devices, a device
 * whose IDevID is revoked (before the job, or while it waits) — each ending in
 * a named state with its reason, never a hang.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RevokedIdevids } from '../../bootstrap/index.js';
import type { JobRunner } from '../../bootstrap/job-runner.js';
import type { JobView } from '../../bootstrap/job-store.js';
import type { BmcEmulator } from '../../redfish/index.js';
import { JOB_STEPS as STEPS } from '../helpers/provision-lab.js';
import { FAST_TIMEOUTS, type JobRig, jobRig } from './harness.js';

let rig: JobRig;
beforeEach(async () => {
  rig = await jobRig();
});
afterEach(async () => {
  await rig.close();
});

/** Polls the job view until it is finished (bounded; the runner's own timeouts are short here). */
async function settle(runner: JobRunner, id: string, ms = 90_000): Promise<JobView> {
  const end = Date.now() + ms;
  for (;;) {
    const v = (await runner.store.view(id, { steps: true })) as JobView;
    if (v.state !== 'queued' && v.state !== 'running') return v;
    if (Date.now() > end) throw new Error(`job still ${v.state}: ${JSON.stringify(v.devices)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls the job view until `ok` holds (bounded). */
async function until(
  runner: JobRunner,
  id: string,
  ok: (v: JobView) => boolean,
  ms = 60_000,
): Promise<JobView> {
  const end = Date.now() + ms;
  for (;;) {
    const v = (await runner.store.view(id)) as JobView;
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`job never got there: ${JSON.stringify(v.devices)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A SHA-256 fingerprint made from a number, in the stored shape. */
const fp = (n: number) =>
  Buffer.alloc(32, n)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1:');

/** Records the IDevID a device presented, as the bootstrap server does on its requests. */
async function presented(serial: string, fingerprint: string): Promise<void> {
  await rig.db.db
    .updateTable('devices')
    .set({ idevid_fingerprint: fingerprint })
    .where('serial', '=', serial)
    .execute();
}

/** The slot the job inserted the installer into, as the BMC reads it now. */
function insertedSlot(emu: BmcEmulator) {
  const insert = emu.requests.find(
    (r) => r.method === 'POST' && r.path.endsWith('/Actions/VirtualMedia.InsertMedia'),
  );
  expect(insert, 'an InsertMedia was sent').toBeDefined();
  const slot = emu.resource(String(insert?.path).replace('/Actions/VirtualMedia.InsertMedia', ''));
  expect(slot).toBeDefined();
  return slot as Record<string, unknown>;
}

describe('provisioning jobs', { timeout: 120_000 }, () => {
  it('provisions a virtual-media DPU and a BlueField (image push) to bootstrap-complete, recording every step', async () => {
    const vm = await rig.device('SN-VM', 'generic');
    const bf = await rig.device('SN-BF', 'bluefield');
    const runner = await rig.runner();
    const job = await runner.create({
      kind: 'provision',
      devices: [
        { serial: 'SN-VM', bmc: 'bmc-SN-VM' },
        { serial: 'SN-BF', bmc: 'bmc-SN-BF' },
      ],
      params: { strategy: 'auto', installerImage: 'installer.iso' },
    });
    expect(job.state).toMatch(/queued|running/);
    const v = await settle(runner, job.id);
    expect(v.state, JSON.stringify(v.devices)).toBe('succeeded');
    expect(v.counts).toMatchObject({ succeeded: 2, total: 2 });
    for (const d of v.devices) {
      expect(d).toMatchObject({ state: 'succeeded', step: 'done', attempt: 1, error: null });
      expect(d.steps?.map((s) => s.step)).toEqual(STEPS);
      expect(d.steps?.every((s) => s.result === 'done' && s.finishedAt)).toBe(true);
    }
    const devices = await rig.db.db
      .selectFrom('devices')
      .select(['serial', 'state'])
      .orderBy('serial')
      .execute();
    expect(devices).toEqual([
      { serial: 'SN-BF', state: 'provisioned' },
      { serial: 'SN-VM', state: 'provisioned' },
    ]);
    // Afterwards: media ejected, override cleared; each BMC booted the installer once, reset once.
    expect(insertedSlot(vm).Inserted).toBe(false);
    for (const emu of [vm, bf]) {
      const resets = emu.requests.filter(
        (r) => r.method === 'POST' && r.path.endsWith('ComputerSystem.Reset'),
      );
      expect(resets).toHaveLength(1);
      expect(emu.boots).toHaveLength(1);
    }
    const sysVm = vm.requests.find((r) => r.method === 'GET' && /\/Systems\/[^/]+$/.test(r.path))
      ?.path as string;
    expect(vm.resource(sysVm)?.Boot?.BootSourceOverrideEnabled).toBe('Disabled');
    expect(bf.boots[0]?.via).toBe('image-push');
    expect(rig.changes.filter((c) => c.kind === 'job').map((c) => c.state)).toEqual([
      'queued',
      'running',
      'succeeded',
    ]);
    // Every change landed with its event (JobStore.create, migration 0080's triggers): the log
    // alone replays the job — created, running, each step entered and ended, each device done.
    const events = await rig.db.db
      .selectFrom('events')
      .select(['type', 'serial', 'data'])
      .where('job', '=', job.id)
      .orderBy('id')
      .execute();
    expect(events[0]).toMatchObject({ type: 'job.created', data: { kind: 'provision', devices: 2 } });
    expect(events.filter((e) => e.type === 'job.state').map((e) => e.data)).toEqual([
      { from: 'queued', to: 'running', kind: 'provision' },
      { from: 'running', to: 'succeeded', kind: 'provision' },
    ]);
    for (const serial of ['SN-VM', 'SN-BF']) {
      const mine = events.filter((e) => e.serial === serial);
      const moves = mine.filter((e) => e.type === 'job.device.state').map((e) => e.data);
      expect(moves.map((m) => m.step)).toEqual([...STEPS, 'done']);
      expect(moves[0]).toMatchObject({ from: 'queued', to: 'running', attempt: 1 });
      expect(moves.at(-1)).toMatchObject({ from: 'running', to: 'succeeded' });
      expect(
        mine.filter((e) => e.type === 'job.device.step').map((e) => `${e.data.step}:${e.data.result}`),
      ).toEqual(STEPS.map((s) => `${s}:done`));
    }
  });

  it("each step keeps the BMC's own messages, successful ones too: the SimpleUpdate task's on a BlueField's prepare, iDRAC's PATCH answers on a virtual-media job", async () => {
    await rig.device('SN-BF', 'bluefield');
    await rig.device('SN-DELL', 'idrac');
    const runner = await rig.runner();
    const job = await runner.create({
      kind: 'provision',
      devices: [
        { serial: 'SN-BF', bmc: 'bmc-SN-BF' },
        { serial: 'SN-DELL', bmc: 'bmc-SN-DELL' },
      ],
      params: { strategy: 'auto', installerImage: 'installer.iso' },
    });
    const v = await settle(runner, job.id);
    expect(v.state, JSON.stringify(v.devices)).toBe('succeeded');
    const said = (serial: string) =>
      Object.fromEntries(
        (v.devices.find((d) => d.serial === serial)?.steps ?? []).map((s) => [
          s.step,
          s.bmcMessages?.map((m) => m.MessageId) ?? null,
        ]),
      );
    expect(said('SN-BF')).toEqual({
      preflight: null,
      // The RShim switch (bmcweb messages::success), then the task's Messages — polled many times, kept once.
      prepare: [
        'Base.1.16.Success',
        'TaskEvent.1.0.TaskStarted',
        'TaskEvent.1.0.TaskProgressChanged',
        'TaskEvent.1.0.TaskCompletedOK',
      ],
      'boot-override': null,
      'power-cycle': ['Base.1.16.Success'],
      'await-device': null,
      'await-complete': null,
      finalize: null,
    });
    const prepare = v.devices.find((d) => d.serial === 'SN-BF')?.steps?.find((s) => s.step === 'prepare');
    expect(prepare?.bmcMessages?.at(-1)).toEqual({
      MessageId: 'TaskEvent.1.0.TaskCompletedOK',
      Message: expect.stringMatching(/^The task with Id '\d+' has completed\.$/),
      Severity: 'OK',
      Resolution: 'None.',
    });
    // iDRAC answers its PATCHes with Success + SYS413 and its actions with 204: only the override and
    // its clearing carry messages.
    const dell = ['Base.1.12.Success', 'IDRAC.2.8.SYS413'];
    expect(said('SN-DELL')).toEqual({
      preflight: null,
      prepare: null,
      'boot-override': dell,
      'power-cycle': null,
      'await-device': null,
      'await-complete': null,
      finalize: dell,
    }); // The step's event (migration 0080's trigger) carries the same messages.
    const stepEvents = await rig.db.db
      .selectFrom('events')
      .select(['serial', 'data'])
      .where('job', '=', job.id)
      .where('type', '=', 'job.device.step')
      .execute();
    const prepareEvent = stepEvents.find((e) => e.serial === 'SN-BF' && e.data.step === 'prepare');
    expect(prepareEvent?.data.bmcMessages).toEqual(prepare?.bmcMessages);
  });

  it('a device that never calls home fails at await-device with JOB_ERR_DEVICE_TIMEOUT', async () => {
    const emu = await rig.device('SN-SILENT', 'generic');
    rig.behaviour.set('SN-SILENT', 'silent');
    const runner = await rig.runner({ timeouts: { awaitDeviceMs: 600, awaitCompleteMs: 3_000 } });
    const job = await runner.create({
      kind: 'provision',
      devices: [{ serial: 'SN-SILENT', bmc: 'bmc-SN-SILENT' }],
      params: { installerImage: 'installer.iso' },
    });
    const v = await settle(runner, job.id);
    expect(v.state).toBe('failed');
    expect(v.devices[0]).toMatchObject({
      state: 'failed',
      step: 'await-device',
      error: { code: 'JOB_ERR_DEVICE_TIMEOUT' },
    });
    expect(v.devices[0]?.error?.message).toMatch(/^await-device: no sZTP contact from SN-SILENT/);
    expect(v.devices[0]?.steps?.at(-1)).toMatchObject({
      step: 'await-device',
      result: 'failed',
      errorCode: 'JOB_ERR_DEVICE_TIMEOUT',
    });
    // The BMC is left clean for the retry: media out, noted on the failed step.
    expect(insertedSlot(emu).Inserted).toBe(false);
    expect(v.devices[0]?.steps?.at(-1)?.detail).toMatch(/cleanup: .*ejected/);
  });

  it('a device reporting bootstrap-error fails the job with its own message; retry runs only the failed devices', async () => {
    await rig.device('SN-ERR', 'generic');
    await rig.device('SN-OK', 'generic');
    rig.behaviour.set('SN-ERR', 'error');
    const runner = await rig.runner();
    const job = await runner.create({
      kind: 'provision',
      devices: [
        { serial: 'SN-ERR', bmc: 'bmc-SN-ERR' },
        { serial: 'SN-OK', bmc: 'bmc-SN-OK' },
      ],
      params: { installerImage: 'installer.iso' },
    });
    const v = await settle(runner, job.id);
    expect(v.state).toBe('failed');
    const bad = v.devices.find((d) => d.serial === 'SN-ERR');
    expect(bad).toMatchObject({ state: 'failed', error: { code: 'JOB_ERR_DEVICE_REPORTED_ERROR' } });
    // The report may land while the run still waits for the first contact: either wait stops on it.
    expect(['await-device', 'await-complete']).toContain(bad?.step);
    expect(bad?.error?.message).toContain('sha-256 of os.img does not match');
    expect(v.devices.find((d) => d.serial === 'SN-OK')?.state).toBe('succeeded');

    rig.behaviour.set('SN-ERR', 'ok');
    const okResetsBefore = rig.emulators
      .get('SN-OK')
      ?.requests.filter((r) => r.path.endsWith('ComputerSystem.Reset')).length;
    const retried = await runner.retry(job.id);
    expect(retried?.retried).toBe(1);
    const again = await settle(runner, job.id);
    expect(again.state).toBe('succeeded');
    expect(again.devices.find((d) => d.serial === 'SN-ERR')).toMatchObject({
      state: 'succeeded',
      attempt: 2,
    });
    expect(again.devices.find((d) => d.serial === 'SN-OK')).toMatchObject({ attempt: 1 });
    expect(
      rig.emulators.get('SN-OK')?.requests.filter((r) => r.path.endsWith('ComputerSystem.Reset')).length,
    ).toBe(okResetsBefore);
    expect(
      rig.emulators.get('SN-ERR')?.requests.filter((r) => r.path.endsWith('ComputerSystem.Reset')),
    ).toHaveLength(2);
  });

  it('a BMC answering 503 and dropping connections is retried; the device still provisions', async () => {
    const emu = await rig.device('SN-FLAKY', 'generic');
    emu.faults.add({ method: 'PATCH', status: 503, times: 4 });
    emu.faults.add({ method: 'POST', path: /InsertMedia/, reset: true, times: 2 });
    const runner = await rig.runner();
    const job = await runner.create({
      kind: 'provision',
      devices: [{ serial: 'SN-FLAKY', bmc: 'bmc-SN-FLAKY' }],
      params: { installerImage: 'installer.iso' },
    });
    const v = await settle(runner, job.id);
    expect(v.state, JSON.stringify(v.devices[0]?.steps)).toBe('succeeded');
    expect(emu.requests.filter((r) => r.path.endsWith('ComputerSystem.Reset'))).toHaveLength(1);
    // The 503s retried on the way stay on the step that got them, though it succeeded.
    const override = v.devices[0]?.steps?.find((s) => s.step === 'boot-override');
    expect(override?.result).toBe('done');
    expect(override?.bmcMessages?.map((m) => m.MessageId)).toContain(
      'Base.1.16.ServiceTemporarilyUnavailable',
    );
  });

  it('a BMC that keeps answering 503 fails the step with the BMC status, after bounded retries', async () => {
    const emu = await rig.device('SN-DOWN', 'generic');
    emu.faults.add({ method: 'PATCH', status: 503, times: 1000 });
    const runner = await rig.runner();
    const job = await runner.create({
      kind: 'provision',
      devices: [{ serial: 'SN-DOWN', bmc: 'bmc-SN-DOWN' }],
      params: { installerImage: 'installer.iso' },
    });
    const v = await settle(runner, job.id);
    expect(v.state).toBe('failed');
    expect(v.devices[0]).toMatchObject({
      state: 'failed',
      step: 'boot-override',
      error: { code: 'REDFISH_ERR_HTTP' },
    });
    expect(v.devices[0]?.steps?.at(-1)?.detail).toMatch(/retrying in \d+ ms/);
    // A failed step keeps its error's own BMC messages, as the run's error does.
    expect(v.devices[0]?.error?.bmcMessages?.length).toBeGreaterThan(0);
    expect(v.devices[0]?.steps?.at(-1)?.bmcMessages).toEqual(v.devices[0]?.error?.bmcMessages);
  });

  it('cancel mid-job stops the run, leaves it cancelled, and ejects the media it inserted', async () => {
    const emu = await rig.device('SN-CANCEL', 'generic');
    rig.behaviour.set('SN-CANCEL', 'silent');
    const runner = await rig.runner({ timeouts: { awaitDeviceMs: 60_000 } });
    const job = await runner.create({
      kind: 'provision',
      devices: [{ serial: 'SN-CANCEL', bmc: 'bmc-SN-CANCEL' }],
      params: { installerImage: 'installer.iso' },
    });
    for (let i = 0; i < 200; i++) {
      const v = await runner.store.view(job.id);
      if (v?.devices[0]?.step === 'await-device') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const cancelled = await runner.cancel(job.id);
    expect(cancelled?.state).toBe('cancelled');
    const v = await settle(runner, job.id);
    expect(v.state).toBe('cancelled');
    expect(v.devices[0]).toMatchObject({
      state: 'cancelled',
      step: 'await-device',
      error: { code: 'JOB_ERR_CANCELLED' },
    });
    expect(v.devices[0]?.steps?.at(-1)).toMatchObject({ step: 'await-device', result: 'cancelled' });
    for (let i = 0; i < 100 && runner.activeRuns > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(runner.activeRuns).toBe(0);
    expect(insertedSlot(emu).Inserted).toBe(false);
  });

  it('a BlueField push taken over mid-task follows the task already started: one SimpleUpdate, one boot', async () => {
    const bf = await rig.device('SN-TAKEOVER', 'bluefield', { taskDurationMs: 3_000 });
    const first = await rig.runner();
    const job = await first.create({
      kind: 'provision',
      devices: [{ serial: 'SN-TAKEOVER', bmc: 'bmc-SN-TAKEOVER' }],
      params: { strategy: 'image-push', installerImage: 'installer.iso' },
    });
    // Stop the first replica once the BMC has accepted the push (the checkpoint is stored).
    const hasCheckpoint = async () =>
      Object.keys((await first.store.runs(job.id))[0]?.context ?? {}).some((k) =>
        k.startsWith('checkpoint:'),
      );
    for (let i = 0; i < 400 && !(await hasCheckpoint()); i++) await new Promise((r) => setTimeout(r, 25));
    expect(await hasCheckpoint()).toBe(true);
    // While the step runs, its BMC messages so far are stored with the lease renewals, so a replica
    // killed here would not take them along.
    const stored = async () =>
      (
        await rig.db.db
          .selectFrom('job_steps')
          .select(['bmc_messages', 'result'])
          .where('step', '=', 'prepare')
          .execute()
      )[0];
    for (let i = 0; i < 200 && !(await stored())?.bmc_messages; i++)
      await new Promise((r) => setTimeout(r, 25));
    const flushed = await stored();
    expect(flushed?.result).toBe('running');
    const flushedIds = (flushed?.bmc_messages as { MessageId: string }[] | null)?.map((m) => m.MessageId);
    expect(flushedIds).toContain('TaskEvent.1.0.TaskStarted');
    await first.stop();
    const second = await rig.runner();
    const v = await settle(second, job.id);
    expect(v.state, JSON.stringify(v.devices)).toBe('succeeded');
    const pushes = bf.requests.filter((r) => r.method === 'POST' && r.path.endsWith('SimpleUpdate'));
    expect(pushes).toHaveLength(1);
    expect(bf.boots).toHaveLength(1);
    const prepare = v.devices[0]?.steps?.filter((s) => s.step === 'prepare');
    expect(prepare?.at(-1)?.detail, JSON.stringify(prepare)).toMatch(/already accepted/);
    // The step's record tells the whole attempt once: what the BMC said to the first replica, then
    // the task's later messages as the second heard them (the task's start not kept twice).
    const said = prepare?.at(-1)?.bmcMessages?.map((m) => m.MessageId) ?? [];
    expect(said.slice(0, flushedIds?.length)).toEqual(flushedIds);
    expect(said.filter((id) => id === 'TaskEvent.1.0.TaskStarted')).toHaveLength(1);
    expect(said.at(-1)).toBe('TaskEvent.1.0.TaskCompletedOK');
  });

  it('a device without a BMC, or a missing installer image, needs attention (not a retry)', async () => {
    await rig.db.db.insertInto('devices').values({ serial: 'SN-NOBMC', updated_at: new Date() }).execute();
    await rig.device('SN-NOIMG', 'generic');
    const runner = await rig.runner();
    const a = await runner.create({
      kind: 'provision',
      devices: [{ serial: 'SN-NOBMC', bmc: null }],
      params: { installerImage: 'installer.iso' },
    });
    const b = await runner.create({
      kind: 'provision',
      devices: [{ serial: 'SN-NOIMG', bmc: 'bmc-SN-NOIMG' }],
      params: { installerImage: 'missing.iso' },
    });
    const va = await settle(runner, a.id);
    const vb = await settle(runner, b.id);
    expect(va.devices[0]).toMatchObject({
      state: 'needs-attention',
      step: 'preflight',
      error: { code: 'JOB_ERR_NO_BMC' },
    });
    expect(vb.devices[0]).toMatchObject({
      state: 'needs-attention',
      step: 'preflight',
      error: { code: 'JOB_ERR_NO_INSTALLER_IMAGE' },
    });
    expect(va.state).toBe('failed');
  });

  it('a device whose known IDevID is revoked needs attention at preflight, before its BMC is asked anything', async () => {
    const emu = await rig.device('SN-REVOKED', 'generic');
    await presented('SN-REVOKED', fp(1));
    const revoked = new RevokedIdevids({ db: rig.db.db });
    await revoked.revoke(fp(1), 'test-admin', 'RMA 4711');
    const runner = await rig.runner();
    const job = await runner.create({
      kind: 'provision',
      devices: [{ serial: 'SN-REVOKED', bmc: 'bmc-SN-REVOKED' }],
      params: { installerImage: 'installer.iso' },
    });
    const v = await settle(runner, job.id);
    expect(v.state).toBe('failed');
    expect(v.devices[0]).toMatchObject({
      state: 'needs-attention',
      step: 'preflight',
      error: { code: 'JOB_ERR_IDEVID_REVOKED' },
    });
    expect(v.devices[0]?.error?.message).toMatch(
      new RegExp(`IDevID of SN-REVOKED \\(${fp(1)}\\) was revoked at .* by test-admin: RMA 4711$`),
    );
    expect(emu.requests).toEqual([]);
    // Power jobs need no sZTP: they still run for a revoked device.
    const power = await runner.create({
      kind: 'power',
      devices: [{ serial: 'SN-REVOKED', bmc: 'bmc-SN-REVOKED' }],
      params: { action: 'on' },
    });
    expect((await settle(runner, power.id)).state).toBe('succeeded');
  });

  it('a device revoked while its run waits (await-device, await-complete) stops at once with JOB_ERR_IDEVID_REVOKED, not at its deadline', async () => {
    const silent = await rig.device('SN-WAIT-DEV', 'generic');
    await rig.device('SN-WAIT-CPL', 'generic');
    rig.behaviour.set('SN-WAIT-DEV', 'silent');
    rig.behaviour.set('SN-WAIT-CPL', 'stall');
    await presented('SN-WAIT-DEV', fp(2));
    await presented('SN-WAIT-CPL', fp(3));
    // Deadlines and the periodic re-read an hour away: only the revocation's wake-up can stop the waits
    // within the settle bound below.
    const runner = await rig.runner({
      recheckMs: 3_600_000,
      timeouts: { ...FAST_TIMEOUTS, awaitDeviceMs: 3_600_000, awaitCompleteMs: 3_600_000 },
    });
    const job = await runner.create({
      kind: 'provision',
      devices: [
        { serial: 'SN-WAIT-DEV', bmc: 'bmc-SN-WAIT-DEV' },
        { serial: 'SN-WAIT-CPL', bmc: 'bmc-SN-WAIT-CPL' },
      ],
      params: { installerImage: 'installer.iso' },
    });
    const stepOf = (v: JobView, serial: string) => v.devices.find((d) => d.serial === serial)?.step;
    await until(
      runner,
      job.id,
      (v) => stepOf(v, 'SN-WAIT-DEV') === 'await-device' && stepOf(v, 'SN-WAIT-CPL') === 'await-complete',
    );
    // Revoked through the service's own path (the API's): the change's NOTIFY reaches the runner.
    const revoked = new RevokedIdevids({ db: rig.db.db, notifier: rig.notifier });
    await revoked.revoke(fp(2), 'test-admin', 'stolen');
    await revoked.revoke(fp(3), 'test-admin', 'stolen');
    const v = await settle(runner, job.id, 30_000);
    for (const [serial, step] of [
      ['SN-WAIT-DEV', 'await-device'],
      ['SN-WAIT-CPL', 'await-complete'],
    ] as const)
      expect(v.devices.find((d) => d.serial === serial)).toMatchObject({
        state: 'needs-attention',
        step,
        error: { code: 'JOB_ERR_IDEVID_REVOKED' },
      });
    // The BMC is left clean as after any failed wait.
    expect(insertedSlot(silent).Inserted).toBe(false);
  });

  it('power and decommission jobs', async () => {
    const emu = await rig.device('SN-PWR', 'generic');
    const runner = await rig.runner();
    const off = await settle(
      runner,
      (
        await runner.create({
          kind: 'power',
          devices: [{ serial: 'SN-PWR', bmc: 'bmc-SN-PWR' }],
          params: { action: 'off' },
        })
      ).id,
    );
    expect(off.state).toBe('succeeded');
    expect(off.devices[0]?.steps?.map((s) => s.step)).toEqual(['preflight', 'power']);
    const sys = emu.requests.find((r) => r.method === 'GET' && /\/Systems\/[^/]+$/.test(r.path))
      ?.path as string;
    expect(emu.resource(sys)?.PowerState).toBe('Off');
    await rig.db.db
      .updateTable('devices')
      .set({ state: 'provisioned' })
      .where('serial', '=', 'SN-PWR')
      .execute();
    const on = await settle(
      runner,
      (
        await runner.create({
          kind: 'power',
          devices: [{ serial: 'SN-PWR', bmc: 'bmc-SN-PWR' }],
          params: { action: 'on' },
        })
      ).id,
    );
    expect(on.state).toBe('succeeded');
    const dec = await settle(
      runner,
      (
        await runner.create({
          kind: 'decommission',
          devices: [{ serial: 'SN-PWR', bmc: 'bmc-SN-PWR' }],
          params: {},
        })
      ).id,
    );
    expect(dec.state).toBe('succeeded');
    expect(dec.devices[0]?.steps?.map((s) => s.step)).toEqual(['preflight', 'finalize', 'power-off']);
    expect(emu.resource(sys)?.PowerState).toBe('Off');
    const d = await rig.db.db
      .selectFrom('devices')
      .select('state')
      .where('serial', '=', 'SN-PWR')
      .executeTakeFirst();
    expect(d?.state).toBe('registered');
  });
});
