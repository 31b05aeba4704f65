/**
 * Write-behind for the per-request bootstrap log: records are buffered and
 * inserted in batches, so that a storm of get-bootstrapping-data requests does
 * not put one INSERT on each request's path. Progress reports are not written
 * here: they are stored before the device is answered. `close()` flushes.
 */
import type { Insertable, Kysely } from 'kysely';
import type { Database } from '../db/index.js';

type EventRow = Insertable<Database['bootstrap_events']>;

/** Options of {@link EventWriter}. */
export interface EventWriterOptions {
  /** Flush when this many records wait (default 200). */
  maxBatch?: number;
  /** Flush at least this often in ms (default 250). */
  intervalMs?: number;
  /** Told when a batch could not be written (the rows are dropped then; the log keeps the error). */
  onError?: (err: unknown, rows: number) => void;
}

/** Batches bootstrap-event inserts. */
export class EventWriter {
  readonly #db: Kysely<Database>;
  readonly #o: EventWriterOptions;
  #buf: Array<{ row: EventRow; repeats: number }> = [];
  /** Queued records by coalescing key (this batch only). */
  #byKey = new Map<string, { row: EventRow; repeats: number }>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(db: Kysely<Database>, options: EventWriterOptions = {}) {
    this.#db = db;
    this.#o = options;
  }

  /**
   * Queues one record. Records given the same `coalesceKey` within one batch are stored
   * once, with `repeats: n` in their detail: a retry storm from one device then costs one
   * row per batch, and its history still says how many requests there were.
   */
  add(row: EventRow, coalesceKey?: string): void {
    const same = coalesceKey !== undefined ? this.#byKey.get(coalesceKey) : undefined;
    if (same) {
      same.repeats++;
      return;
    }
    const entry = { row, repeats: 1 };
    this.#buf.push(entry);
    if (coalesceKey !== undefined) this.#byKey.set(coalesceKey, entry);
    if (this.#buf.length >= (this.#o.maxBatch ?? 200)) void this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => void this.flush(), this.#o.intervalMs ?? 250);
      this.#timer.unref();
    }
  }

  /** Writes everything queued so far. */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const rows = this.#buf.map(({ row, repeats }) =>
      repeats > 1
        ? { ...row, detail: JSON.stringify({ ...JSON.parse(String(row.detail ?? '{}')), repeats }) }
        : row,
    );
    this.#buf = [];
    this.#byKey.clear();
    if (rows.length === 0) return this.#flushing;
    this.#flushing = this.#flushing.then(async () => {
      try {
        await this.#db.insertInto('bootstrap_events').values(rows).execute();
      } catch (err) {
        this.#o.onError?.(err, rows.length);
      }
    });
    return this.#flushing;
  }
}
