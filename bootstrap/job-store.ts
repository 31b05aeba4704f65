/**
 * Provisioning jobs in the database: jobs, their device runs and every step
 * attempt. The run row is the durable state machine — its step, attempt, wait
 * deadline and lease — so any replica can take a run over when the one running
 * it dies; only the holder of an unexpired lease advances a run, so two
 * replicas never run one device step at the same time.
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type {
  Database,
  Job,
  JobDevice,
  JobDeviceState,
  JobKind,
  JobState,
  JobStep,
  JobStepResult,
} from '../db/index.js';
import { appendJobEvent, EventLog } from './events.js';
import { stepsOf } from './job-steps.js';

export { DECOMMISSION_STEPS, POWER_STEPS, PROVISION_STEPS, stepsOf } from './job-steps.js';

/** Run states after which nothing more happens (until a retry). */
export const TERMINAL_RUN_STATES: readonly JobDeviceState[] = [
  'succeeded',
  'failed',
  'needs-attention',
  'cancelled',
];

/** Counts of a job's device runs by state. */
export type JobCounts = Record<JobDeviceState, number> & { total: number };

/** A device run as the API shows it. */
export interface JobDeviceView {
  serial: string;
  state: JobDeviceState;
  step: string;
  attempt: number;
  /** The provisioning strategy preflight picked (and prepare settled on after a fallback), once known. */
  strategy?: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: { code: string; message: string; bmcMessages?: unknown[] } | null;
  /** The W3C trace id of the run's root span (from its stored traceparent), for a trace viewer link. */
  traceId: string | null;
  steps?: JobStepView[];
}

/** One message in the BMC's own words (Redfish Message fields), as a step shows it. */
export interface BmcMessageView {
  MessageId: string;
  Message?: string;
  Severity?: string;
  Resolution?: string;
  MessageArgs?: unknown[];
  RelatedProperties?: string[];
}

/** One step attempt as the API shows it. */
export interface JobStepView {
  step: string;
  attempt: number;
  startedAt: string;
  finishedAt: string | null;
  result: JobStepResult;
  detail: string | null;
  errorCode: string | null;
  /** What the BMC said during the step, successful or not (a failure's own messages when it has any). */
  bmcMessages: BmcMessageView[] | null;
}

/** A job as the API shows it. */
export interface JobView {
  id: string;
  kind: JobKind;
  state: JobState;
  params: Record<string, unknown>;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  counts: JobCounts;
  devices: JobDeviceView[];
}

/** Why a claim did not give the lease. */
export type ClaimRefusal = 'gone' | 'terminal' | 'held' | 'bmc-busy';

