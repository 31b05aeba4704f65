/**
 * Image fetch rows may stand for several range reads: a BMC reading an ISO in
 * 4 KiB ranges sends thousands per second, and one row per read was the largest
 * cost of serving them on embedded PGlite. `requests` counts the reads a row
 * stands for (1 for every row written before); their ranges are listed in
 * `range`, and `bytes_sent` and `duration_ms` are their sums.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('image_fetches')
    .addColumn('requests', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('image_fetches').dropColumn('requests').execute();
}
