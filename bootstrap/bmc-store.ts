/**
 * The BMC inventory's storage: rows in `bmcs`, the password sealed with the
 * secret key (the BMC id as associated data) and opened only where a Redfish
 * client is built. Routes, checks and imports build on this.
 */
import { type Kysely, sql } from 'kysely';
import type { BmcAuth, Database } from '../db/index.js';
import { type SecretBox, SecretKeyError } from './secrets.js';

/**
 * The outcome of the last `check` of a BMC: `ok` when the BMC answered and a provisioning
 * strategy will work; otherwise `error` says why (the report is there when the BMC answered).
 */
export interface BmcCheckResult {
  at: string;
  ok: boolean;
  /** The `bmc check` report (redfish `BmcCheckReport`), when the BMC answered. */
  report?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/** A BMC as the API shows it: never the password. */
export interface BmcView {
  id: string;
  address: string;
  username: string;
  passwordSet: true;
  caCertificate?: string;
  insecure: boolean;
  auth: BmcAuth;
  profile?: string;
  system?: string;
  labels: Record<string, string>;
  lastCheck?: BmcCheckResult;
  createdAt: string;
  updatedAt: string;
}

/** What a Redfish client needs to reach a BMC, password opened. */
export interface BmcTarget {
  id: string;
  address: string;
  username: string;
  password: string;
  caCertificate?: string;
  insecure: boolean;
  auth: BmcAuth;
  profile?: string;
  system?: string;
}

/** A BMC record to create or replace. */
export interface BmcInput {
  address: string;
  username: string;
  /** Required to create; on replace, undefined keeps the stored password. */
  password?: string | undefined;
  caCertificate?: string | undefined;
  insecure?: boolean | undefined;
  auth?: BmcAuth | undefined;
  profile?: string | undefined;
  system?: string | undefined;
  labels?: Record<string, string> | undefined;
}

/** Reads and writes BMC rows; the only code that seals or opens BMC passwords. */
export class BmcStore {
  readonly #db: Kysely<Database>;
  readonly #box: SecretBox;
  readonly #now: () => Date;

  constructor(db: Kysely<Database>, box: SecretBox, now: () => Date = () => new Date()) {
    this.#db = db;
    this.#box = box;
    this.#now = now;
  }

  /**
   * Creates or replaces a BMC; returns whether it was created. Without a password the stored
   * one is kept (an error when there is none). Pass a transaction as `db` to join it.
   */
  /**
   * Creates or replaces BMC `id`. `createOnly`: never replaces; `existed` when the row was there
   * (another request created it after the caller looked), and nothing is written.
   */
  async put(
    id: string,
    input: BmcInput,
    db: Kysely<Database> = this.#db,
    createOnly = false,
  ): Promise<{ created: boolean; existed?: true }> {
    const now = this.#now();
    const values = {
      address: input.address,
      username: input.username,
      ca_certificate: input.caCertificate ?? null,
      insecure: input.insecure ?? false,
      auth: input.auth ?? 'auto',
      vendor_profile: input.profile ?? null,
      system_id: input.system ?? null,
      labels: JSON.stringify(input.labels ?? {}),
      updated_at: now,
    };
    if (input.password === undefined) {
      const r = await db
        .updateTable('bmcs')
        .set({ ...values, last_check: null, last_check_at: null })
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw new Error(`BMC ${id} does not exist: a password is required`);
      return { created: false };
    }
    const password_sealed = this.#box.seal(input.password, `bmc:${id}`);
    // xmax = 0 only on a freshly inserted row: created vs replaced in one statement, no race.
    const row = await db
      .insertInto('bmcs')
      .values({ id, ...values, password_sealed, created_at: now })
      .onConflict((oc) =>
        createOnly
          ? oc.column('id').doNothing()
          : oc
              .column('id')
              .doUpdateSet({ ...values, password_sealed, last_check: null, last_check_at: null }),
      )
      .returning(sql<boolean>`(xmax = 0)`.as('inserted'))
      .executeTakeFirst();
    if (!row) return { created: false, existed: true };
    return { created: row.inserted };
  }

  /**
   * Throws SECRET_ERR_OPEN_FAILED when the key does not open the stored passwords (a changed
   * key, or another replica's): better at start-up than one BMC at a time later.
   */
  async verifyKey(): Promise<void> {
    const row = await this.#db
      .selectFrom('bmcs')
      .select(['id', 'password_sealed'])
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    if (!row) return;
    try {
      this.#box.open(row.password_sealed, `bmc:${row.id}`);
    } catch {
      throw new SecretKeyError(
        'SECRET_ERR_OPEN_FAILED',
        `the secret key does not open the stored BMC passwords (BMC ${row.id}): start with the key they were sealed with`,
      );
    }
  }

