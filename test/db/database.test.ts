/**
 * The database layer on the backend this run targets (PGlite by default,
 * real PostgreSQL when DATABASE_URL is set; CI runs both).
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest, openDatabase, pendingMigrations } from '../../db/index.js';
import { migrations } from '../../migrations/index.js';
import { backend, freshDatabase, type TestDatabase } from '../helpers/db.js';

describe(`database on ${backend}`, () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase();
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('reports every migration pending on an empty database, then applies them all', async () => {
    expect(await pendingMigrations(t.db)).toEqual(Object.keys(migrations));
    const first = await migrateToLatest(t.db);
    expect(first.applied).toEqual(Object.keys(migrations));
    expect(await pendingMigrations(t.db)).toEqual([]);
    const again = await migrateToLatest(t.db);
    expect(again.applied).toEqual([]);
  });

  it('creates every table the Database interface names', async () => {
    const tables = await t.db.introspection.getTables();
    const names = tables.map((x) => x.name).sort();
    for (const n of [
      'api_tokens',
      'audit_log',
      'bootstrap_events',
      'devices',
      'events',
      'image_fetches',
      'images',
      'profiles',
      'webhook_deliveries',
      'webhooks',
    ]) {
      expect(names).toContain(n);
    }
  });

  it('returns int8 as a string on both backends, beyond 2^53', async () => {
    const r = await sql<{ v: string }>`select 9007199254740993::int8 as v`.execute(t.db);
    expect(r.rows[0]?.v).toBe('9007199254740993');
  });

  it('commits a transaction and rolls back a failed one without persisting its work', async () => {
    await t.db.transaction().execute(async (tx) => {
      await tx.insertInto('audit_log').values({ actor: 't', action: 'commit-me' }).execute();
    });
    await expect(
      t.db.transaction().execute(async (tx) => {
        await tx.insertInto('audit_log').values({ actor: 't', action: 'roll-me-back' }).execute();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const actions = (await t.db.selectFrom('audit_log').select('action').execute()).map((r) => r.action);
    expect(actions).toContain('commit-me');
    expect(actions).not.toContain('roll-me-back');
  });

  it('keeps concurrent transactions isolated (no interleaving into an open transaction)', async () => {
    await t.db.deleteFrom('audit_log').execute();
    const work = Array.from({ length: 8 }, (_, i) =>
      t.db
        .transaction()
        .execute(async (tx) => {
          await tx
            .insertInto('audit_log')
            .values({ actor: `w${i}`, action: 'step-1' })
            .execute();
          await new Promise((r) => setTimeout(r, 5));
          await tx
            .insertInto('audit_log')
            .values({ actor: `w${i}`, action: 'step-2' })
            .execute();
          if (i % 2 === 1) throw new Error(`abort ${i}`);
        })
        .catch(() => 'aborted'),
    );
    const outsider = t.db.insertInto('audit_log').values({ actor: 'outsider', action: 'plain' }).execute();
    await Promise.all([...work, outsider]);
    const rows = await t.db.selectFrom('audit_log').select(['actor', 'action']).execute();
    const actors = new Set(rows.map((r) => r.actor));
    for (let i = 0; i < 8; i++) expect(actors.has(`w${i}`)).toBe(i % 2 === 0);
    expect(rows.filter((r) => r.actor.startsWith('w'))).toHaveLength(8); // 4 committed x 2 steps
    expect(actors.has('outsider')).toBe(true);
  });

  it('stores and reads jsonb and bytea the same way on both backends', async () => {
    await t.db
      .insertInto('profiles')
      .values({ name: 'p1', spec: JSON.stringify({ type: 'onboarding' }) })
      .execute();
    await t.db
      .insertInto('devices')
      .values({
        serial: 'SN-1',
        profile: 'p1',
        labels: JSON.stringify({ rack: 'r1' }),
        ownership_voucher: new Uint8Array([1, 2, 3, 255]),
        updated_at: new Date(),
      })
      .execute();
    const d = await t.db
      .selectFrom('devices')
      .selectAll()
      .where('serial', '=', 'SN-1')
      .executeTakeFirstOrThrow();
    expect(d.labels).toEqual({ rack: 'r1' });
    expect(d.state).toBe('registered');
    expect([...(d.ownership_voucher as Uint8Array)]).toEqual([1, 2, 3, 255]);
    expect(d.created_at).toBeInstanceOf(Date);
    // A profile in use cannot be deleted (FK restrict).
    await expect(t.db.deleteFrom('profiles').where('name', '=', 'p1').execute()).rejects.toThrow();
  });
});

describe.skipIf(backend !== 'postgres')('concurrent migrators on PostgreSQL', () => {
  it('two migrators racing on one empty database both succeed and apply each migration once', async () => {
    const { createPostgresDatabase } = await import('../helpers/db.js');
    const created = await createPostgresDatabase();
    const a = await openDatabase({ databaseUrl: created.url });
    const b = await openDatabase({ databaseUrl: created.url });
    try {
      const [ra, rb] = await Promise.all([migrateToLatest(a.db), migrateToLatest(b.db)]);
      expect([...ra.applied, ...rb.applied].sort()).toEqual(Object.keys(migrations).sort());
      expect(await pendingMigrations(a.db)).toEqual([]);
    } finally {
      await a.close();
      await b.close();
      await created.drop();
    }
  });
});

describe('migration failures', () => {
  it('names the failing migration', async () => {
    const t = await freshDatabase();
    try {
      // Pre-create a table the first migration creates, so it fails.
      await sql`create table api_tokens (x int)`.execute(t.db);
      await expect(migrateToLatest(t.db)).rejects.toMatchObject({
        code: 'DB_ERR_MIGRATION_FAILED',
        message: expect.stringContaining('2026-11-22-0001-initial'),
      });
    } finally {
      await t.drop();
    }
  });
});
