/**
 * The per-run image token (issue 14): the installer URL a provisioning run hands
 * its BMC carries it (`/images/t/<token>/<name>`), so the image service can
 * attach the BMC's reads (HEAD, ranges, the full GET) to the run's trace. It
 * only attributes reads — access to images is unchanged. Set with the run's
 * `traceparent` when the run is first claimed, cleared with it on retry.
 * Frozen once landed (STYLE.md lesson 11).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('job_devices').addColumn('image_token', 'text').execute();
  await sql`create unique index if not exists job_devices_image_token_uq on job_devices (image_token) where image_token is not null`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists job_devices_image_token_uq`.execute(db);
  await db.schema.alterTable('job_devices').dropColumn('image_token').execute();
}
