/**
 * BMC inventory: one row per BMC (credentials encrypted at rest with the secret
 * key, AES-256-GCM), and the BMC a device is reached through.
 * Frozen once landed (STYLE.md lesson 11).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('bmcs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('username', 'text', (c) => c.notNull())
    // nonce (12) || ciphertext || tag (16), sealed with the BMC id as associated data
    .addColumn('password_sealed', 'bytea', (c) => c.notNull())
    .addColumn('ca_certificate', 'text')
    .addColumn('insecure', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('auth', 'text', (c) =>
      c.notNull().defaultTo('auto').check(sql`auth in ('auto', 'session', 'basic')`),
    )
    .addColumn('vendor_profile', 'text')
    .addColumn('system_id', 'text')
    .addColumn('labels', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('last_check', 'jsonb')
    .addColumn('last_check_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .alterTable('devices')
    .addColumn('bmc', 'text', (c) => c.references('bmcs.id').onDelete('restrict'))
    .execute();
  await db.schema.createIndex('devices_bmc_idx').on('devices').columns(['bmc', 'serial']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('devices_bmc_idx').ifExists().execute();
  await db.schema.alterTable('devices').dropColumn('bmc').execute();
  await db.schema.dropTable('bmcs').ifExists().execute();
}
