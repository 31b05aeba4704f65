/**
 * Write-behind for append-only records (request records, image fetches):
 * items are queued and handed to `write` in batches, off the request path, so
 * a storm of requests costs one INSERT per batch rather than one per request.
 * Memory is bounded (`maxPending`; the oldest are dropped and counted). A batch
 * the database refuses for its data (SQLSTATE class 22 or 23: one device's
 * `hw-model` with U+0000, say) is bisected until the bad items are alone, so only
 * they are dropped — never the other devices' records written in the same
 * second; a batch that fails otherwise (database down) is dropped whole. Drops
 * are counted and reported, never thrown into a request, and `flush()` writes
 * everything queued (on close, or before reading it back).
 */

import { recordWriteBehindDrops, registerWriteBehindQueue } from '../otel/index.js';

/** A queued item, and how many identical items it stands for (see `add`'s key). */
export interface Queued<T> {
  item: T;
  repeats: number;
  key?: string | undefined;
}

/** Options of {@link WriteBehind}. */
export interface WriteBehindOptions<T = unknown> {
  /**
   * The queue's name in metrics (`queue` label of `dpu_ztp.write_behind.depth` and `.dropped`);
   * unnamed queues are not measured.
   */
  name?: string;
  /** Flush at most this long after an item arrives, ms (default 250). */
  flushMs?: number;
  /** Items per `write` call (default 500). */
  batchSize?: number;
  /**
   * Distinct items queued that start a flush before `flushMs` (default 5 000). Kept well
   * above `batchSize` so that a retry storm coalesces over the whole `flushMs` window.
   */
  flushAt?: number;
  /** Items held while the database is slow or down before the oldest are dropped (default 50 000). */
  maxPending?: number;
  /** Told when items are dropped: a failed batch (with its error) or an overflow (no error). */
  onDrop?: (count: number, err?: unknown) => void;
  /**
   * Folds an item into the queued one with the same key (default: the later item is
   * only counted in `repeats`). Returns the merged item.
   */
  merge?: (queued: T, item: T) => T;
  /** Items folded into one queued item at most; the next with that key starts a new one (default unbounded). */
  maxRepeats?: number;
}

/** The items queued entries stand for (each with its repeats). */
function count<T>(entries: Queued<T>[]): number {
  let n = 0;
  for (const e of entries) n += e.repeats;
  return n;
}

/** Batches items into `write`. */
export class WriteBehind<T> {
  readonly #write: (batch: Queued<T>[]) => Promise<void>;
  readonly #merge: ((queued: T, item: T) => T) | undefined;
  readonly #maxRepeats: number;
  readonly #o: Required<Omit<WriteBehindOptions<T>, 'onDrop' | 'merge' | 'maxRepeats' | 'name'>> &
    Pick<WriteBehindOptions<T>, 'onDrop'>;
  readonly #name: string | undefined;
  #pending: Queued<T>[] = [];
  /** Queued items by key, for the batch not yet handed to `write`. */
  #byKey = new Map<string, Queued<T>>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  /** Items dropped (each repeat counted) because the database could not keep up or failed. */
  dropped = 0;
  /** Items dropped because the database refused their data (each repeat counted); included in `dropped`. */
  rejected = 0;

  constructor(write: (batch: Queued<T>[]) => Promise<void>, options: WriteBehindOptions<T> = {}) {
    this.#write = write;
    this.#merge = options.merge;
    this.#maxRepeats = options.maxRepeats ?? Number.POSITIVE_INFINITY;
    this.#o = {
      flushMs: options.flushMs ?? 250,
      batchSize: options.batchSize ?? 500,
      flushAt: options.flushAt ?? 5_000,
      maxPending: options.maxPending ?? 50_000,
      onDrop: options.onDrop,
    };
    this.#name = options.name;
    if (this.#name !== undefined) registerWriteBehindQueue(this.#name, this);
  }

  /** Rows waiting to be handed to `write` (the depth gauge reads this). */
  get depth(): number {
    return this.#pending.length;
  }

  /**
   * Queues one item (never throws, never waits). Items added with the same `key`
   * before the next flush are kept once, with `repeats` counting them.
   */
  add(item: T, key?: string): void {
    const same = key !== undefined ? this.#byKey.get(key) : undefined;
    if (same) {
      same.repeats++;
      if (this.#merge) same.item = this.#merge(same.item, item);
      if (same.repeats >= this.#maxRepeats) this.#byKey.delete(key as string);
      return;
    }
    const q: Queued<T> = { item, repeats: 1, key };
    this.#pending.push(q);
    if (key !== undefined) this.#byKey.set(key, q);
    if (this.#pending.length > this.#o.maxPending) {
      const gone = this.#pending.splice(0, this.#pending.length - this.#o.maxPending);
      for (const g of gone) if (g.key !== undefined) this.#byKey.delete(g.key);
      const n = count(gone);
      this.dropped += n;
      if (this.#name !== undefined) recordWriteBehindDrops(this.#name, n);
      this.#o.onDrop?.(n);
    }
    if (this.#pending.length >= this.#o.flushAt) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), this.#o.flushMs).unref();
  }

  /** Writes everything queued so far; resolves once it is stored (or dropped). */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = [];
    this.#byKey.clear();
    if (batch.length === 0) return this.#writing;
    this.#writing = this.#writing.then(async () => {
      for (let i = 0; i < batch.length; i += this.#o.batchSize) {
        await this.#writeIsolating(batch.slice(i, i + this.#o.batchSize));
      }
    });
    return this.#writing;
  }

  /** Writes a batch; when the database refuses its data, writes each half again until the bad items are alone. */
  async #writeIsolating(part: Queued<T>[]): Promise<void> {
    try {
      await this.#write(part);
    } catch (err) {
      if (isDataError(err) && part.length > 1) {
        const mid = part.length >> 1;
        await this.#writeIsolating(part.slice(0, mid));
        await this.#writeIsolating(part.slice(mid));
        return;
      }
      const n = count(part);
      this.dropped += n;
      if (isDataError(err)) this.rejected += n;
      if (this.#name !== undefined) recordWriteBehindDrops(this.#name, n);
      this.#o.onDrop?.(n, err);
    }
  }
}

/**
 * Whether the database refused a statement for the data in it (SQLSTATE class 22, data
 * exception — e.g. 22P05 U+0000 in jsonb, 22021 bytes not valid UTF-8 — or class 23,
 * integrity constraint) rather than for being unreachable or overloaded.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}
