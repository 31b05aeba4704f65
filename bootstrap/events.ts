/**
 * The event log: an append-only `events` table of device and job changes, the
 * one source for the SSE stream (`GET /api/v1/events`) and webhooks.
 *
 * Writers call {@link EventLog.append}, inside their own transaction when the
 * change and its event must land together. Each append also queues a delivery
 * for every webhook whose patterns match (same transaction, so an event and its
 * deliveries cannot part) and raises `NOTIFY dpu_ztp_events`, which PostgreSQL
 * delivers on commit to every replica.
 *
 * Readers: one {@link EventHub} per process tails the table (`id > last`, the
 * primary key) when woken by that notification (PostgreSQL `LISTEN`, PGlite's
 * in-process `listen`) or by a slow fallback poll, and fans out to subscribers.
 * Ids come from a sequence, so a transaction may commit id 11 before id 10; the
 * hub only hands out an id once every smaller id is either seen or has been
 * missing for `gapWaitMs` (a rolled-back transaction leaves a permanent gap).
 * Subscribers therefore see ids strictly increasing, which is what makes
 * `Last-Event-ID` resume exact.
 */
import { type ExpressionBuilder, type Kysely, sql } from 'kysely';
import type { Database, EventRow } from '../db/index.js';

/**
 * The PostgreSQL notification channel appends raise (payload empty: PostgreSQL folds repeats within a
 * transaction). Named again in migration 0080's `dpu_ztp_append_event`.
 */
export const EVENT_CHANNEL = 'dpu_ztp_events';

/** Device event types (written by `DeviceStateLifecycle` and the device routes). */
export const DEVICE_EVENT_TYPES = [
  /** A report-progress arrived: `{progressType, message?}` */
  'device.progress',
  /** The device's state moved: `{from, to, reason}` */
  'device.state',
  /** An operator registered or changed a device: `{created, fields}` */
  'device.updated',
  /** An operator deleted a device: `{}` */
  'device.deleted',
  /** An operator approved a held device: `{profile}` */
  'device.approved',
] as const;

/**
 * Job event types. `job.created` is appended by `JobStore.create` in the job's own transaction;
 * `job.state` and `job.device.state` by database triggers (migration 0080) in the very statement
 * that changes the job or the run, so no change is stored without its event.
 */
export const JOB_EVENT_TYPES = [
  /** A job was accepted: `{kind, devices: number, ...}` */
  'job.created',
  /** The job's state moved: `{from?, to}` (queued, running, succeeded, failed, cancelled) */
  'job.state',
  /** A device of the job moved: `{from?, to, error?}` */
  'job.device.state',
  /** A device step attempt ended: `{step, attempt, result: done|failed|cancelled|interrupted, error?: {code}, bmcMessages?}` (its start is the run's `job.device.state`) */
  'job.device.step',
] as const;

/**
 * Revoked-IDevID event types, appended by `RevokedIdevids` in the transaction that changes
 * `revoked_idevids`. `serial` is the device that last presented the IDevID (one event per such
 * device; null when none is known).
 */
export const IDEVID_EVENT_TYPES = [
  /** An IDevID was revoked, or revoked again: `{fingerprint, reason, revokedBy, created}` (`created` false when it already was: the reason replaced) */
  'idevid.revoked',
  /** A revocation was lifted: `{fingerprint}` */
  'idevid.unrevoked',
] as const;

/** Every event type the service writes. */
export const EVENT_TYPES = [...DEVICE_EVENT_TYPES, ...JOB_EVENT_TYPES, ...IDEVID_EVENT_TYPES] as const;
/** An event type. */
export type EventType = (typeof EVENT_TYPES)[number];

/** A filter pattern: an exact type, `prefix.*`, or `*`. */
export const EVENT_PATTERN = '^(\\*|[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)*(\\.\\*)?)$';
const PATTERN_RE = new RegExp(EVENT_PATTERN);

