/**
 * Opens the one Kysely instance the service uses: embedded PGlite under the
 * data directory by default, a `pg` Pool when a PostgreSQL URL is given.
 */
import { existsSync, mkdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { type DataDirLock, lockDataDir } from './data-dir-lock.js';
import { DbError } from './errors.js';
import { PGliteDialect } from './pglite-dialect.js';
import type { Database } from './schema.js';

/** Which engine backs the database. */
export type DatabaseKind = 'pglite' | 'postgres';

/** Typed options; the CLI builds them from config. */
export interface DatabaseOptions {
  /** PostgreSQL URL; when absent the embedded PGlite is used. */
  databaseUrl?: string | undefined;
  /** Data directory for PGlite (its files live in `<dataDir>/pgdata`). Ignored for PostgreSQL. */
  dataDir?: string | undefined;
  /** Use an in-memory PGlite (tests). */
  inMemory?: boolean;
  /** A PGlite data dir tarball to start from (tests: copying a template is much faster than initdb). */
  loadDataDir?: Blob;
  /** Take the exclusive data-dir lock (default true for on-disk PGlite). */
  lock?: boolean;
  /** pg Pool size (default 10). */
  poolSize?: number;
  /** Connection timeout for PostgreSQL in ms (default 5000). */
  connectTimeoutMs?: number;
}

/** An open database with its engine, for the service's lifetime. */
export interface DatabaseHandle {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseKind;
  /** The PGlite instance (embedded mode only), e.g. for pg-boss's executeSql adapter. */
  readonly pglite?: PGlite;
  /** The pg Pool (PostgreSQL mode only). */
  readonly pool?: pg.Pool;
  /** Checks that the database answers; throws DB_ERR_UNREACHABLE otherwise. */
  ping(): Promise<void>;
  /** Closes the database and releases the data-dir lock. Idempotent. */
  close(): Promise<void>;
}

// pg parses int8 (20) as a string by default; PGlite returns numbers (losing precision
// above 2^53) unless told otherwise. Match pg so both backends behave the same.
const PGLITE_PARSERS = {
  [pgliteTypes.INT8]: (v: string) => v,
  [pgliteTypes.NUMERIC]: (v: string) => v,
};

/** Validates a PostgreSQL URL, throwing DB_ERR_BAD_URL with the reason. */
export function parseDatabaseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DbError(
      'DB_ERR_BAD_URL',
      'DATABASE_URL is not a valid URL (expected postgres://user@host:port/db)',
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new DbError(
      'DB_ERR_BAD_URL',
      `DATABASE_URL must use postgres:// or postgresql://, not ${parsed.protocol}//`,
    );
  }
  if (!parsed.hostname && !parsed.searchParams.get('host')) {
    throw new DbError('DB_ERR_BAD_URL', 'DATABASE_URL has no host');
  }
  return parsed;
}

/** Opens the database described by `opts`. Throws a coded DbError on failure. */
export async function openDatabase(opts: DatabaseOptions): Promise<DatabaseHandle> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts) : openPGlite(opts);
}

async function openPostgres(url: string, opts: DatabaseOptions): Promise<DatabaseHandle> {
  parseDatabaseUrl(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
  });
  // An idle client that errors (server restart) must not crash the process.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  const handle: DatabaseHandle = {
    db,
    kind: 'postgres',
    pool,
    ping: () => ping(db, 'PostgreSQL'),
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy(); // ends the pool
    },
  };
  try {
    await handle.ping();
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}

async function openPGlite(opts: DatabaseOptions): Promise<DatabaseHandle> {
  let lock: DataDirLock | undefined;
  let dataDir: string | undefined;
  if (!opts.inMemory) {
    if (!opts.dataDir)
      throw new DbError('DB_ERR_DATA_DIR', 'no data directory given for the embedded database');
    try {
      mkdirSync(opts.dataDir, { recursive: true });
    } catch (err) {
      if (isNoSpace(err)) throw diskFull(opts.dataDir, undefined, 'cannot create the data directory');
      throw new DbError(
        'DB_ERR_DATA_DIR',
        `cannot create data directory ${opts.dataDir}: ${(err as Error).message}`,
      );
    }
    dataDir = join(opts.dataDir, 'pgdata');
    // A new embedded database takes ~40 MiB; initdb that runs out of space half-way leaves a
    // data directory that later fails in obscure ways, so refuse before starting.
    const free = freeBytes(opts.dataDir);
    if (!existsSync(dataDir) && free !== undefined && free < NEW_DATABASE_BYTES)
      throw diskFull(
        opts.dataDir,
        free,
        `a new embedded database needs about ${NEW_DATABASE_BYTES >> 20} MiB`,
      );
    try {
      if (opts.lock !== false) lock = lockDataDir(opts.dataDir);
    } catch (err) {
      if (isNoSpace(err) || isNoSpace((err as Error).cause))
        throw diskFull(opts.dataDir, freeBytes(opts.dataDir), 'cannot even write the lock file');
      throw err;
    }
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(dataDir ? { dataDir } : {}),
      ...(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {}),
      parsers: PGLITE_PARSERS,
    });
  } catch (err) {
    lock?.release();
    // PGlite's file system reports ENOSPC as errno 28, or as an abort without a message.
    const free = opts.dataDir ? freeBytes(opts.dataDir) : undefined;
    if (opts.dataDir && (isNoSpace(err) || (free !== undefined && free < LOW_SPACE_BYTES)))
      throw diskFull(opts.dataDir, free, 'the embedded database could not write its files');
    throw new DbError(
      'DB_ERR_UNREACHABLE',
      `embedded database failed to open: ${(err as Error | undefined)?.message ?? String(err)}`,
      { cause: err },
    );
  }
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  let closed = false;
  return {
    db,
    kind: 'pglite',
    pglite,
    ping: () => ping(db, 'embedded PGlite'),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await db.destroy();
        await pglite.close(); // an unclosed PGlite keeps the process alive
      } finally {
        lock?.release();
      }
    },
  };
}

/** Free space a new embedded data directory needs (a fresh one is ~40 MiB). */
const NEW_DATABASE_BYTES = 64 * 1024 * 1024;
/** Below this, a failure to open the embedded database is put down to the full disk. */
const LOW_SPACE_BYTES = 1024 * 1024;

/** Bytes free to this user on the file system holding `dir`, or undefined when unknown. */
function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** Whether an error is "no space left on device" (Node's ENOSPC, Emscripten's errno 28, PostgreSQL's 53100). */
function isNoSpace(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown; message?: unknown } | null | undefined;
  return (
    e?.code === 'ENOSPC' ||
    e?.code === '53100' ||
    e?.errno === 28 ||
    (typeof e?.message === 'string' && /no space left on device|ENOSPC/i.test(e.message))
  );
}

function diskFull(dir: string, free: number | undefined, why: string): DbError {
  const left = free === undefined ? '' : ` (${Math.floor(free / 1024)} KiB free)`;
  return new DbError('DB_ERR_DISK_FULL', `the disk holding ${dir} is full${left}: ${why}; free some space`);
}

async function ping(db: Kysely<Database>, what: string): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    throw new DbError('DB_ERR_UNREACHABLE', `${what} is unreachable: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
