/**
 * Which provisioning trace a device's traffic belongs to, answered without
 * waiting (issue 14). The device listener asks on every get-bootstrapping-data
 * and report-progress ("the active job of this serial?") and the image service
 * on every BMC read ("the run of this image token?"); both are hot paths whose
 * hooks are synchronous, so this is an in-memory index:
 *
 * - the runner puts a run in when it starts driving it (and its image token
 *   once it has one) and takes it out when the run finishes;
 * - other replicas learn the same over the notifier (PostgreSQL
 *   `LISTEN/NOTIFY`, channel `dpu_ztp_traces`; in process on PGlite);
 * - at start it loads every running run's trace, and an entry older than
 *   `ttlMs` (or a miss) is answered from what is held while one background
 *   query per key refreshes it — so a lost notification or a replica that died
 *   costs at most one stale answer, never a wait. Misses are remembered too,
 *   so devices without a job cost one query per `ttlMs`, not one per request.
 *
 * Bounded: at most `maxEntries` keys per map (oldest dropped first).
 */
import type { Notifier } from '../db/index.js';
import type { JobStore } from './job-store.js';

/** Notifier channel of trace starts and ends. */
export const TRACES_CHANNEL = 'dpu_ztp_traces';

interface Entry {
  traceparent: string | undefined;
  at: number;
  /** Which write this is: a query answer applies only over the write it started from. */
  seq: number;
}

/** Options of {@link JobTraceIndex}. */
export interface JobTraceIndexOptions {
  store: Pick<JobStore, 'activeTraceparent' | 'activeTraces' | 'traceparentOfImageToken'>;
  notifier?: Notifier;
  /** How long an answer is used before a background query checks it (default 10 s). */
  ttlMs?: number;
  /** Keys held per map (default 20 000). */
  maxEntries?: number;
  /** This replica's name: its own notifications are not applied twice. */
  owner?: string;
  now?: () => number;
  onError?: (err: unknown) => void;
}

/** Serial → traceparent and image token → traceparent of running device runs. */
export class JobTraceIndex {
  readonly #o: JobTraceIndexOptions;
  readonly #ttl: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #serials = new Map<string, Entry>();
  readonly #tokens = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<string | undefined>>();
  #seq = 0;
  #unlisten: (() => void) | undefined;

  constructor(options: JobTraceIndexOptions) {
    this.#o = options;
    this.#ttl = options.ttlMs ?? 10_000;
    this.#max = options.maxEntries ?? 20_000;
    this.#now = options.now ?? Date.now;
  }

  /** Listens for other replicas' runs and loads the running ones. */
  async start(): Promise<void> {
    if (this.#o.notifier)
      this.#unlisten = await this.#o.notifier.listen(TRACES_CHANNEL, (payload) => this.#onNotify(payload));
    try {
      for (const r of await this.#o.store.activeTraces(this.#max)) {
        this.#put(this.#serials, r.serial, r.traceparent);
        if (r.image_token) this.#put(this.#tokens, r.image_token, r.traceparent);
      }
    } catch (err) {
      this.#o.onError?.(err);
    }
  }

  stop(): void {
    this.#unlisten?.();
    this.#unlisten = undefined;
  }

  /** The traceparent of `serial`'s running run, as known now (a stale or missing entry is refreshed in the background). */
  forSerial(serial: string): string | undefined {
    return this.#get(this.#serials, `s:${serial}`, serial, () => this.#o.store.activeTraceparent(serial));
  }

  /** The traceparent of the running run whose installer URL carries `token`, as known now. */
  forImageToken(token: string): string | undefined {
    return this.#get(this.#tokens, `t:${token}`, token, () => this.#o.store.traceparentOfImageToken(token));
  }

  /**
   * As {@link forImageToken}, but on a miss waits for the database (at most `waitMs`): the first read
   * of a BMC that reached another replica's image listener before the notification did.
   */
  async forImageTokenWaiting(token: string, waitMs = 500): Promise<string | undefined> {
    const known = this.forImageToken(token);
    if (known !== undefined) return known;
    const pending = this.#inflight.get(`t:${token}`);
    if (!pending) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const out = await Promise.race([
      pending,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), waitMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    return out;
  }

  /** A run of this replica started (or resumed) driving: its trace is the device's now, here and elsewhere. */
  started(serial: string, traceparent: string, imageToken?: string | null): void {
    this.#put(this.#serials, serial, traceparent);
    if (imageToken) this.#put(this.#tokens, imageToken, traceparent);
    this.#notify({ s: serial, tp: traceparent, ...(imageToken ? { t: imageToken } : {}) });
  }

  /** The run finished (succeeded, failed, cancelled): the device has no active trace any more. */
  finished(serial: string, imageToken?: string | null): void {
    this.#put(this.#serials, serial, undefined);
    if (imageToken) this.#put(this.#tokens, imageToken, undefined);
    this.#notify({ s: serial, ...(imageToken ? { t: imageToken } : {}) });
  }

  #get(
    map: Map<string, Entry>,
    flightKey: string,
    key: string,
    query: () => Promise<string | undefined>,
  ): string | undefined {
    const e = map.get(key);
    if (!e || this.#now() - e.at > this.#ttl) this.#refresh(map, flightKey, key, query);
    return e?.traceparent;
  }

  #refresh(
    map: Map<string, Entry>,
    flightKey: string,
    key: string,
    query: () => Promise<string | undefined>,
  ): void {
    if (this.#inflight.has(flightKey)) return;
    // Remember the miss at once: one query per key per ttl, however many requests arrive.
    const held = map.get(key);
    const seq = this.#put(map, key, held?.traceparent);
    const p = query().then(
      (tp) => {
        // A start or finish heard meanwhile (notification, this runner) is newer than this answer.
        if (map.get(key)?.seq !== seq) return map.get(key)?.traceparent;
        this.#put(map, key, tp);
        return tp;
      },
      (err: unknown) => {
        this.#o.onError?.(err);
        return held?.traceparent;
      },
    );
    this.#inflight.set(flightKey, p);
    void p.finally(() => this.#inflight.delete(flightKey));
  }

  #put(map: Map<string, Entry>, key: string, traceparent: string | undefined): number {
    const seq = ++this.#seq;
    map.delete(key);
    map.set(key, { traceparent, at: this.#now(), seq });
    if (map.size > this.#max) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    return seq;
  }

  #notify(m: { s: string; tp?: string; t?: string }): void {
    void this.#o.notifier
      ?.notify(TRACES_CHANNEL, JSON.stringify({ ...m, o: this.#o.owner }))
      .catch((err: unknown) => this.#o.onError?.(err));
  }

  #onNotify(payload: string): void {
    if (!payload) {
      // Reconnected: notifications may have been lost; every entry is checked on its next use.
      for (const map of [this.#serials, this.#tokens]) for (const e of map.values()) e.at = 0;
      return;
    }
    try {
      const m = JSON.parse(payload) as { s?: unknown; tp?: unknown; t?: unknown; o?: unknown };
      if (m.o !== undefined && m.o === this.#o.owner) return;
      const tp = typeof m.tp === 'string' ? m.tp : undefined;
      if (typeof m.s === 'string') this.#put(this.#serials, m.s, tp);
      if (typeof m.t === 'string') this.#put(this.#tokens, m.t, tp);
    } catch {
      // not ours
    }
  }
}
