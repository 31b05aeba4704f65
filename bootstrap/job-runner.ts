/**
 * Runs provisioning jobs: takes device runs off the pg-boss queue (at most
 * `maxConcurrent` at once per replica), takes each run's lease (one run per BMC
 * at a time), drives it step by step from where its row says it is, keeps the
 * lease alive while it works, and lets it go when done. Device waits are woken
 * by sZTP events — in process, and from other replicas over the notifier
 * (PostgreSQL LISTEN/NOTIFY), and by every revocation of an IDevID (a device
 * revoked mid-wait stops at once) — and re-read the database at a slow pace, so a
 * missed notification costs latency, never correctness. A sweeper re-queues
 * runs whose replica died (lease expired).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { context as otelContext, propagation, type Span, trace } from '@opentelemetry/api';
import type { Kysely } from 'kysely';
import type { Database, JobDevice, JobDeviceState, JobKind, JobState, Notifier } from '../db/index.js';
import { Attr, recordSpanError, SpanName, tracer } from '../otel/index.js';
import {
  backoffDelay,
  BmcMessageLog,
  DEFAULT_WAITS,
  type BmcProbe,
  RedfishClient,
  type RedfishClientOptions,
  sleep,
  type StepEvent,
  teardown,
} from '../redfish/index.js';
import type { BmcStore, BmcTarget } from './bmc-store.js';
import type { DeviceEventListener } from './device-lifecycle.js';
import {
  BMC_STEPS,
  bmcTargetOf,
  clientOptionsFor,
  type JobTimeouts,
  markRegistered,
  probeFor,
  type StepContext,
  type StepRetry,
  stepFunctions,
  waitBound,
} from './device-steps.js';
import { isTransient, JobError, stopOf } from './job-errors.js';
import {
  initRunCounters,
  recordRunFinished,
  recordRunStarted,
  recordStep,
  runLabels,
} from './job-metrics.js';
import { DEVICE_RUN_QUEUE, type PgBoss } from './job-queue.js';
import { type JobView, JobStore, type NewJob, stepsOf } from './job-store.js';
import type { JobTraceIndex } from './job-trace-index.js';
import { REVOKED_IDEVIDS_CHANNEL } from './revoked-idevids.js';

/** A job was created or its state changed. */
export interface JobChange {
  jobId: string;
  kind: JobKind;
  state: JobState;
  at: Date;
  /** Set on the change that created the job: how many devices it covers. */
  created?: { devices: number };
}

/** A device run changed state or step. */
export interface DeviceRunChange {
  jobId: string;
  serial: string;
  state: JobDeviceState;
  step: string;
  attempt: number;
  at: Date;
  error?: { code: string; message: string; bmcMessages?: unknown[] | undefined };
}

/**
 * In-process observers of job and device changes (tests, local watchers). The durable event log that
 * SSE and webhooks read is not fed from here: the database appends those events in the statement that
 * stores the change (`JobStore.create`, migration 0080's triggers). Called after the change is stored;
 * must not throw (a throw is swallowed) and should return quickly.
 */
export interface JobEvents {
  jobChanged(change: JobChange): void;
  deviceChanged(change: DeviceRunChange): void;
}

/** Default bounds: sized for real DPUs (a BlueField BFB install takes 10–25 min). */
export const DEFAULT_JOB_TIMEOUTS: JobTimeouts = Object.freeze({
  awaitDeviceMs: 40 * 60_000,
  awaitCompleteMs: 30 * 60_000,
  redfish: DEFAULT_WAITS,
});

/** Default retries of a BMC step after a transient failure (on top of the Redfish client's own). */
export const DEFAULT_STEP_RETRY: StepRetry = Object.freeze({
  attempts: 3,
  baseDelayMs: 5_000,
  maxDelayMs: 60_000,
});

