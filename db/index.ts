/** Public face of `db/`: open the database, migrate, table types, errors. */
export {
  type DatabaseHandle,
  type DatabaseKind,
  type DatabaseOptions,
  openDatabase,
  parseDatabaseUrl,
} from './database.js';
export { checkDataDir, DATA_DIR_MIN_FREE_BYTES, type DataDirHealth } from './data-dir-health.js';
export { lockDataDir, type DataDirLock } from './data-dir-lock.js';
export { DB_ERROR_CODES, DbError, type DbErrorCode } from './errors.js';
export { migrateToLatest, pendingMigrations, type MigrateReport } from './migrate.js';
export type * from './schema.js';
export {
  createNotifier,
  LocalNotifier,
  NOTIFY_PAYLOAD_LIMIT,
  type Notifier,
  type NotifyListener,
  PgNotifier,
} from './notify.js';
export {
  parseProfileSpec,
  ProfileSpec,
  type ProfileSpecResult,
  ResourceName,
} from './profile-spec.js';
export { findUnstorableText, isStorableText, unstorableReason } from './text.js';
