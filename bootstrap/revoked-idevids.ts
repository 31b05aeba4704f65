/**
 * Revoked device identities (IDevIDs), shared by every replica: rows in
 * `revoked_idevids`, and in each process one in-memory set the device
 * authenticator asks on every request. The set is loaded at start, reloaded at
 * once on a NOTIFY on {@link REVOKED_IDEVIDS_CHANNEL} (sent by whichever
 * replica made the change; in process on PGlite), and every `recheckMs` in case
 * a notification was lost. A change made here is in this process's set before
 * the call returns, so the operator's next request already sees it.
 *
 * Every change appends its event (`idevid.revoked`, `idevid.unrevoked`) in the
 * transaction that changes the row, so no change is stored without its event;
 * the event names the device that last presented the IDevID, when one did.
 */
import { type Kysely, sql } from 'kysely';
import type { Database, Notifier, RevokedIdevidRow } from '../db/index.js';
import { audit } from './audit.js';
import { EventLog } from './events.js';

/** The NOTIFY channel a revocation change is announced on (payload empty: reload). */
export const REVOKED_IDEVIDS_CHANNEL = 'dpu_ztp_revoked_idevids';

/** A SHA-256 certificate fingerprint as the device authenticator computes it: 32 bytes, colon hex, lowercase. */
export const FINGERPRINT_PATTERN = '^[0-9a-f]{2}(:[0-9a-f]{2}){31}$';
const FINGERPRINT = new RegExp(FINGERPRINT_PATTERN);

/** Whether `s` is a fingerprint in the one accepted shape (see {@link FINGERPRINT_PATTERN}). */
export function isFingerprint(s: string): boolean {
  return FINGERPRINT.test(s);
}

/** One revoked IDevID. */
export interface RevokedIdevid {
  fingerprint: string;
  reason: string | null;
  revokedAt: Date;
  revokedBy: string;
}

function view(r: RevokedIdevidRow): RevokedIdevid {
  return { fingerprint: r.fingerprint, reason: r.reason, revokedAt: r.revoked_at, revokedBy: r.revoked_by };
}

/**
 * The revocation of the IDevID device `serial` last presented (`devices.idevid_fingerprint`, recorded
 * by the bootstrap server), if that fingerprint is revoked. Undefined too for an unknown device or one
 * whose IDevID was never seen.
 */
export async function deviceRevocation(
  db: Kysely<Database>,
  serial: string,
): Promise<RevokedIdevid | undefined> {
  const r = await db
    .selectFrom('devices as d')
    .innerJoin('revoked_idevids as r', 'r.fingerprint', 'd.idevid_fingerprint')
    .selectAll('r')
    .where('d.serial', '=', serial)
    .executeTakeFirst();
  return r && view(r);
}

/**
 * Appends one event per fingerprint in `tx`: with the serial of each device known by that IDevID
 * (one event each; normally there is one), else one without a serial.
 */
async function appendIdevidEvents(
  tx: Kysely<Database>,
  type: 'idevid.revoked' | 'idevid.unrevoked',
  items: ReadonlyArray<{ fingerprint: string; data: Record<string, unknown> }>,
): Promise<void> {
  if (items.length === 0) return;
  const devices = await tx
    .selectFrom('devices')
    .select(['serial', 'idevid_fingerprint'])
    .where(
      'idevid_fingerprint',
      'in',
      items.map((i) => i.fingerprint),
    )
    .orderBy('serial')
    .execute();
  const log = new EventLog(tx);
  for (const { fingerprint, data } of items) {
    const serials = devices.filter((d) => d.idevid_fingerprint === fingerprint).map((d) => d.serial);
    for (const serial of serials.length ? serials : [null]) await log.append({ type, serial, data }, tx);
  }
}

/** Options of {@link RevokedIdevids}. */
export interface RevokedIdevidsOptions {
  db: Kysely<Database>;
  /** Announces changes to (and hears them from) the other replicas; absent: re-checks only. */
  notifier?: Notifier | undefined;
  /** Period of the re-check behind the notifications (default 10 s). */
  recheckMs?: number | undefined;
  /** Told of a failed reload or notification (the set is kept; the next wake retries). */
  onError?: ((err: unknown) => void) | undefined;
}

/** The revoked-IDevID rows and this process's copy of them (what `has` answers from). */
export class RevokedIdevids {
  readonly #o: RevokedIdevidsOptions;
  #set: ReadonlySet<string> = new Set();
  #loading: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #stop: (() => void) | undefined;

  constructor(options: RevokedIdevidsOptions) {
    this.#o = options;
  }

  /** Whether `fingerprint` is revoked, as this process last loaded it (no I/O: asked per device request). */
  has(fingerprint: string): boolean {
    return this.#set.has(fingerprint);
  }

  /** How many fingerprints this process holds as revoked. */
  get size(): number {
    return this.#set.size;
  }