/** Options of {@link JobRunner}. */
export interface JobRunnerOptions {
  db: Kysely<Database>;
  boss: PgBoss;
  notifier: Notifier;
  /** The device lifecycle (this replica's sZTP contacts and progress reports). */
  lifecycle: { subscribe(listener: DeviceEventListener): () => void };
  bmcs: BmcStore;
  /**
   * URL of an image on the images listener (what the BMC fetches), or undefined when not stored. With
   * `token` (the run's image token) the URL carries it, so the BMC's reads join the run's trace.
   */
  installerImageUrl(name: string, token?: string): Promise<string | undefined>;
  /** Where the runs' traces are announced (the device listener and image service read it). */
  traces?: JobTraceIndex;
  /** This replica's name in leases (default host:pid:random). */
  owner?: string;
  /** Device runs in progress at once on this replica (default 64). */
  maxConcurrent?: number;
  /** Lease length; a dead replica's runs are taken over this long after its last renewal (default 30 s). */
  leaseMs?: number;
  /** How often the queue is polled when idle (default 1000 ms; new work here wakes it at once). */
  pollMs?: number;
  /** How often a device wait re-reads the database without being woken (default 15 s). */
  recheckMs?: number;
  timeouts?: Partial<Omit<JobTimeouts, 'redfish'>> & { redfish?: Partial<JobTimeouts['redfish']> };
  stepRetry?: Partial<StepRetry>;
  /** Redfish client settings (timeouts, retries) for every BMC. */
  redfish?: Partial<Omit<RedfishClientOptions, 'url' | 'username' | 'password'>>;
  events?: JobEvents;
  log?: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    error(o: object, m: string): void;
  };
}

const JOBS_CHANNEL = 'dpu_ztp_jobs';
const DEVICES_CHANNEL = 'dpu_ztp_devices';

interface Active {
  run: JobDevice;
  abort: AbortController;
  done: Promise<void>;
}

/** Drives provisioning jobs; one per replica. */
export class JobRunner {
  readonly store: JobStore;
  readonly #o: JobRunnerOptions;
  readonly #owner: string;
  readonly #max: number;
  readonly #leaseMs: number;
  readonly #timeouts: JobTimeouts;
  readonly #retry: StepRetry;
  readonly #active = new Map<string, Active>();
  /** Last sZTP contact per serial with a run here (in-process and from other replicas). */
  readonly #contacts = new Map<string, Date>();
  /** Wake-ups of device waits, per serial. */
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #steps = stepFunctions((serial) => this.#contacts.get(serial));
  readonly #unsub: Array<() => void> = [];
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #stopping = false;

