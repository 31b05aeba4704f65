/** The audit log: who changed what, from the operator API. */
import type { Kysely } from 'kysely';
import type { Database } from '../db/index.js';

/** Appends one audit record (actor = token name). */
export async function audit(
  db: Kysely<Database>,
  actor: string,
  action: string,
  target: string,
  detail?: Record<string, unknown>,
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({ actor, action, target, detail: detail ? JSON.stringify(detail) : null })
    .execute();
}