/** Whether `type` matches one of `patterns` (exact, `prefix.*`, or `*`). */
export function typeMatches(type: string, patterns: readonly string[]): boolean {
  return patterns.some(
    (p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))),
  );
}

/** Whether `p` is a well-formed type pattern. */
export function isEventPattern(p: string): boolean {
  return p.length <= 100 && PATTERN_RE.test(p);
}

/** What a writer appends. `data` is small JSON (no secrets: webhooks and viewers see it). */
export interface EventInput {
  type: EventType;
  serial?: string | null | undefined;
  job?: string | null | undefined;
  data?: Record<string, unknown> | undefined;
}

/** The wire form of an event (SSE `data:` and webhook bodies). */
export interface EventView {
  /** int8 as a decimal string (also the SSE `id:`). */
  id: string;
  type: string;
  serial: string | null;
  job: string | null;
  data: Record<string, unknown>;
  createdAt: string;
}

/** The wire form of a stored event row. */
export function eventView(r: EventRow): EventView {
  return {
    id: String(r.id),
    type: r.type,
    serial: r.serial,
    job: r.job,
    data: r.data ?? {},
    createdAt: new Date(r.created_at).toISOString(),
  };
}

/** Filters for reading the log. */
export interface EventFilter {
  serial?: string | undefined;
  job?: string | undefined;
  /** Type patterns (any matches); absent or empty: all types. */
  types?: readonly string[] | undefined;
}

/** Whether an event passes a filter (the in-memory twin of the SQL in {@link EventLog.read}). */
export function eventMatches(e: EventView, f: EventFilter): boolean {
  if (f.serial !== undefined && e.serial !== f.serial) return false;
  if (f.job !== undefined && e.job !== f.job) return false;
  if (f.types?.length && !typeMatches(e.type, f.types)) return false;
  return true;
}

function typeCondition(eb: ExpressionBuilder<Database, 'events'>, patterns: readonly string[]) {
  return eb.or(
    patterns.map((p) =>
      p === '*'
        ? sql<boolean>`true`
        : p.endsWith('.*')
          ? eb('type', 'like', `${p.slice(0, -1)}%`)
          : eb('type', '=', p),
    ),
  );
}

/** A database or an open transaction on it. */
export type Queryable = Kysely<Database>;

