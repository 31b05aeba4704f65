/**
 * Label filters (`GET /devices?label=k=v`, `GET /bmcs?label=…`, and job selectors by
 * labels) are `labels @> '{…}'::jsonb`: a GIN index with jsonb_path_ops answers
 * containment without reading every row once the fleet is large.
 * Frozen once landed (STYLE.md lesson 11).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index if not exists devices_labels_gin on devices using gin (labels jsonb_path_ops)`.execute(
    db,
  );
  await sql`create index if not exists bmcs_labels_gin on bmcs using gin (labels jsonb_path_ops)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists bmcs_labels_gin`.execute(db);
  await sql`drop index if exists devices_labels_gin`.execute(db);
}
