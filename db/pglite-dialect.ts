/**
 * A Kysely dialect for embedded PGlite (`@electric-sql/pglite`).
 *
 * Same design as Kysely 0.29's built-in PGlite dialect, which needs Node 22:
 * PGlite is one connection, so connections are handed out one at a time, and a
 * Kysely transaction runs inside `pglite.transaction()`. Going through PGlite's
 * own transaction keeps other users of the same instance (pg-boss's
 * `executeSql` adapter) from interleaving statements into our transaction —
 * `kysely-pglite` was measured here to interleave concurrent transactions and
 * to persist rolled-back work.
 */
import type { PGlite, Transaction as PGliteTransaction } from '@electric-sql/pglite';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';

/** Kysely dialect over one PGlite instance (owned by the caller). */
export class PGliteDialect implements Dialect {
  readonly #pglite: PGlite;
  constructor(pglite: PGlite) {
    this.#pglite = pglite;
  }
  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.#pglite);
  }
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }
}

/** A promise with its settle functions outside. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

class PGliteDriver implements Driver {
  readonly #pglite: PGlite;
  readonly #connection: PGliteConnection;
  #queue: Promise<void> = Promise.resolve();
  #release: (() => void) | undefined;

  constructor(pglite: PGlite) {
    this.#pglite = pglite;
    this.#connection = new PGliteConnection(pglite);
  }

  async init(): Promise<void> {
    await this.#pglite.waitReady;
  }

  /** One connection at a time: waits until the previous holder released it. */
  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.#queue;
    const gate = deferred<void>();
    this.#queue = previous.then(() => gate.promise);
    await previous;
    this.#release = gate.resolve;
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PGliteConnection).begin();
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PGliteConnection).end(true);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PGliteConnection).end(false);
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  async destroy(): Promise<void> {
    // The PGlite instance belongs to the caller, who closes it.
  }
}

/** Thrown inside `pglite.transaction()` to make PGlite roll back. */
class RollbackSignal extends Error {}

class PGliteConnection implements DatabaseConnection {
  readonly #pglite: PGlite;
  #tx: PGliteTransaction | undefined;
  #finish: ((commit: boolean) => void) | undefined;
  #done: Promise<unknown> | undefined;

  constructor(pglite: PGlite) {
    this.#pglite = pglite;
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const target = this.#tx ?? this.#pglite;
    const result = await target.query<R>(query.sql, [...query.parameters], { rowMode: 'object' });
    return {
      rows: result.rows,
      ...(result.affectedRows !== undefined ? { numAffectedRows: BigInt(result.affectedRows) } : {}),
    };
  }

  // biome-ignore lint/correctness/useYield: streaming is not offered by PGlite; the error says so.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('PGlite dialect: streaming queries are not supported');
  }

  /** Opens a PGlite transaction and keeps it open until `end()`. */
  async begin(): Promise<void> {
    const started = deferred<void>();
    const outcome = deferred<boolean>();
    this.#finish = outcome.resolve;
    this.#done = this.#pglite
      .transaction(async (tx) => {
        this.#tx = tx;
        started.resolve();
        const commit = await outcome.promise;
        if (!commit) throw new RollbackSignal();
      })
      .catch((err: unknown) => {
        if (err instanceof RollbackSignal) return;
        started.reject(err);
        throw err;
      });
    await started.promise;
  }

  /** Commits (true) or rolls back (false) the open transaction. */
  async end(commit: boolean): Promise<void> {
    const finish = this.#finish;
    const done = this.#done;
    this.#finish = undefined;
    this.#done = undefined;
    try {
      finish?.(commit);
      await done;
    } finally {
      this.#tx = undefined;
    }
  }
}
