/**
 * Once per `vitest run`, before any test file: database templates, so a test file copies a
 * database instead of paying for initdb (seconds of CPU on embedded PGlite, per test file,
 * since each file runs in its own process) and the migrations (per `serve` child too).
 *
 * - PGlite: `dumpDataDir` tarballs of a new empty database (test/helpers/db.ts
 *   `freshDatabase()`) and of the same migrated to the latest schema with pg-boss's schema in
 *   place, as serve's first start leaves it (`migratedDatabase()`); and the migrated one as an
 *   on-disk `pgdata` directory that test/helpers/serve.ts `seedDataDir()` copies into a new
 *   `--data-dir` for a child `dpu-ztp serve` or CLI.
 * - PostgreSQL (DATABASE_URL): the same migrated database as a template that
 *   `migratedDatabase()` clones with `create database … template …`.
 *
 * Built from migrations/ on every run, so it can never lag behind them. Tests that are about a
 * fresh data directory or first start (initdb, migration on start, `dpu-ztp migrate`, disk-full
 * checks) keep starting from nothing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { openJobQueue } from '../bootstrap/job-queue.js';
import { type DatabaseHandle, migrateToLatest, openDatabase } from '../db/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The database templates of this run (see test/global-setup.ts). */
    dbTemplate: {
      /** `dumpDataDir` tarball of a new, empty PGlite database. */
      emptyDump: string;
      /** The same, migrated to the latest schema, with pg-boss's schema and queue in place. */
      migratedDump: string;
      /** The migrated one as an on-disk PGlite data directory (what `<data-dir>/pgdata` holds). */
      pgdata: string;
      /** With DATABASE_URL: a migrated PostgreSQL database to clone. */
      postgresDatabase?: string;
    };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-template-'));
  const dump = async (h: DatabaseHandle, file: string): Promise<Blob> => {
    const blob = await (h.pglite as PGlite).dumpDataDir('none');
    writeFileSync(join(dir, file), new Uint8Array(await blob.arrayBuffer()));
    return blob;
  };
  // initdb once; dump it empty, migrate it in memory (and let pg-boss create its schema and the
  // device-run queue, as serve's first start does), dump it again, and write the migrated files
  // out as an on-disk data dir.
  const mem = await openDatabase({ inMemory: true });
  let migrated: Blob;
  try {
    await dump(mem, 'empty.tar');
    await migrateToLatest(mem.db);
    const boss = await openJobQueue(mem);
    await boss.stop({ graceful: false, wait: true, close: false });
    migrated = await dump(mem, 'migrated.tar');
  } finally {
    await mem.close();
  }
  const disk = await openDatabase({ dataDir: join(dir, 'disk'), loadDataDir: migrated, lock: false });
  await disk.close();

  let postgresDatabase: string | undefined;
  const admin = process.env.DATABASE_URL;
  if (admin) {
    postgresDatabase = `dpuztp_tpl_${process.pid}_${Date.now()}`;
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`create database ${postgresDatabase}`);
    await c.end();
    const url = new URL(admin);
    url.pathname = `/${postgresDatabase}`;
    const h = await openDatabase({ databaseUrl: url.toString(), poolSize: 1 });
    try {
      await migrateToLatest(h.db);
      const boss = await openJobQueue(h);
      await boss.stop({ graceful: false, wait: true, close: true });
    } finally {
      await h.close();
    }
  }

  project.provide('dbTemplate', {
    emptyDump: join(dir, 'empty.tar'),
    migratedDump: join(dir, 'migrated.tar'),
    pgdata: join(dir, 'disk', 'pgdata'),
    ...(postgresDatabase ? { postgresDatabase } : {}),
  });
  return async () => {
    rmSync(dir, { recursive: true, force: true });
    if (admin && postgresDatabase) {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${postgresDatabase} with (force)`);
      await c.end();
    }
  };
}
