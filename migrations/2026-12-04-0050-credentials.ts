/**
 * Owner, MASA and server TLS credentials (and the manufacturer trust anchors)
 * in the database, so every replica on one PostgreSQL serves the same ones:
 * certificates as PEM, private keys sealed with the shared secret key
 * (AES-256-GCM, `credentials:<role>` as associated data). `generation` grows
 * with every change; replicas reload on a NOTIFY and compare it. Frozen once
 * landed (STYLE.md lesson 11).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('credentials')
    .addColumn('role', 'text', (c) =>
      c.primaryKey().check(sql`role in ('owner', 'masa', 'tls', 'manufacturer')`),
    )
    // PEM: the certificate first, then its chain (manufacturer: every trust anchor)
    .addColumn('certificates', 'text', (c) => c.notNull())
    // SecretBox: nonce || ciphertext || tag of the PKCS#8 PEM key; null for trust anchors
    .addColumn('key_sealed', 'bytea')
    // owner: the certificate vouchers pin (owner CA), PEM
    .addColumn('pinned', 'text')
    .addColumn('generation', 'int8', (c) => c.notNull().defaultTo(1))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('credentials').execute();
}
