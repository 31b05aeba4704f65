/**
 * A fresh, migrated-or-empty database for one test file, on the backend the
 * run targets: real PostgreSQL when DATABASE_URL is set (a new database per
 * call, dropped afterwards), else in-memory PGlite started from a template
 * data dir test/global-setup.ts made for the run (much faster than initdb each time).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { inject } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../db/index.js';

/** Which backend this run's database tests use. */
export const backend: 'postgres' | 'pglite' = process.env.DATABASE_URL ? 'postgres' : 'pglite';

const dumps = new Map<'empty' | 'migrated', Promise<Blob>>();

/**
 * The PGlite template test/global-setup.ts dumped for this run, read once per test file:
 * loading it is much faster than initdb (and than the migrations, for `migrated`).
 */
function pgliteTemplate(which: 'empty' | 'migrated'): Promise<Blob> {
  let blob = dumps.get(which);
  if (!blob) {
    const t = inject('dbTemplate');
    blob = readFile(which === 'empty' ? t.emptyDump : t.migratedDump).then(
      (b) => new Blob([new Uint8Array(b)]),
    );
    dumps.set(which, blob);
  }
  return blob;
}

/** A database handle plus `drop()` that closes it and removes its database. */
export interface TestDatabase extends DatabaseHandle {
  /** For PostgreSQL: a URL naming this test database (e.g. to hand to a child `serve`). */
  readonly url?: string;
  drop(): Promise<void>;
}

/** Creates an empty PostgreSQL database on the DATABASE_URL server and returns its URL. */
export async function createPostgresDatabase(
  opts: { template?: string } = {},
): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new URL(process.env.DATABASE_URL as string);
  const name = `dpuztp_t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`create database ${name}${opts.template ? ` template ${opts.template}` : ''}`);
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
  return open('empty');
}

/**
 * Opens a fresh database already at the current schema: a copy of the template
 * test/global-setup.ts migrated once for this run (as if `migrateToLatest` had just run on
 * {@link freshDatabase}, without paying for it in every file). Tests of migrating itself use
 * {@link freshDatabase}.
 */
export async function migratedDatabase(): Promise<TestDatabase> {
  return open('migrated');
}

async function open(from: 'empty' | 'migrated'): Promise<TestDatabase> {
  if (backend === 'postgres') {
    const template = from === 'migrated' ? inject('dbTemplate').postgresDatabase : undefined;
    if (from === 'migrated' && !template) throw new Error('test/global-setup.ts made no PostgreSQL template');
    const created = await createPostgresDatabase(template ? { template } : {});
    const handle = await openDatabase({ databaseUrl: created.url, poolSize: 5 });
    return Object.assign(Object.create(null), handle, {
      url: created.url,
      async drop() {
        await handle.close();
        await created.drop();
      },
    }) as TestDatabase;
  }
  const handle = await openDatabase({
    inMemory: true,
    loadDataDir: await pgliteTemplate(from),
  });
  return Object.assign(Object.create(null), handle, { drop: () => handle.close() }) as TestDatabase;
}

/**
 * True in the suite's PostgreSQL run (DATABASE_URL set). A test whose service and child
 * processes always use embedded PGlite (`childEnv()` drops DATABASE_URL, or it opens a PGlite
 * data directory itself) would repeat the PGlite run exactly there, doubling CI time for no
 * coverage, so it runs once: `describe.skipIf(repeatsPgliteRun)(…)`.
 */
export const repeatsPgliteRun = Boolean(process.env.DATABASE_URL);
