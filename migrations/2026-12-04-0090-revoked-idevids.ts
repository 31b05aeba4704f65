/**
 * Revoked device identities (IDevIDs) in the database, so a revocation made on
 * any replica reaches every replica (each keeps the set in memory, reloaded on
 * a NOTIFY and re-checked periodically) and needs no restart. Until now the
 * list was `<pki-dir>/revoked-idevids.txt`, read once per replica at start;
 * `serve` now imports that file's lines here. `fingerprint` is the SHA-256 of
 * the certificate's DER as colon hex, lowercase (`CertificateInfo.fingerprintSha256`,
 * what the device authenticator compares). Frozen once landed (STYLE.md lesson 11).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('revoked_idevids')
    .addColumn('fingerprint', 'text', (c) =>
      c.primaryKey().check(sql`fingerprint ~ '^[0-9a-f]{2}(:[0-9a-f]{2}){31}$'`),
    )
    .addColumn('reason', 'text')
    .addColumn('revoked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // the API token's name, or `file:<path>` for a line imported from revoked-idevids.txt
    .addColumn('revoked_by', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('revoked_idevids').execute();
}