  /**
   * Reloads the set from the table. A call made while a reload is under way (one that may
   * have read before the caller's change committed) waits for one more, started after it.
   */
  refresh(): Promise<void> {
    if (!this.#loading) {
      this.#loading = this.#load().finally(() => {
        this.#loading = undefined;
      });
      return this.#loading;
    }
    this.#queued ??= this.#loading
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.refresh();
      });
    return this.#queued;
  }

  async #load(): Promise<void> {
    const rows = await this.#o.db.selectFrom('revoked_idevids').select('fingerprint').execute();
    this.#set = new Set(rows.map((r) => r.fingerprint));
  }

  /** Loads the set, then follows changes: NOTIFY from any replica, and a periodic re-check. */
  async start(): Promise<void> {
    await this.refresh();
    const wake = () => {
      this.refresh().catch((err: unknown) => this.#o.onError?.(err));
    };
    const unlisten = this.#o.notifier
      ? await this.#o.notifier.listen(REVOKED_IDEVIDS_CHANNEL, wake)
      : () => {};
    const timer = setInterval(wake, this.#o.recheckMs ?? 10_000);
    timer.unref();
    this.#stop = () => {
      unlisten();
      clearInterval(timer);
    };
  }

  /** Stops following changes (the set stays as last loaded). */
  stop(): void {
    this.#stop?.();
    this.#stop = undefined;
  }

  /** After a change: this process's set reloaded before returning, the other replicas told. */
  async #changed(apply: (s: Set<string>) => void): Promise<void> {
    // At once here, whatever a reload in flight read before the change committed …
    const next = new Set(this.#set);
    apply(next);
    this.#set = next;
    // … and then one read that started after it (other changes made meanwhile included).
    await this.refresh().catch((err: unknown) => this.#o.onError?.(err));
    await this.#o.notifier
      ?.notify(REVOKED_IDEVIDS_CHANNEL, '')
      .catch((err: unknown) => this.#o.onError?.(err));
  }

  /**
   * Revokes `fingerprint` (which must be in the accepted shape). Revoking one already revoked
   * keeps its original time and author and replaces the reason. `created` tells which.
   */
  async revoke(
    fingerprint: string,
    by: string,
    reason?: string | null,
  ): Promise<{ entry: RevokedIdevid; created: boolean }> {
    if (!isFingerprint(fingerprint)) throw new Error(`not a SHA-256 fingerprint: ${fingerprint}`);
    const row = await this.#o.db.transaction().execute(async (tx) => {
      // xmax = 0 only on a row this statement inserted (PostgreSQL's upsert idiom).
      const r = await tx
        .insertInto('revoked_idevids')
        .values({ fingerprint, reason: reason ?? null, revoked_by: by })
        .onConflict((oc) => oc.column('fingerprint').doUpdateSet({ reason: reason ?? null }))
        .returningAll()
        .returning(sql<boolean>`xmax = 0`.as('inserted'))
        .executeTakeFirstOrThrow();
      await appendIdevidEvents(tx, 'idevid.revoked', [
        {
          fingerprint,
          data: { fingerprint, reason: r.reason, revokedBy: r.revoked_by, created: r.inserted },
        },
      ]);
      return r;
    });
    await this.#changed((s) => s.add(fingerprint));
    return { entry: view(row), created: row.inserted };
  }

  /** Lifts the revocation of `fingerprint`; false when it was not revoked. */
  async unrevoke(fingerprint: string): Promise<boolean> {
    const deleted = await this.#o.db.transaction().execute(async (tx) => {
      const r = await tx
        .deleteFrom('revoked_idevids')
        .where('fingerprint', '=', fingerprint)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await appendIdevidEvents(tx, 'idevid.unrevoked', [{ fingerprint, data: { fingerprint } }]);
      return true;
    });
    if (!deleted) return false;
    await this.#changed((s) => s.delete(fingerprint));
    return true;
  }

  /** One revocation, if `fingerprint` is revoked. */
  async get(fingerprint: string): Promise<RevokedIdevid | undefined> {
    const r = await this.#o.db
      .selectFrom('revoked_idevids')
      .selectAll()
      .where('fingerprint', '=', fingerprint)
      .executeTakeFirst();
    return r && view(r);
  }

  /** A page of revocations by fingerprint, after `after`; `more` when another page follows. */
  async list(opts: { after?: string | undefined; limit: number }): Promise<{
    items: RevokedIdevid[];
    more: boolean;
  }> {
    let q = this.#o.db
      .selectFrom('revoked_idevids')
      .selectAll()
      .orderBy('fingerprint')
      .limit(opts.limit + 1);
    if (opts.after !== undefined) q = q.where('fingerprint', '>', opts.after);
    const rows = await q.execute();
    return { items: rows.slice(0, opts.limit).map(view), more: rows.length > opts.limit };
  }

  /**
   * Imports fingerprints listed elsewhere (`revoked-idevids.txt`): each one not yet in the
   * table is inserted with `by` as its author and written to the audit log under that actor;
   * one already there is left alone, so importing the same list again changes nothing (and appends
   * no event).
   * Returns the fingerprints inserted.
   */
  async importList(fingerprints: Iterable<string>, by: string, reason: string): Promise<string[]> {
    const fps = [...new Set(fingerprints)];
    for (const fp of fps) if (!isFingerprint(fp)) throw new Error(`not a SHA-256 fingerprint: ${fp}`);
    if (fps.length === 0) return [];
    const inserted = await this.#o.db.transaction().execute(async (tx) => {
      const rows = await tx
        .insertInto('revoked_idevids')
        .values(fps.map((fingerprint) => ({ fingerprint, reason, revoked_by: by })))
        .onConflict((oc) => oc.column('fingerprint').doNothing())
        .returning('fingerprint')
        .execute();
      for (const r of rows) await audit(tx, by, 'idevid.revoke', r.fingerprint, { reason });
      await appendIdevidEvents(
        tx,
        'idevid.revoked',
        rows.map((r) => ({
          fingerprint: r.fingerprint,
          data: { fingerprint: r.fingerprint, reason, revokedBy: by, created: true },
        })),
      );
      return rows.map((r) => r.fingerprint);
    });
    if (inserted.length)
      await this.#changed((s) => {
        for (const fp of inserted) s.add(fp);
      });
    return inserted;
  }
}