function emptyCounts(): JobCounts {
  return { queued: 0, running: 0, succeeded: 0, failed: 0, 'needs-attention': 0, cancelled: 0, total: 0 };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The API view of a run row (and its steps when given). */
export function jobDeviceView(r: JobDevice, steps?: JobStep[]): JobDeviceView {
  return {
    serial: r.serial,
    state: r.state,
    step: r.step,
    attempt: r.attempt,
    ...(typeof r.context?.strategy === 'string' ? { strategy: r.context.strategy } : {}),
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    error: r.error_code
      ? {
          code: r.error_code,
          message: r.error_message ?? '',
          ...(r.bmc_messages?.length ? { bmcMessages: r.bmc_messages } : {}),
        }
      : null,
    traceId: /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(r.traceparent ?? '')?.[1] ?? null,
    ...(steps
      ? {
          steps: steps.map((s) => ({
            step: s.step,
            attempt: s.attempt,
            startedAt: s.started_at.toISOString(),
            finishedAt: iso(s.finished_at),
            result: s.result,
            detail: s.detail,
            errorCode: s.error_code,
            bmcMessages: (s.bmc_messages as BmcMessageView[] | null) ?? null,
          })),
        }
      : {}),
  };
}

/** The job's state from its runs' states (`failed` when any run failed or needs attention). */
export function jobStateOf(current: JobState, counts: JobCounts): JobState {
  if (current === 'cancelled') return 'cancelled';
  const open = counts.queued + counts.running;
  if (open > 0) return counts.running > 0 || counts.total > counts.queued ? 'running' : 'queued';
  if (counts.failed + counts['needs-attention'] > 0) return 'failed';
  if (counts.cancelled > 0 && counts.succeeded === 0) return 'cancelled';
  return 'succeeded';
}

/** What a new job is made of. */
export interface NewJob {
  kind: JobKind;
  /** Serial and BMC id of each device. */
  devices: ReadonlyArray<{ serial: string; bmc: string | null }>;
  params: Record<string, unknown>;
  createdBy?: string | undefined;
}

/** Reads and writes jobs, runs and steps. */
export class JobStore {
  readonly #db: Kysely<Database>;
  readonly #now: () => Date;

  constructor(db: Kysely<Database>, now: () => Date = () => new Date()) {
    this.#db = db;
    this.#now = now;
  }

  get db(): Kysely<Database> {
    return this.#db;
  }

  /** Creates a job, one queued run per device and its `job.created` event, in one transaction. Returns the job id and run ids. */
  async create(job: NewJob, db: Kysely<Database> = this.#db): Promise<{ id: string; runs: string[] }> {
    const id = randomUUID();
    const now = this.#now();
    const first = stepsOf(job.kind)[0] as string;
    const runs = job.devices.map(() => randomUUID());
    const write = async (tx: Kysely<Database>) => {
      await tx
        .insertInto('jobs')
        .values({
          id,
          kind: job.kind,
          state: 'queued',
          params: JSON.stringify(job.params),
          created_by: job.createdBy ?? null,
          created_at: now,
          updated_at: now,
        })
        .execute();
      for (let i = 0; i < job.devices.length; i += 500) {
        await tx
          .insertInto('job_devices')
          .values(
            job.devices.slice(i, i + 500).map((d, j) => ({
              id: runs[i + j] as string,
              job_id: id,
              serial: d.serial,
              bmc_id: d.bmc,
              state: 'queued' as const,
              step: first,
              updated_at: now,
            })),
          )
          .execute();
      }
      // The job's first event commits with it. Later job and run changes get theirs from the
      // database's triggers (migration 0080), in the statement that makes the change.
      await appendJobEvent(
        new EventLog(tx),
        { type: 'job.created', job: id, data: { kind: job.kind, devices: job.devices.length } },
        tx,
      );
    };
    if (db.isTransaction) await write(db);
    else await db.transaction().execute(write);
    return { id, runs };
  }

  /** Serials among `serials` that are in a run not yet finished (of any job), with that job's id. */
  async busyDevices(serials: readonly string[]): Promise<Array<{ serial: string; job: string }>> {
    if (serials.length === 0) return [];
    const rows = await this.#db
      .selectFrom('job_devices')
      .select(['serial', 'job_id'])
      .where('serial', 'in', serials as string[])
      .where('state', 'in', ['queued', 'running'])
      .execute();
    return rows.map((r) => ({ serial: r.serial, job: r.job_id }));
  }

  /** The job row. */
  async job(id: string): Promise<Job | undefined> {
    return this.#db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The run row. */
  async run(id: string): Promise<JobDevice | undefined> {
    return this.#db.selectFrom('job_devices').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** A job's runs. */
  async runs(jobId: string): Promise<JobDevice[]> {
    return this.#db
      .selectFrom('job_devices')
      .selectAll()
      .where('job_id', '=', jobId)
      .orderBy('serial')
      .execute();
  }

  /** Counts of each job's runs by state. */
  async counts(jobIds: readonly string[]): Promise<Map<string, JobCounts>> {
    const out = new Map<string, JobCounts>();
    for (const id of jobIds) out.set(id, emptyCounts());
    if (jobIds.length === 0) return out;
    const rows = await this.#db
      .selectFrom('job_devices')
      .select(['job_id', 'state', (eb) => eb.fn.countAll<string>().as('n')])
      .where('job_id', 'in', jobIds as string[])
      .groupBy(['job_id', 'state'])
      .execute();
    for (const r of rows) {
      const c = out.get(r.job_id) as JobCounts;
      c[r.state] = Number(r.n);
      c.total += Number(r.n);
    }
    return out;
  }

  /** The API view of a job with its devices (and, with `steps`, every step attempt). */
  async view(id: string, opts: { steps?: boolean } = {}): Promise<JobView | undefined> {
    const job = await this.job(id);
    if (!job) return undefined;
    const runs = await this.runs(id);
    const steps = new Map<string, JobStep[]>();
    if (opts.steps && runs.length > 0) {
      const rows = await this.#db
        .selectFrom('job_steps')
        .selectAll()
        .where(
          'run_id',
          'in',
          runs.map((r) => r.id),
        )
        .orderBy('id')
        .execute();
      for (const s of rows) {
        const list = steps.get(s.run_id) ?? [];
        list.push(s);
        steps.set(s.run_id, list);
      }
    }
    const counts = (await this.counts([id])).get(id) as JobCounts;
    return {
      ...jobHead(job, counts),
      devices: runs.map((r) => jobDeviceView(r, opts.steps ? (steps.get(r.id) ?? []) : undefined)),
    };
  }

  /** Jobs newest first, optionally of one state; keyset pages by (created_at, id). */
  async list(opts: { state?: JobState; serial?: string; limit: number; before?: { at: Date; id: string } }) {
    let q = this.#db
      .selectFrom('jobs')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(opts.limit + 1);
    if (opts.state) q = q.where('state', '=', opts.state);
    const serial = opts.serial;
    if (serial !== undefined)
      q = q.where('id', 'in', (eb) =>
        eb.selectFrom('job_devices').select('job_id').where('serial', '=', serial),
      );
    if (opts.before) {
      const b = opts.before;
      q = q.where((eb) =>
        eb.or([eb('created_at', '<', b.at), eb.and([eb('created_at', '=', b.at), eb('id', '<', b.id)])]),
      );
    }
    const rows = await q.execute();
    const page = rows.slice(0, opts.limit);
    const counts = await this.counts(page.map((j) => j.id));
    return {
      items: page.map((j) => jobHead(j, counts.get(j.id) as JobCounts)),
      next: rows.length > opts.limit ? page.at(-1) : undefined,
    };
  }

  /**
   * Takes the lease on a run for `owner` when it is free (never held, expired, or already ours), the run
   * is not finished, and no other run on the same BMC holds a lease (one provisioning per BMC). The BMC
   * check and the take happen under a transaction-scoped advisory lock on the BMC id, so two replicas
   * cannot both take runs on one BMC.
   */
  async claim(
    runId: string,
    owner: string,
    leaseMs: number,
  ): Promise<{ run: JobDevice; jobStarted: boolean } | ClaimRefusal> {
    return this.#db.transaction().execute(async (tx) => {
      const run = await tx.selectFrom('job_devices').selectAll().where('id', '=', runId).executeTakeFirst();
      if (!run) return 'gone';
      if (TERMINAL_RUN_STATES.includes(run.state)) return 'terminal';
      if (run.bmc_id) {
        await sql`select pg_advisory_xact_lock(hashtext(${`dpu-ztp:bmc:${run.bmc_id}`}))`.execute(tx);
        const other = await tx
          .selectFrom('job_devices')
          .select('id')
          .where('bmc_id', '=', run.bmc_id)
          .where('id', '<>', runId)
          .where('state', '=', 'running')
          .where('lease_until', '>', sql<Date>`now()`)
          .executeTakeFirst();
        if (other) return 'bmc-busy';
      }
      const now = this.#now();
      const taken = await tx
        .updateTable('job_devices')
        .set({
          owner,
          lease_until: sql<Date>`now() + ${`${leaseMs} milliseconds`}::interval`,
          state: 'running',
          started_at: run.started_at ?? now,
          updated_at: now,
        })
        .where('id', '=', runId)
        .where('state', 'in', ['queued', 'running'])
        .where((eb) =>
          eb.or([eb('owner', 'is', null), eb('owner', '=', owner), eb('lease_until', '<', sql<Date>`now()`)]),
        )
        .returningAll()
        .executeTakeFirst();
      if (!taken) return 'held';
      const started = await tx
        .updateTable('jobs')
        .set({ state: 'running', updated_at: now })
        .where('id', '=', run.job_id)
        .where('state', '=', 'queued')
        .executeTakeFirst();
      return { run: taken, jobStarted: Number(started.numUpdatedRows) > 0 };
    });
  }

  /**
   * Extends `owner`'s lease. Returns false when the lease is lost (taken over, or the run was finished
   * or cancelled elsewhere): the holder must stop at once.
   */
  async renew(runId: string, owner: string, leaseMs: number): Promise<boolean> {
    const r = await this.#db
      .updateTable('job_devices')
      .set({ lease_until: sql<Date>`now() + ${`${leaseMs} milliseconds`}::interval` })
      .where('id', '=', runId)
      .where('owner', '=', owner)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Gives a lease up without finishing the run (shutdown): another replica may take it at once. */
  async release(runId: string, owner: string): Promise<void> {
    await this.#db
      .updateTable('job_devices')
      .set({ owner: null, lease_until: null })
      .where('id', '=', runId)
      .where('owner', '=', owner)
      .execute();
  }

  /** Running runs nobody holds: released (shutdown, a lost lease), or whose lease expired (their replica died). */
  async orphans(limit: number): Promise<JobDevice[]> {
    return (
      this.#db
        .selectFrom('job_devices')
        .selectAll()
        .where('state', '=', 'running')
        // Released (shutdown, a lost lease) or expired (the replica died).
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', sql<Date>`now()`)]))
        .limit(limit)
        .execute()
    );
  }

  /** Queued runs on a BMC (to dispatch when the BMC frees up). */
  async queuedOnBmc(bmcId: string, limit: number): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('job_devices')
      .select('id')
      .where('bmc_id', '=', bmcId)
      .where('state', '=', 'queued')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /**
   * Moves the run to `step` (if not there already) and records the attempt's start. Re-entering the
   * step it is in (a takeover after a crash) keeps its start and wait deadline and marks the record as
   * resumed. Only the lease holder's update lands; false when the lease is lost.
   */
  async enterStep(
    run: JobDevice,
    step: string,
    owner: string,
    deadline?: Date,
  ): Promise<{ ok: boolean; resumed: boolean; run: JobDevice; bmcMessages?: unknown[] }> {
    const now = this.#now();
    const resumed = run.step === step && run.step_started_at !== null;
    // One statement: the run's move and the attempt's record land together (or,
    // when the lease is lost and the update matches nothing, neither does).
    const updated = await this.#db
      .with('u', (db) =>
        db
          .updateTable('job_devices')
          .set(
            resumed
              ? { updated_at: now }
              : { step, step_started_at: now, step_deadline: deadline ?? null, updated_at: now },
          )
          .where('id', '=', run.id)
          .where('owner', '=', owner)
          .where('state', '=', 'running')
          .returningAll(),
      )
      .with('s', (db) =>
        db
          .insertInto('job_steps')
          .columns(['run_id', 'step', 'attempt', 'started_at', 'result', 'owner'])
          .expression((eb) =>
            eb
              .selectFrom('u')
              // Typed casts: parameters in a SELECT list are otherwise text.
              .select([
                'u.id',
                sql<string>`${step}::text`.as('step'),
                sql<number>`${run.attempt}::int4`.as('attempt'),
                sql<Date>`${now}::timestamptz`.as('started_at'),
                sql<string>`'running'::text`.as('result'),
                sql<string>`${owner}::text`.as('owner'),
              ]),
          )
          .onConflict((oc) =>
            oc.columns(['run_id', 'step', 'attempt']).doUpdateSet({
              owner,
              result: 'running',
              detail: sql<string>`coalesce(job_steps.detail || '; ', '') || ${`resumed by ${owner} at ${now.toISOString()}`}`,
            }),
          )
          // Resumed: what the BMC said to the replica that held the attempt before (flushed while it ran).
          .returning('bmc_messages'),
      )
      .selectFrom('u')
      .selectAll('u')
      .select((eb) => eb.selectFrom('s').select('s.bmc_messages').as('step_bmc_messages'))
      .executeTakeFirst();
    if (!updated) return { ok: false, resumed, run };
    const { step_bmc_messages: earlier, ...next } = updated;
    return { ok: true, resumed, run: next, ...(resumed && earlier ? { bmcMessages: earlier } : {}) };
  }

  /**
   * Stores what the BMC has said so far in the run's current attempt of `step` while it is still
   * running (only `owner`'s record), so a replica that dies mid-step does not take it along: the one
   * that resumes the attempt carries it over ({@link enterStep}'s `bmcMessages`).
   */
  async saveStepMessages(
    run: JobDevice,
    owner: string,
    step: string,
    bmcMessages: readonly unknown[],
  ): Promise<void> {
    await this.#db
      .updateTable('job_steps')
      .set({ bmc_messages: JSON.stringify(bmcMessages) })
      .where('run_id', '=', run.id)
      .where('step', '=', step)
      .where('attempt', '=', run.attempt)
      .where('owner', '=', owner)
      .where('result', '=', 'running')
      .execute();
  }

  /**
   * Records how the run's current attempt of `step` ended (only `owner`'s record). `bmcMessages` are
   * what the BMC said during the step (every response, success or not); a failure's own BMC messages
   * (`error.bmcMessages`) take their place when it has any. Without either the stored ones stay.
   */
  async endStep(
    run: JobDevice,
    owner: string,
    step: string,
    result: JobStepResult,
    detail?: string,
    error?: { code: string; bmcMessages?: unknown[] | undefined },
    bmcMessages?: readonly unknown[],
  ): Promise<void> {
    const messages = error?.bmcMessages?.length ? error.bmcMessages : bmcMessages;
    await this.#db
      .updateTable('job_steps')
      .set({
        result,
        finished_at: this.#now(),
        ...(detail !== undefined
          ? { detail: sql<string>`coalesce(detail || '; ', '') || ${detail.slice(0, 8000)}` }
          : {}),
        ...(error ? { error_code: error.code } : {}),
        ...(messages?.length ? { bmc_messages: JSON.stringify(messages) } : {}),
      })
      .where('run_id', '=', run.id)
      .where('step', '=', step)
      .where('attempt', '=', run.attempt)
      // A replica that lost the run to another must not write over the new holder's record.
      .where('owner', '=', owner)
      .execute();
  }

  /** Merges what a step learned into the run's context (only while `owner` holds the lease). */
  async saveContext(
    run: JobDevice,
    owner: string,
    context: Record<string, unknown>,
  ): Promise<JobDevice | undefined> {
    return this.#db
      .updateTable('job_devices')
      .set({ context: JSON.stringify({ ...run.context, ...context }), updated_at: this.#now() })
      .where('id', '=', run.id)
      .where('owner', '=', owner)
      .returningAll()
      .executeTakeFirst();
  }

  /** Records that the reset is about to be sent (only while `owner` holds the lease). */
  async markReset(run: JobDevice, owner: string): Promise<JobDevice | undefined> {
    return this.#db
      .updateTable('job_devices')
      .set({ reset_at: this.#now(), updated_at: this.#now() })
      .where('id', '=', run.id)
      .where('owner', '=', owner)
      .where('state', '=', 'running')
      .returningAll()
      .executeTakeFirst();
  }

  /** Finishes a run (lease holder only) and releases its lease. Returns the row, or undefined if the lease was lost. */
  async finishRun(
    run: JobDevice,
    owner: string,
    state: JobDeviceState,
    error?: { code: string; message: string; bmcMessages?: unknown[] | undefined },
  ): Promise<JobDevice | undefined> {
    const now = this.#now();
    return this.#db
      .updateTable('job_devices')
      .set({
        state,
        ...(state === 'succeeded' ? { step: 'done' } : {}),
        finished_at: now,
        updated_at: now,
        owner: null,
        lease_until: null,
        error_code: error?.code ?? null,
        error_message: error?.message.slice(0, 8000) ?? null,
        bmc_messages: error?.bmcMessages?.length ? JSON.stringify(error.bmcMessages) : null,
      })
      .where('id', '=', run.id)
      .where('owner', '=', owner)
      .where('state', '=', 'running')
      .returningAll()
      .executeTakeFirst();
  }

  /** Recomputes a job's state from its runs; returns it with whether it changed. */
  async settleJob(jobId: string): Promise<{ state: JobState; changed: boolean } | undefined> {
    return this.#db.transaction().execute(async (tx) => {
      const job = await tx
        .selectFrom('jobs')
        .select(['state'])
        .where('id', '=', jobId)
        .forUpdate()
        .executeTakeFirst();
      if (!job) return undefined;
      const rows = await tx
        .selectFrom('job_devices')
        .select(['state', (eb) => eb.fn.countAll<string>().as('n')])
        .where('job_id', '=', jobId)
        .groupBy('state')
        .execute();
      const counts = emptyCounts();
      for (const r of rows) {
        counts[r.state] = Number(r.n);
        counts.total += Number(r.n);
      }
      const state = jobStateOf(job.state, counts);
      if (state === job.state) return { state, changed: false };
      const now = this.#now();
      const done = state === 'succeeded' || state === 'failed' || state === 'cancelled';
      await tx
        .updateTable('jobs')
        .set({ state, updated_at: now, ...(done ? { finished_at: now } : { finished_at: null }) })
        .where('id', '=', jobId)
        .execute();
      return { state, changed: true };
    });
  }

  /**
   * Cancels a job: the job is `cancelled`, and every run not finished too (a running run's holder sees
   * it at its next lease renewal and stops). Returns the runs that were cancelled, or undefined when the
   * job is unknown; an already finished job is left as it is (empty list).
   */
  async cancel(jobId: string): Promise<JobDevice[] | undefined> {
    return this.#db.transaction().execute(async (tx) => {
      // Lock order: runs (in id order), then the job — the order a claim takes them in (its run,
      // then the job it marks running). Taking the job first deadlocked against claims (40P01).
      await tx
        .selectFrom('job_devices')
        .select('id')
        .where('job_id', '=', jobId)
        .where('state', 'in', ['queued', 'running'])
        .orderBy('id')
        .forUpdate()
        .execute();
      const job = await tx
        .selectFrom('jobs')
        .select(['state'])
        .where('id', '=', jobId)
        .forUpdate()
        .executeTakeFirst();
      if (!job) return undefined;
      if (job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled') return [];
      const now = this.#now();
      const runs = await tx
        .updateTable('job_devices')
        .set({
          state: 'cancelled',
          finished_at: now,
          updated_at: now,
          error_code: 'JOB_ERR_CANCELLED',
          error_message: 'the job was cancelled',
        })
        .where('job_id', '=', jobId)
        .where('state', 'in', ['queued', 'running'])
        .returningAll()
        .execute();
      for (const r of runs)
        await tx
          .updateTable('job_steps')
          .set({ result: 'cancelled', finished_at: now })
          .where('run_id', '=', r.id)
          .where('attempt', '=', r.attempt)
          .where('result', '=', 'running')
          .execute();
      await tx
        .updateTable('jobs')
        .set({ state: 'cancelled', updated_at: now, finished_at: now })
        .where('id', '=', jobId)
        .execute();
      return runs;
    });
  }

  /**
   * Queues the failed (and needs-attention) runs of a finished job again as a new attempt from the first
   * step. Returns the runs queued, or undefined when the job is unknown.
   */
  async retry(jobId: string): Promise<JobDevice[] | undefined> {
    return this.#db.transaction().execute(async (tx) => {
      const job = await tx
        .selectFrom('jobs')
        .select(['state', 'kind'])
        .where('id', '=', jobId)
        .forUpdate()
        .executeTakeFirst();
      if (!job) return undefined;
      const now = this.#now();
      const runs = await tx
        .updateTable('job_devices')
        .set((eb) => ({
          state: 'queued',
          step: stepsOf(job.kind)[0] as string,
          attempt: eb('attempt', '+', 1),
          finished_at: null,
          error_code: null,
          error_message: null,
          bmc_messages: null,
          owner: null,
          lease_until: null,
          step_started_at: null,
          step_deadline: null,
          reset_at: null,
          context: '{}',
          traceparent: null,
          image_token: null,
          updated_at: now,
        }))
        .where('job_id', '=', jobId)
        .where('state', 'in', ['failed', 'needs-attention'])
        .returningAll()
        .execute();
      if (runs.length > 0)
        await tx
          .updateTable('jobs')
          .set({ state: 'running', updated_at: now, finished_at: null })
          .where('id', '=', jobId)
          .execute();
      return runs;
    });
  }

  /**
   * Stores the run's trace context (W3C traceparent of its root span) and the image token that
   * attributes its BMC's image reads to that trace — once: a run that has them keeps them.
   */
  async setTrace(runId: string, traceparent: string, imageToken: string): Promise<JobDevice | undefined> {
    return this.#db
      .updateTable('job_devices')
      .set({ traceparent, image_token: imageToken })
      .where('id', '=', runId)
      .where('traceparent', 'is', null)
      .returningAll()
      .executeTakeFirst();
  }

  /** Serial, traceparent and image token of every running run that has a trace (at most `limit`). */
  async activeTraces(
    limit: number,
  ): Promise<Array<{ serial: string; traceparent: string; image_token: string | null }>> {
    const rows = await this.#db
      .selectFrom('job_devices')
      .select(['serial', 'traceparent', 'image_token'])
      .where('state', '=', 'running')
      .where('traceparent', 'is not', null)
      .limit(limit)
      .execute();
    return rows as Array<{ serial: string; traceparent: string; image_token: string | null }>;
  }

  /** The traceparent of the running run whose image token is `token`, if any. */
  async traceparentOfImageToken(token: string): Promise<string | undefined> {
    const r = await this.#db
      .selectFrom('job_devices')
      .select('traceparent')
      .where('image_token', '=', token)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return r?.traceparent ?? undefined;
  }

  /**
   * The trace context of the device's active run, if any (read by {@link JobTraceIndex} on a miss): joins
   * a device's RESTCONF calls and progress reports to its provisioning trace.
   */
  async activeTraceparent(serial: string): Promise<string | undefined> {
    const r = await this.#db
      .selectFrom('job_devices')
      .select('traceparent')
      .where('serial', '=', serial)
      .where('state', '=', 'running')
      .where('traceparent', 'is not', null)
      .orderBy('updated_at', 'desc')
      .executeTakeFirst();
    return r?.traceparent ?? undefined;
  }
}

function jobHead(job: Job, counts: JobCounts) {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    params: job.params,
    createdBy: job.created_by,
    createdAt: job.created_at.toISOString(),
    updatedAt: job.updated_at.toISOString(),
    finishedAt: iso(job.finished_at),
    counts,
  };
}
