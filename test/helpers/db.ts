/**
 * A fresh, migrated-or-empty database for one test file, on the backend the
 * run targets: real PostgreSQL when DATABASE_URL is set (a new database per
 * call, dropped afterwards), else in-memory PGlite started from a template
 * data dir (much faster than initdb each time).
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { type DatabaseHandle, openDatabase } from '../../db/index.js';

/** Which backend this run's database tests use. */
export const backend: 'postgres' | 'pglite' = process.env.DATABASE_URL ? 'postgres' : 'pglite';

let template: Promise<Blob> | undefined;

function pgliteTemplate(): Promise<Blob> {
  template ??= (async () => {
    const pglite = await PGlite.create();
    const blob = await pglite.dumpDataDir('none');
    await pglite.close();
    return blob;
  })();
  return template;
}

/** A database handle plus `drop()` that closes it and removes its database. */
export interface TestDatabase extends DatabaseHandle {
  /** For PostgreSQL: a URL naming this test database (e.g. to hand to a child `serve`). */
  readonly url?: string;
  drop(): Promise<void>;
}

/** Creates an empty PostgreSQL database on the DATABASE_URL server and returns its URL. */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new URL(process.env.DATABASE_URL as string);
  const name = `dpuztp_t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin.toString());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin.toString() });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** Opens a fresh, empty database (not migrated). */
export async function freshDatabase(): Promise<TestDatabase> {
  if (backend === 'postgres') {
    const created = await createPostgresDatabase();
    const handle = await openDatabase({ databaseUrl: created.url, poolSize: 5 });
    return Object.assign(Object.create(null), handle, {
      url: created.url,
      async drop() {
        await handle.close();
        await created.drop();
      },
    }) as TestDatabase;
  }
  const handle = await openDatabase({ inMemory: true, loadDataDir: await pgliteTemplate() });
  return Object.assign(Object.create(null), handle, { drop: () => handle.close() }) as TestDatabase;
}

/**
 * True in the suite's PostgreSQL run (DATABASE_URL set). A test whose service and child
 * processes always use embedded PGlite (`childEnv()` drops DATABASE_URL, or it opens a PGlite
 * data directory itself) would repeat the PGlite run exactly there, doubling CI time for no
 * coverage, so it runs once: `describe.skipIf(repeatsPgliteRun)(…)`.
 */
export const repeatsPgliteRun = Boolean(process.env.DATABASE_URL);
