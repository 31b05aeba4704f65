/**
 * The BMC inventory's storage: rows in `bmcs`, the password sealed with the
 * secret key (the BMC id as associated data) and opened only where a Redfish
 * client is built. Routes, checks and imports build on this.
 */
import type { Kysely } from 'kysely';
import type { BmcAuth, Database } from '../db/index.js';
import type { SecretBox } from './secrets.js';

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
  lastCheck?: { at: string; report: Record<string, unknown> };
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
  password: string;
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

  /** Creates or replaces a BMC; returns whether it was created. */
  async put(id: string, input: BmcInput, db: Kysely<Database> = this.#db): Promise<{ created: boolean }> {
    const now = this.#now();
    const values = {
      address: input.address,
      username: input.username,
      password_sealed: this.#box.seal(input.password, `bmc:${id}`),
      ca_certificate: input.caCertificate ?? null,
      insecure: input.insecure ?? false,
      auth: input.auth ?? 'auto',
      vendor_profile: input.profile ?? null,
      system_id: input.system ?? null,
      labels: JSON.stringify(input.labels ?? {}),
      updated_at: now,
    };
    const existed = await db.selectFrom('bmcs').select('id').where('id', '=', id).executeTakeFirst();
    await db
      .insertInto('bmcs')
      .values({ id, ...values, created_at: now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ ...values, last_check: null, last_check_at: null }))
      .execute();
    return { created: !existed };
  }

  /** The BMC as the API shows it, or undefined. */
  async view(id: string): Promise<BmcView | undefined> {
    const row = await this.#db.selectFrom('bmcs').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? bmcView(row) : undefined;
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

  /** Stores the report of a `check` run. */
  async saveCheck(id: string, report: Record<string, unknown>): Promise<void> {
    await this.#db
      .updateTable('bmcs')
      .set({ last_check: JSON.stringify(report), last_check_at: this.#now() })
      .where('id', '=', id)
      .execute();
  }

  /** Deletes a BMC; false when there was none. Devices naming it keep it from being deleted (foreign key). */
  async delete(id: string): Promise<boolean> {
    const r = await this.#db.deleteFrom('bmcs').where('id', '=', id).executeTakeFirst();
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
      ? { lastCheck: { at: row.last_check_at.toISOString(), report: row.last_check } }
      : {}),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