/** Appends to and reads the `events` table. Stateless apart from the database. */
export class EventLog {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * Appends one event and queues its webhook deliveries. With `tx`, the rows
   * commit (and the notification fires) with the caller's transaction;
   * without, in a transaction of its own.
   */
  async append(event: EventInput, tx?: Queryable): Promise<EventView> {
    // One statement (atomic on its own, one round trip) through the database's one appender
    // (migration 0080 `dpu_ztp_append_event`, which the job triggers also use): the row, its
    // webhook deliveries and the wake-up notification. Webhook patterns match there, in SQL, so
    // a webhook added on another replica a moment ago is honoured without a cache to invalidate.
    const r = await sql<EventRow>`
      select * from dpu_ztp_append_event(${event.type}, ${event.serial ?? null}, ${event.job ?? null},
        ${JSON.stringify(event.data ?? {})}::jsonb)`.execute(tx ?? this.#db);
    const row = r.rows[0];
    if (!row) throw new Error('event insert returned no row');
    return eventView(row);
  }

  /** Events with `after < id <= upto` matching `filter`, oldest first. */
  async read(
    opts: EventFilter & { after: bigint; upto?: bigint | undefined; limit: number },
  ): Promise<EventView[]> {
    let q = this.#db
      .selectFrom('events')
      .selectAll()
      .where(sql<boolean>`id > ${opts.after.toString()}::int8`)
      .orderBy('id')
      .limit(opts.limit);
    if (opts.upto !== undefined) q = q.where(sql<boolean>`id <= ${opts.upto.toString()}::int8`);
    if (opts.serial !== undefined) q = q.where('serial', '=', opts.serial);
    if (opts.job !== undefined) q = q.where('job', '=', opts.job);
    const types = opts.types;
    if (types?.length) q = q.where((eb) => typeCondition(eb, types));
    return (await q.execute()).map(eventView);
  }

  /** The largest event id (0 on an empty log). */
  async lastId(): Promise<bigint> {
    const r = await sql<{ m: string | null }>`select max(id)::text as m from events`.execute(this.#db);
    return BigInt(r.rows[0]?.m ?? 0);
  }
}

/** Job events as the provisioning jobs write them (`serial` for the device ones). */
export type JobEventInput =
  | { type: 'job.created'; job: string; data: { kind: string; devices: number; [k: string]: unknown } }
  | { type: 'job.state'; job: string; data: { from?: string; to: string; [k: string]: unknown } }
  | {
      type: 'job.device.state';
      job: string;
      serial: string;
      data: { from?: string; to: string; error?: { code: string; message: string }; [k: string]: unknown };
    }
  | {
      type: 'job.device.step';
      job: string;
      serial: string;
      data: {
        step: string;
        attempt: number;
        result: 'done' | 'failed' | 'cancelled' | 'interrupted';
        error?: { code: string };
        bmcMessages?: unknown[];
        [k: string]: unknown;
      };
    };

/**
 * Appends a job event, in `tx` when given (so the job row and its event commit together):
 * `JobStore.create` for `job.created`; the other job events come from the database's triggers
 * (migration 0080), in this same shape.
 */
export function appendJobEvent(log: EventLog, event: JobEventInput, tx?: Queryable): Promise<EventView> {
  return log.append(event, tx);
}

/**
 * Registers a wake-up callback for "events were appended somewhere"; returns
 * a function that unregisters it.
 */
export type WakeSource = (onWake: () => void) => Promise<() => Promise<void>>;

/** A pool client as `pg` gives it (structural: `bootstrap/` does not need pg's types). */
interface PgClientLike {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  release(err?: Error | boolean): void;
}

/**
 * The wake source for a database handle: `LISTEN` on a pooled PostgreSQL
 * connection held for the purpose (reconnecting with backoff; a reconnect
 * wakes once, to catch what was missed), or PGlite's in-process `listen`.
 */
export function databaseWakeSource(handle: {
  pglite?:
    | { listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>> }
    | undefined;
  pool?: { connect(): Promise<PgClientLike> } | undefined;
}): WakeSource | undefined {
  const { pglite, pool } = handle;
  if (pglite) return async (onWake) => pglite.listen(EVENT_CHANNEL, () => onWake());
  if (!pool) return undefined;
  return async (onWake) => {
    let stopped = false;
    let client: PgClientLike | undefined;
    let retry: NodeJS.Timeout | undefined;
    let backoff = 250;
    const connect = async (): Promise<void> => {
      try {
        const c = await pool.connect();
        let dead = false;
        c.on('error', (err) => {
          if (dead) return;
          dead = true;
          client = undefined;
          c.release(err);
          if (!stopped) retry = setTimeout(() => void connect(), backoff);
        });
        c.on('notification', () => onWake());
        await c.query(`LISTEN ${EVENT_CHANNEL}`);
        client = c;
        backoff = 250;
        onWake();
      } catch {
        backoff = Math.min(backoff * 2, 10_000);
        if (!stopped) retry = setTimeout(() => void connect(), backoff);
      }
    };
    await connect();
    return async () => {
      stopped = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      if (c) {
        await c.query(`UNLISTEN ${EVENT_CHANNEL}`).catch(() => {});
        c.release();
      }
    };
  };
}

/** Tuning of the per-process tail. */
export interface EventHubOptions {
  /** Wake-ups on appends (see {@link databaseWakeSource}); without one the hub only polls. */
  wake?: WakeSource | undefined;
  /** Fallback poll period (default 5 s): covers a lost notification connection. */
  pollMs?: number;
  /** How long a missing id holds back later ones (default 2 s): a slow commit vs a rollback. */
  gapWaitMs?: number;
  /** Rows per read (default 500). */
  batch?: number;
  /** Told of a failed read (the hub retries on the next wake or poll). */
  onError?: (err: unknown) => void;
}

/** A subscriber: gets each batch of new events, ids strictly increasing across batches. */
export type EventSubscriber = (events: readonly EventView[]) => void;

/** One tail of the event log per process, fanned out to subscribers (SSE streams, the webhook sender). */
export class EventHub {
  readonly #log: EventLog;
  readonly #opts: Required<Omit<EventHubOptions, 'wake' | 'onError'>> & EventHubOptions;
  readonly #subs = new Set<EventSubscriber>();
  #hwm = 0n;
  #pumping: Promise<void> | undefined;
  #again = false;
  #gap: { at: bigint; since: number } | undefined;
  #poll: NodeJS.Timeout | undefined;
  #gapTimer: NodeJS.Timeout | undefined;
  #unlisten: (() => Promise<void>) | undefined;
  #started = false;
  #stopped = false;
  /** An append was signalled while there were no subscribers (so not read yet). */
  #stale = false;

  constructor(log: EventLog, opts: EventHubOptions = {}) {
    this.#log = log;
    this.#opts = { pollMs: 5000, gapWaitMs: 2000, batch: 500, ...opts };
  }

  /** Starts tailing from the current end of the log. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#hwm = await this.#log.lastId();
    this.#unlisten = await this.#opts.wake?.(() => this.wake());
    this.#poll = setInterval(() => this.wake(), this.#opts.pollMs);
    this.#poll.unref();
  }

  /** Stops tailing and drops every subscriber. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#poll);
    clearTimeout(this.#gapTimer);
    await this.#unlisten?.().catch(() => {});
    this.#subs.clear();
    await this.#pumping;
  }

  /** The id up to which every event has been handed to subscribers. */
  get highWater(): bigint {
    return this.#hwm;
  }

  /** How many subscribers are attached. */
  get subscribers(): number {
    return this.#subs.size;
  }

  /**
   * Attaches a subscriber; it gets every event with id > {@link highWater} as
   * read at the moment of this call. Returns the detach function.
   */
  subscribe(fn: EventSubscriber): () => void {
    this.#subs.add(fn);
    // Reads skipped while nobody listened are caught up now (from the high water, so nothing is lost).
    if (this.#stale) this.wake();
    return () => this.#subs.delete(fn);
  }

  /** Reads new events now (coalesced: one read in flight, one more queued at most). */
  wake(): void {
    if (this.#stopped || !this.#started) return;
    // Nobody listens: no read. The high water stays where it is, so the next
    // subscriber still gets every event after it (the first read catches up).
    if (this.#subs.size === 0) {
      this.#stale = true;
      return;
    }
    this.#stale = false;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = undefined;
    });
  }

  async #pump(): Promise<void> {
    do {
      this.#again = false;
      let rows: EventView[];
      try {
        rows = await this.#log.read({ after: this.#hwm, limit: this.#opts.batch });
      } catch (err) {
        this.#opts.onError?.(err);
        return;
      }
      const ready: EventView[] = [];
      for (const e of rows) {
        const id = BigInt(e.id);
        const expected = this.#hwm + 1n;
        if (id !== expected) {
          if (this.#gap?.at !== expected) this.#gap = { at: expected, since: Date.now() };
          const waited = Date.now() - this.#gap.since;
          if (waited < this.#opts.gapWaitMs) {
            clearTimeout(this.#gapTimer);
            this.#gapTimer = setTimeout(() => this.wake(), this.#opts.gapWaitMs - waited + 5);
            this.#gapTimer.unref();
            break;
          }
        }
        this.#gap = undefined;
        this.#hwm = id;
        ready.push(e);
      }
      if (ready.length) {
        for (const s of [...this.#subs]) {
          try {
            s(ready);
          } catch (err) {
            this.#opts.onError?.(err);
          }
        }
      }
      if (rows.length === this.#opts.batch && ready.length === rows.length) this.#again = true;
    } while (this.#again && !this.#stopped);
  }
}