  /** BMCs by id after `after`, whose labels contain every pair of `labels`. */
  async list(opts: { labels?: Record<string, string>; after?: string; limit: number }): Promise<BmcView[]> {
    let q = this.#db.selectFrom('bmcs').selectAll().orderBy('id').limit(opts.limit);
    if (opts.labels && Object.keys(opts.labels).length)
      q = q.where(sql<boolean>`labels @> ${JSON.stringify(opts.labels)}::jsonb`);
    if (opts.after !== undefined) q = q.where('id', '>', opts.after);
    return (await q.execute()).map(bmcView);
  }

  /** Serials of (at most `limit`) devices that name this BMC. */
  async usedBy(id: string, limit = 5, db: Kysely<Database> = this.#db): Promise<string[]> {
    const rows = await db
      .selectFrom('devices')
      .select('serial')
      .where('bmc', '=', id)
      .orderBy('serial')
      .limit(limit)
      .execute();
    return rows.map((r) => r.serial);
  }

  /** The BMC as the API shows it, or undefined. */
  async view(id: string, db: Kysely<Database> = this.#db, forUpdate = false): Promise<BmcView | undefined> {
    let q = db.selectFrom('bmcs').selectAll().where('id', '=', id);
    if (forUpdate) q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? bmcView(row) : undefined;
  }

  /** The BMCs among `ids` that exist, as the API shows them (one query per 1,000 ids). */
  async views(ids: readonly string[]): Promise<Map<string, BmcView>> {
    const out = new Map<string, BmcView>();
    for (let i = 0; i < ids.length; i += 1000) {
      const rows = await this.#db
        .selectFrom('bmcs')
        .selectAll()
        .where('id', 'in', ids.slice(i, i + 1000))
        .execute();
      for (const r of rows) out.set(r.id, bmcView(r));
    }
    return out;
  }

  /** What a Redfish client needs to reach the BMC (password opened), or undefined. */
  async target(id: string): Promise<BmcTarget | undefined> {
    const row = await this.#db.selectFrom('bmcs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return {
      id: row.id,
      address: row.address,
      username: row.username,
      password: this.#box.openString(row.password_sealed, `bmc:${row.id}`),
      ...(row.ca_certificate ? { caCertificate: row.ca_certificate } : {}),
      insecure: row.insecure,
      auth: row.auth,
      ...(row.vendor_profile ? { profile: row.vendor_profile } : {}),
      ...(row.system_id ? { system: row.system_id } : {}),
    };
  }

  /** Stores the outcome of a `check` run; returns it as GET shows it (undefined: the BMC is gone). */
  async saveCheck(
    id: string,
    result: { ok: boolean; report?: Record<string, unknown>; error?: { code: string; message: string } },
  ): Promise<BmcCheckResult | undefined> {
    const at = this.#now();
    const r = await this.#db
      .updateTable('bmcs')
      .set({ last_check: JSON.stringify(result), last_check_at: at })
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) ? { at: at.toISOString(), ...result } : undefined;
  }

  /** Deletes a BMC; false when there was none. Devices naming it keep it from being deleted (foreign key). */
  async delete(id: string, db: Kysely<Database> = this.#db): Promise<boolean> {
    const r = await db.deleteFrom('bmcs').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

/** A `bmcs` row as the API shows it. */
export function bmcView(row: {
  id: string;
  address: string;
  username: string;
  ca_certificate: string | null;
  insecure: boolean;
  auth: BmcAuth;
  vendor_profile: string | null;
  system_id: string | null;
  labels: Record<string, string>;
  last_check: Record<string, unknown> | null;
  last_check_at: Date | null;
  created_at: Date;
  updated_at: Date;
}): BmcView {
  return {
    id: row.id,
    address: row.address,
    username: row.username,
    passwordSet: true,
    ...(row.ca_certificate ? { caCertificate: row.ca_certificate } : {}),
    insecure: row.insecure,
    auth: row.auth,
    ...(row.vendor_profile ? { profile: row.vendor_profile } : {}),
    ...(row.system_id ? { system: row.system_id } : {}),
    labels: row.labels,
    ...(row.last_check && row.last_check_at
      ? {
          lastCheck: {
            at: row.last_check_at.toISOString(),
            ...(row.last_check as Omit<BmcCheckResult, 'at'>),
          },
        }
      : {}),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
