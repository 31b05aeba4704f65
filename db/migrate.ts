/**
 * Runs the migrations in `migrations/`. Kysely's Migrator takes a PostgreSQL
 * advisory lock inside a transaction, so concurrent migrators (several
 * replicas starting at once) are safe: one migrates, the others wait and find
 * nothing left to do.
 */
import { type Kysely, type MigrationResultSet, Migrator } from 'kysely';
import { migrations } from '../migrations/index.js';
import { DbError } from './errors.js';

function migrator(db: Kysely<any>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
  });
}

/** What a migration run did. */
export interface MigrateReport {
  applied: string[];
}

/** Applies every pending migration; throws DB_ERR_MIGRATION_FAILED naming the failing one. */
export async function migrateToLatest(db: Kysely<any>): Promise<MigrateReport> {
  const result: MigrationResultSet = await migrator(db).migrateToLatest();
  const failed = result.results?.find((r) => r.status === 'Error');
  if (result.error || failed) {
    const name = failed?.migrationName ?? 'unknown';
    const reason = result.error instanceof Error ? result.error.message : String(result.error);
    throw new DbError('DB_ERR_MIGRATION_FAILED', `migration ${name} failed: ${reason}`, {
      cause: result.error,
    });
  }
  return {
    applied: (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
  };
}

/** Names of migrations not yet applied (empty when the schema is current). */
export async function pendingMigrations(db: Kysely<any>): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
