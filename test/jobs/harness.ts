/**
 * A provisioning-job rig in one process: a migrated database (PGlite, or
 * PostgreSQL with DATABASE_URL), pg-boss on it, the real device lifecycle,
 * BMC store and job runner, emulated BMCs on loopback, and an image server.
 * Each emulated system, when it boots the installer, acts as the device: it
 * tells the lifecycle of its get-bootstrapping-data and reports progress the
 * way the bootstrap server would for the agent (the end-to-end test in
 * test/e2e/ runs the real agent against `dpu-ztp serve` instead).
 */
import { randomBytes } from 'node:crypto';
import { BmcStore, DeviceStateLifecycle, SecretBox } from '../../bootstrap/index.js';
import {
  DEFAULT_JOB_TIMEOUTS,
  type JobEvents,
  JobRunner,
  type JobRunnerOptions,
} from '../../bootstrap/job-runner.js';
import { openJobQueue, type PgBoss } from '../../bootstrap/job-queue.js';
import { createNotifier, type Notifier } from '../../db/index.js';
import {
  type BmcEmulator,
  type BmcEmulatorOptions,
  type EmulatorPersonaId,
  startBmcEmulator,
} from '../../redfish/index.js';
import { migratedDatabase, type TestDatabase } from '../helpers/db.js';
import { FAST_EMULATOR, FAST_WAITS, type ImageServer, startImageServer } from '../redfish/helpers.js';

/**
 * How an emulated device behaves once its BMC boots the installer: completes, never calls home,
 * reports an error, or calls home and then never completes (`stall`).
 */
export type DeviceBehaviour = 'ok' | 'silent' | 'error' | 'stall';

/** A provisioning rig. */
export interface JobRig {
  db: TestDatabase;
  boss: PgBoss;
  notifier: Notifier;
  lifecycle: DeviceStateLifecycle;
  bmcs: BmcStore;
  images: ImageServer;
  emulators: Map<string, BmcEmulator>;
  behaviour: Map<string, DeviceBehaviour>;
  changes: Array<{ kind: 'job' | 'device'; state: string; step?: string; serial?: string }>;
  /** Starts a runner (several may share one database: replicas). */
  runner(extra?: Partial<JobRunnerOptions>): Promise<JobRunner>;
  /** Registers a device with an emulated BMC of the given persona. */
  device(
    serial: string,
    persona: EmulatorPersonaId,
    opts?: Partial<BmcEmulatorOptions>,
  ): Promise<BmcEmulator>;
  close(): Promise<void>;
}

/** Fast bounds for tests. */
export const FAST_TIMEOUTS = { awaitDeviceMs: 3_000, awaitCompleteMs: 3_000, redfish: FAST_WAITS };

/** Builds a rig on a fresh database. */
export async function jobRig(): Promise<JobRig> {
  const db = await migratedDatabase();
  const boss = await openJobQueue(db);
  const notifier = createNotifier(db);
  const lifecycle = new DeviceStateLifecycle(db.db);
  const bmcs = new BmcStore(db.db, new SecretBox(randomBytes(32)));
  const images = await startImageServer();
  const emulators = new Map<string, BmcEmulator>();
  const behaviour = new Map<string, DeviceBehaviour>();
  const runners: JobRunner[] = [];
  const changes: JobRig['changes'] = [];
  const events: JobEvents = {
    jobChanged: (c) => changes.push({ kind: 'job', state: c.state }),
    deviceChanged: (c) => changes.push({ kind: 'device', state: c.state, step: c.step, serial: c.serial }),
  };

  async function actAsDevice(serial: string): Promise<void> {
    const b = behaviour.get(serial) ?? 'ok';
    if (b === 'silent') return;
    const tlsIdentity = `basic:${serial}`;
    lifecycle.onBootstrapRequest({ serial, at: new Date(), result: 'served' });
    await lifecycle.onProgress({ serial, at: new Date(), progressType: 'bootstrap-initiated', tlsIdentity });
    if (b === 'stall') return;
    if (b === 'error') {
      await lifecycle.onProgress({
        serial,
        at: new Date(),
        progressType: 'boot-image-installed-error',
        message: 'sha-256 of os.img does not match',
        tlsIdentity,
      });
      return;
    }
    await lifecycle.onProgress({ serial, at: new Date(), progressType: 'bootstrap-complete', tlsIdentity });
  }

  return {
    db,
    boss,
    notifier,
    lifecycle,
    bmcs,
    images,
    emulators,
    behaviour,
    changes,
    async runner(extra = {}) {
      const r = new JobRunner({
        db: db.db,
        boss,
        notifier,
        lifecycle,
        bmcs,
        installerImageUrl: async (name) => (name === 'missing.iso' ? undefined : `${images.url}/${name}`),
        leaseMs: 1_000,
        pollMs: 50,
        recheckMs: 200,
        timeouts: FAST_TIMEOUTS,
        stepRetry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
        redfish: {
          timeouts: { connectMs: 2_000, requestMs: 2_000 },
          retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 200 },
          taskPoll: { timeoutMs: 5_000, intervalMs: 10, maxIntervalMs: 50 },
        },
        events,
        ...extra,
      });
      await r.start();
      runners.push(r);
      return r;
    },
    async device(serial, persona, opts = {}) {
      const emu = await startBmcEmulator({
        ...FAST_EMULATOR,
        persona,
        serial,
        ...opts,
        onBoot: (e) => {
          if (e.imageUrl) void actAsDevice(serial);
        },
      });
      emulators.set(serial, emu);
      await bmcs.put(`bmc-${serial}`, {
        address: emu.url,
        username: 'admin',
        password: 'secret',
        insecure: true,
      });
      await db.db
        .insertInto('devices')
        .values({ serial, bmc: `bmc-${serial}`, updated_at: new Date() })
        .execute();
      return emu;
    },
    async close() {
      for (const r of runners) await r.stop();
      await boss.stop({ graceful: false, wait: true, close: false }).catch(() => undefined);
      await notifier.close();
      for (const e of emulators.values()) await e.close();
      await images.close();
      await db.drop();
    },
  };
}

export { DEFAULT_JOB_TIMEOUTS };