  constructor(options: JobRunnerOptions) {
    this.#o = options;
    this.store = new JobStore(options.db);
    this.#owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#max = options.maxConcurrent ?? 64;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#timeouts = {
      ...DEFAULT_JOB_TIMEOUTS,
      ...options.timeouts,
      redfish: { ...DEFAULT_JOB_TIMEOUTS.redfish, ...options.timeouts?.redfish },
    };
    this.#retry = { ...DEFAULT_STEP_RETRY, ...options.stepRetry };
  }

  /** This replica's lease owner name. */
  get owner(): string {
    return this.#owner;
  }

  /** Runs in progress on this replica. */
  get activeRuns(): number {
    return this.#active.size;
  }

  /** Starts listening for device events and work, the dispatch loop and the sweeper. */
  async start(): Promise<void> {
    initRunCounters();
    this.#unsub.push(
      this.#o.lifecycle.subscribe((e) => {
        const serial = e.kind === 'contact' ? e.contact.serial : e.progress.serial;
        const kind = e.kind === 'contact' ? 'c' : 'p';
        const at = (e.kind === 'contact' ? e.contact.at : e.progress.at).toISOString();
        this.#onDevice(serial, kind, at);
        // Other replicas may run this device's job: tell them (a hint; their waits re-read the database).
        void this.#o.notifier
          .notify(DEVICES_CHANNEL, JSON.stringify({ s: serial, k: kind, at, o: this.#owner }))
          .catch(() => undefined);
      }),
    );
    this.#unsub.push(
      await this.#o.notifier.listen(DEVICES_CHANNEL, (payload) => {
        if (!payload) {
          // Reconnected: wake every wait to re-read.
          this.#wakeAll();
          return;
        }
        try {
          const m = JSON.parse(payload) as { s: string; k: string; at: string; o: string };
          if (m.o !== this.#owner) this.#onDevice(m.s, m.k, m.at);
        } catch {
          // not ours
        }
      }),
    );
    // A revocation changed (on any replica, announced after its commit): a wait for a device whose
    // IDevID it names must stop now, not at its deadline. Revocations are rare, so every wait re-checks.
    this.#unsub.push(await this.#o.notifier.listen(REVOKED_IDEVIDS_CHANNEL, () => this.#wakeAll()));
    this.#unsub.push(
      await this.#o.notifier.listen(JOBS_CHANNEL, (payload) => {
        try {
          const m = payload ? (JSON.parse(payload) as { cancel?: string; work?: boolean }) : { work: true };
          if (m.cancel) this.#abortJob(m.cancel);
          if (m.work) this.#wake?.();
        } catch {
          // not ours
        }
      }),
    );
    this.#loop = this.#dispatchLoop();
    this.#sweeper = setInterval(
      () => void this.#sweep().catch((err) => this.#o.log?.warn({ err }, 'job sweep failed')),
      Math.max(250, this.#leaseMs / 2),
    );
    this.#sweeper.unref();
    void this.#sweep().catch(() => undefined);
  }

  /**
   * Stops: no new runs; runs in progress are interrupted and their leases released, so another replica
   * (or this one after a restart) takes them over from the step they were in.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#sweeper);
    for (const u of this.#unsub.splice(0)) u();
    this.#wake?.();
    for (const a of this.#active.values()) a.abort.abort(new Error('shutting down'));
    await Promise.allSettled([...this.#active.values()].map((a) => a.done));
    await this.#loop;
  }

  /** Creates a job, queues its runs and returns its view. */
  async create(job: NewJob): Promise<JobView> {
    const { id, runs } = await this.store.create(job);
    const at = new Date();
    this.#emitJob({ jobId: id, kind: job.kind, state: 'queued', at, created: { devices: runs.length } });
    await this.#dispatch(runs);
    return (await this.store.view(id)) as JobView;
  }

  /** Cancels a job; runs in progress anywhere stop at once (here) or at their next renewal (elsewhere). */
  async cancel(jobId: string): Promise<JobView | undefined> {
    const runs = await this.store.cancel(jobId);
    if (!runs) return undefined;
    this.#abortJob(jobId);
    await this.#o.notifier.notify(JOBS_CHANNEL, JSON.stringify({ cancel: jobId })).catch(() => undefined);
    const view = (await this.store.view(jobId)) as JobView;
    if (runs.length > 0) {
      for (const r of runs) this.#emitDevice(r);
      this.#emitJob({ jobId, kind: view.kind, state: view.state, at: new Date() });
    }
    return view;
  }

  /** Queues the failed devices of a job again as a new attempt. */
  async retry(jobId: string): Promise<{ view: JobView; retried: number } | undefined> {
    const runs = await this.store.retry(jobId);
    if (!runs) return undefined;
    await this.#dispatch(runs.map((r) => r.id));
    const view = (await this.store.view(jobId)) as JobView;
    for (const r of runs) this.#emitDevice(r);
    if (runs.length) this.#emitJob({ jobId, kind: view.kind, state: view.state, at: new Date() });
    return { view, retried: runs.length };
  }

  // --- dispatch ---------------------------------------------------------------------------------------

  async #dispatch(runIds: readonly string[]): Promise<void> {
    for (let i = 0; i < runIds.length; i += 500)
      await this.#o.boss.insert(
        runIds.slice(i, i + 500).map((id) => ({ name: DEVICE_RUN_QUEUE, data: { run: id } })),
      );
    if (runIds.length) {
      this.#wake?.();
      await this.#o.notifier.notify(JOBS_CHANNEL, JSON.stringify({ work: true })).catch(() => undefined);
    }
  }

  async #dispatchLoop(): Promise<void> {
    const pollMs = this.#o.pollMs ?? 1000;
    while (!this.#stopping) {
      const free = this.#max - this.#active.size;
      let fetched = 0;
      if (free > 0) {
        try {
          const jobs = await this.#o.boss.fetch<{ run: string }>(DEVICE_RUN_QUEUE, { batchSize: free });
          fetched = jobs.length;
          for (const j of jobs) await this.#take(j.id, j.data.run);
        } catch (err) {
          this.#o.log?.warn({ err }, 'fetching device runs failed');
        }
      }
      if (this.#stopping) break;
      if (fetched > 0 && this.#active.size < this.#max) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pollMs);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Claims a fetched run and starts it; the queue message is done either way. */
  async #take(messageId: string, runId: string): Promise<void> {
    try {
      if (this.#active.has(runId) || this.#stopping) return;
      const claimed = await this.store.claim(runId, this.#owner, this.#leaseMs);
      if (typeof claimed === 'string') return; // finished, held elsewhere, or its BMC is busy
      if (claimed.jobStarted) {
        const job = await this.store.job(claimed.run.job_id);
        if (job) this.#emitJob({ jobId: job.id, kind: job.kind, state: 'running', at: new Date() });
      }
      this.#start(claimed.run);
    } finally {
      await this.#o.boss.complete(DEVICE_RUN_QUEUE, messageId).catch(() => undefined);
    }
  }

  #start(run: JobDevice): void {
    const abort = new AbortController();
    const entry: Active = { run, abort, done: Promise.resolve() };
    this.#active.set(run.id, entry);
    entry.done = this.#drive(run, abort)
      .catch((err) => this.#o.log?.error({ err, run: run.id }, 'device run crashed'))
      .finally(async () => {
        this.#active.delete(run.id);
        this.#contacts.delete(run.serial);
        if (run.bmc_id && !this.#stopping) {
          const next = await this.store.queuedOnBmc(run.bmc_id, 1).catch(() => []);
          await this.#dispatch(next).catch(() => undefined);
        }
        this.#wake?.();
      });
  }

  /** Re-queues runs whose replica died (lease expired) and queued runs that lost their message. */
  async #sweep(): Promise<void> {
    if (this.#stopping) return;
    const orphans = await this.store.orphans(this.#max);
    const ids = orphans.filter((r) => !this.#active.has(r.id)).map((r) => r.id);
    const stale = await this.store.db
      .selectFrom('job_devices')
      .select('id')
      .where('state', '=', 'queued')
      .where('updated_at', '<', new Date(Date.now() - Math.max(10 * this.#leaseMs, 60_000)))
      .limit(this.#max)
      .execute();
    if (stale.length)
      await this.store.db
        .updateTable('job_devices')
        .set({ updated_at: new Date() })
        .where(
          'id',
          'in',
          stale.map((r) => r.id),
        )
        .where('state', '=', 'queued')
        .execute();
    const all = [...ids, ...stale.map((r) => r.id)];
    if (all.length) {
      this.#o.log?.info({ runs: all.length }, 're-queueing device runs whose replica stopped');
      await this.#dispatch(all);
    }
  }

  #abortJob(jobId: string): void {
    for (const a of this.#active.values())
      if (a.run.job_id === jobId) a.abort.abort(new JobError('JOB_ERR_CANCELLED', 'the job was cancelled'));
  }

  #wakeAll(): void {
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) w();
  }

  #onDevice(serial: string, kind: string, at: string): void {
    const waiting = this.#waiters.get(serial);
    if (!waiting && ![...this.#active.values()].some((a) => a.run.serial === serial)) return;
    if (kind === 'c') {
      const d = new Date(at);
      const prev = this.#contacts.get(serial);
      if (!prev || prev < d) this.#contacts.set(serial, d);
    }
    for (const w of waiting ?? []) w();
  }

  // --- one run ----------------------------------------------------------------------------------------

  async #drive(claimed: JobDevice, abort: AbortController): Promise<void> {
    let run = claimed;
    const job = await this.store.job(run.job_id);
    if (!job) return;
    const params = { ...job.params, kind: job.kind };
    const timeouts = this.#timeoutsFor(params);
    const steps = stepsOf(job.kind);
    const resumed = run.traceparent !== null;
    if (!run.traceparent) {
      // The run's root span: recorded and ended now, so the trace has its root even when this replica
      // dies mid-run; every replica that drives the run (this one, or one resuming it) records under it.
      const root = tracer().startSpan(SpanName.jobRun, {
        attributes: {
          [Attr.jobId]: run.job_id,
          [Attr.deviceSerial]: run.serial,
          [Attr.jobKind]: job.kind,
          [Attr.jobAttempt]: run.attempt,
        },
      });
      const carrier: Record<string, string> = {};
      propagation.inject(trace.setSpan(otelContext.active(), root), carrier);
      root.end();
      if (carrier.traceparent) {
        const saved = await this.store
          .setTrace(run.id, carrier.traceparent, randomBytes(9).toString('base64url'))
          .catch(() => undefined);
        run = saved ?? { ...run, traceparent: carrier.traceparent };
      }
    }
    const span = this.#driveSpan(run, job.kind, resumed);
    if (run.traceparent) this.#o.traces?.started(run.serial, run.traceparent, run.image_token);
    let terminal = false;
    // Everything below — steps, Redfish calls, cleanup — is recorded under this replica's drive span.
    return otelContext.with(trace.setSpan(otelContext.active(), span), async () => {
      // The BMC messages of the step under way, stored with each renewal that finds new ones.
      let current: { step: string; log: BmcMessageLog; saved: number } | undefined;
      // Keep the lease alive; losing it (taken over, cancelled, finished elsewhere) stops this run at once.
      let renewedAt = Date.now();
      const heartbeat = setInterval(
        async () => {
          try {
            // A late renewal is harmless: it lands only while we still own the run (a replica that took
            // it over makes it fail, and we stop below).
            if (await this.store.renew(run.id, this.#owner, this.#leaseMs)) {
              renewedAt = Date.now();
              const c = current;
              if (c && c.log.revision !== c.saved) {
                const revision = c.log.revision;
                await this.store.saveStepMessages(run, this.#owner, c.step, c.log.messages);
                c.saved = revision;
              }
            } else {
              const now = await this.store.run(run.id);
              abort.abort(
                now?.state === 'cancelled'
                  ? new JobError('JOB_ERR_CANCELLED', 'the job was cancelled')
                  : new Error('lease lost'),
              );
            }
          } catch (err) {
            // The database did not answer: once the lease may have run out another replica may take the
            // run, so stop here first (an unreachable database must not make two runners).
            if (Date.now() - renewedAt > this.#leaseMs * 0.8)
              abort.abort(new Error('lease not renewed in time'));
            this.#o.log?.warn({ err, run: run.id }, 'lease renewal failed');
          }
        },
        Math.max(100, Math.floor(this.#leaseMs / 3)),
      );
      let client: RedfishClient | undefined;
      let target: BmcTarget | undefined;
      let probe: BmcProbe | undefined;
      const bmc = async () => {
        target ??= await bmcTargetOf(this.#o.bmcs, run);
        client ??= new RedfishClient(clientOptionsFor(target, this.#o.redfish));
        return { client, target };
      };
      this.#emitDevice(run);
      try {
        let i = Math.max(0, steps.indexOf(run.step));
        for (; i < steps.length; i++) {
          const step = steps[i] as string;
          if (step === 'done') break;
          if (abort.signal.aborted) throw abort.signal.reason;
          const bound = waitBound(step, timeouts);
          const entered = await this.store.enterStep(
            run,
            step,
            this.#owner,
            bound !== undefined ? new Date(Date.now() + bound) : undefined,
          );
          if (!entered.ok) throw new Error('lease lost');
          run = entered.run;
          if (i === 0 && !entered.resumed) recordRunStarted(job.kind);
          const stepStarted = (run.step_started_at ?? new Date()).getTime();
          const stepSeconds = () => (Date.now() - stepStarted) / 1000;
          this.#emitDevice(run);
          const redfishLines: string[] = [];
          // What the BMC says during this step (successes too), kept on the step's record — after
          // what it said to a replica that held this attempt before, when resumed.
          const bmcLog = new BmcMessageLog();
          bmcLog.carryOver(entered.bmcMessages);
          current = { step, log: bmcLog, saved: bmcLog.revision };
          const stepBmc = async () => {
            const b = await bmc();
            return { ...b, client: b.client.withMessageLog(bmcLog) };
          };
          const ctx: StepContext = {
            run,
            params,
            owner: this.#owner,
            store: this.store,
            signal: abort.signal,
            timeouts,
            bmc: stepBmc,
            probe: async () => {
              const { client: c, target: t } = await stepBmc();
              probe ??= await probeFor(c.withSignal(abort.signal), t);
              return probe;
            },
            installerImageUrl: (name) => this.#o.installerImageUrl(name, run.image_token ?? undefined),
            waitFor: (deadline, check) => this.#waitFor(run.serial, deadline, check, abort.signal),
            onRedfishStep: (e: StepEvent) => {
              if (e.status === 'fallback' || e.status === 'failed')
                redfishLines.push(`${e.strategy}/${e.step} ${e.status}${e.detail ? `: ${e.detail}` : ''}`);
            },
            markReset: async () => {
              const r = await this.store.markReset(run, this.#owner);
              if (r) run = r;
              ctx.run = run;
              return !!r;
            },
          };
          const fn = this.#steps[job.kind]?.[step];
          if (!fn) throw new JobError('JOB_ERR_INTERNAL', `no step ${step} for ${job.kind} jobs`);
          try {
            const out = await tracer().startActiveSpan(
              SpanName.jobStep(step),
              {
                attributes: {
                  [Attr.jobId]: run.job_id,
                  [Attr.deviceSerial]: run.serial,
                  [Attr.jobStep]: step,
                  [Attr.jobAttempt]: run.attempt,
                  ...(typeof run.context.strategy === 'string'
                    ? { [Attr.jobStrategy]: run.context.strategy }
                    : {}),
                },
              },
              trace.setSpan(otelContext.active(), span),
              async (s: Span) => {
                try {
                  return await this.#withRetry(step, ctx, abort.signal, fn, (note) => {
                    s.addEvent('retry', { [Attr.exceptionMessage]: note.slice(0, 500) });
                    redfishLines.push(note);
                  });
                } catch (err) {
                  recordSpanError(s, err);
                  throw err;
                } finally {
                  s.end();
                }
              },
            );
            if (out.context) {
              const saved = await this.store.saveContext(run, this.#owner, out.context);
              if (!saved) throw new Error('lease lost');
              run = saved;
            }
            await this.store.endStep(
              run,
              this.#owner,
              step,
              'done',
              [out.detail, ...redfishLines].filter(Boolean).join('; '),
              undefined,
              bmcLog.messages,
            );
            recordStep(runLabels(job.kind, run, probe?.profile.id), step, 'done', stepSeconds());
          } catch (err) {
            const s = stopOf(err);
            const cancelled =
              s.code === 'JOB_ERR_CANCELLED' ||
              (abort.signal.reason instanceof JobError && abort.signal.reason.code === 'JOB_ERR_CANCELLED');
            const interrupted = !cancelled && abort.signal.aborted;
            recordStep(
              runLabels(job.kind, run, probe?.profile.id),
              step,
              cancelled ? 'cancelled' : interrupted ? 'interrupted' : 'failed',
              stepSeconds(),
            );
            await this.store
              .endStep(
                run,
                this.#owner,
                step,
                cancelled ? 'cancelled' : interrupted ? 'interrupted' : 'failed',
                [s.message, ...redfishLines].join('; '),
                {
                  code: cancelled ? 'JOB_ERR_CANCELLED' : s.code,
                  bmcMessages: s.bmcMessages,
                },
                bmcLog.messages,
              )
              .catch(() => undefined);
            throw err;
          }
        }
        const finished = await this.store.finishRun(run, this.#owner, 'succeeded');
        terminal = true;
        if (finished) {
          await recordRunFinished(this.store, run, runLabels(job.kind, run, probe?.profile.id), 'succeeded');
          if (job.kind === 'decommission') await markRegistered(this.store, run.serial);
          this.#emitDevice(finished);
        }
      } catch (err) {
        const reason = abort.signal.aborted ? abort.signal.reason : err;
        if (reason instanceof JobError && reason.code === 'JOB_ERR_CANCELLED') {
          // The run is already `cancelled` in the database: leave the BMC as clean as we can.
          await recordRunFinished(this.store, run, runLabels(job.kind, run, probe?.profile.id), 'cancelled');
          terminal = true;
          await this.#cleanup(run, job.kind, bmc).catch(() => undefined);
          await this.store.release(run.id, this.#owner).catch(() => undefined);
        } else if (abort.signal.aborted) {
          // Shutdown or a lost lease: not a failure of the device. Let it go for a takeover.
          await this.store.release(run.id, this.#owner).catch(() => undefined);
          // Queued again at once unless this replica is stopping (any replica's sweeper catches it then).
          if (!this.#stopping) await this.#dispatch([run.id]).catch(() => undefined);
        } else {
          const s = stopOf(err);
          span.setAttribute(Attr.errorCode, s.code);
          // Leave the BMC clean for the next attempt or a person: eject, clear the override (best effort,
          // noted on the failed step; a BMC that cannot be reached is not waited for again).
          if (!isTransient(err) && !(err instanceof JobError && err.code === 'JOB_ERR_NO_BMC')) {
            const note = await this.#cleanup(run, job.kind, bmc).then(
              (lines) => (lines.length ? `cleanup: ${lines.join('; ')}` : ''),
              (e: unknown) => `cleanup failed: ${(e as Error).message}`,
            );
            if (note)
              await this.store.endStep(run, this.#owner, run.step, 'failed', note).catch(() => undefined);
          }
          const finished = await this.store.finishRun(run, this.#owner, s.state, s);
          terminal = true;
          if (finished) {
            await recordRunFinished(this.store, run, runLabels(job.kind, run, probe?.profile.id), s.state);
            this.#emitDevice(finished);
          }
        }
      } finally {
        clearInterval(heartbeat);
        span.end();
        if (terminal) this.#o.traces?.finished(run.serial, run.image_token);
        await client?.close().catch(() => undefined);
        const settled = await this.store.settleJob(run.job_id).catch(() => undefined);
        if (settled?.changed)
          this.#emitJob({ jobId: run.job_id, kind: job.kind, state: settled.state, at: new Date() });
      }
    });
  }

  /** Runs a step, retrying BMC steps after transient failures with backoff. */
  async #withRetry<T>(
    step: string,
    ctx: StepContext,
    signal: AbortSignal,
    fn: (ctx: StepContext) => Promise<T>,
    note: (line: string) => void,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(ctx);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (!BMC_STEPS.has(step) || !isTransient(err) || attempt + 1 >= this.#retry.attempts) throw err;
        const delay = backoffDelay(attempt, this.#retry.baseDelayMs, this.#retry.maxDelayMs);
        note(`try ${attempt + 1} failed (${(err as Error).message}); retrying in ${delay} ms`);
        await sleep(delay, signal);
      }
    }
  }

  /** Waits until `check` gives a value, woken by the device's events and re-reading every `recheckMs`. */
  async #waitFor<T>(
    serial: string,
    deadline: Date,
    check: () => Promise<T | undefined>,
    signal: AbortSignal,
  ): Promise<T | undefined> {
    const recheck = this.#o.recheckMs ?? 15_000;
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const got = await check();
      if (got !== undefined) return got;
      const left = deadline.getTime() - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        let set = this.#waiters.get(serial);
        if (!set) {
          set = new Set();
          this.#waiters.set(serial, set);
        }
        const wake = () => {
          clearTimeout(t);
          set.delete(wake);
          if (set.size === 0) this.#waiters.delete(serial);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        const t = setTimeout(wake, Math.min(recheck, left));
        set.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  /** Ejects media and clears the override after a provisioning run stopped partway (cancel or failure). */
  async #cleanup(
    run: JobDevice,
    kind: JobKind,
    bmc: () => Promise<{ client: RedfishClient; target: BmcTarget }>,
  ): Promise<string[]> {
    if (kind !== 'provision' || run.step === 'preflight') return [];
    const { client, target } = await bmc();
    const probe = await probeFor(client, target);
    return teardown(client, probe, { waits: this.#timeouts.redfish });
  }

  #timeoutsFor(params: Record<string, unknown>): JobTimeouts {
    const t = (params.timeouts ?? {}) as { awaitDevice?: number; awaitComplete?: number };
    return {
      ...this.#timeouts,
      ...(typeof t.awaitDevice === 'number' ? { awaitDeviceMs: t.awaitDevice * 1000 } : {}),
      ...(typeof t.awaitComplete === 'number' ? { awaitCompleteMs: t.awaitComplete * 1000 } : {}),
    };
  }

  /** This replica's span over the run: a child of the run's stored root, so a resumed run continues its trace. */
  #driveSpan(run: JobDevice, kind: JobKind, resumed: boolean): Span {
    const parent = run.traceparent
      ? propagation.extract(otelContext.active(), { traceparent: run.traceparent })
      : otelContext.active();
    return tracer().startSpan(
      SpanName.jobDrive(kind),
      {
        attributes: {
          [Attr.jobId]: run.job_id,
          [Attr.deviceSerial]: run.serial,
          [Attr.jobAttempt]: run.attempt,
          [Attr.jobResumed]: resumed,
        },
      },
      parent,
    );
  }

  #emitJob(c: JobChange): void {
    try {
      this.#o.events?.jobChanged(c);
    } catch {
      // an event sink's failure never changes the job
    }
  }

  #emitDevice(r: JobDevice): void {
    try {
      this.#o.events?.deviceChanged({
        jobId: r.job_id,
        serial: r.serial,
        state: r.state,
        step: r.step,
        attempt: r.attempt,
        at: r.updated_at,
        ...(r.error_code
          ? {
              error: {
                code: r.error_code,
                message: r.error_message ?? '',
                bmcMessages: r.bmc_messages ?? undefined,
              },
            }
          : {}),
      });
    } catch {
      // an event sink's failure never changes the job
    }
  }
}
