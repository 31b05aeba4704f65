/**
 * Initial schema: API tokens, profiles, images, devices, the append-only
 * bootstrap event log, image fetch log and audit log.
 * Frozen once landed (STYLE.md lesson 11): change the schema in a new migration.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin', 'operator', 'viewer')`))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('images')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('sha384', 'text', (c) => c.notNull())
    .addColumn('sha512', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('os_name', 'text')
    .addColumn('os_version', 'text')
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('profiles')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('spec', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('devices')
    .addColumn('serial', 'text', (c) => c.primaryKey())
    .addColumn('profile', 'text', (c) => c.references('profiles.name').onDelete('restrict'))
    .addColumn('state', 'text', (c) =>
      c
        .notNull()
        .defaultTo('registered')
        .check(sql`state in ('registered', 'pending', 'bootstrapping', 'provisioned', 'failed')`),
    )
    .addColumn('hw_model', 'text')
    .addColumn('labels', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('password_hash', 'text')
    .addColumn('ownership_voucher', 'bytea')
    .addColumn('idevid_issuer', 'text')
    .addColumn('idevid_fingerprint', 'text')
    .addColumn('last_progress_type', 'text')
    .addColumn('last_progress_message', 'text')
    .addColumn('last_progress_at', 'timestamptz')
    .addColumn('ssh_host_keys', 'jsonb')
    .addColumn('trust_anchor_certs', 'jsonb')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('devices_state_idx').on('devices').columns(['state', 'serial']).execute();
  await db.schema.createIndex('devices_profile_idx').on('devices').columns(['profile', 'serial']).execute();

  await db.schema
    .createTable('bootstrap_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('serial', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('progress_type', 'text')
    .addColumn('message', 'text')
    .addColumn('remote_address', 'text')
    .addColumn('tls_identity', 'text')
    .addColumn('detail', 'jsonb')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('bootstrap_events_serial_idx')
    .on('bootstrap_events')
    .columns(['serial', 'id'])
    .execute();

  await db.schema
    .createTable('image_fetches')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('image', 'text', (c) => c.notNull())
    .addColumn('client_address', 'text')
    .addColumn('listener', 'text', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('range', 'text')
    .addColumn('bytes_sent', 'bigint', (c) => c.notNull())
    .addColumn('duration_ms', 'double precision', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('image_fetches_image_idx')
    .on('image_fetches')
    .columns(['image', 'id'])
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('target', 'text')
    .addColumn('detail', 'jsonb')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'audit_log',
    'image_fetches',
    'bootstrap_events',
    'devices',
    'profiles',
    'images',
    'api_tokens',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
