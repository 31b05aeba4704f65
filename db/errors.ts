/** Stable error codes of the database layer (STYLE.md lesson 6). */

/** Every code `DbError` may carry, with a one-line meaning (kept in step with README by a test). */
export const DB_ERROR_CODES = {
  DB_ERR_UNREACHABLE: 'the database could not be reached or refused the connection',
  DB_ERR_BAD_URL: 'DATABASE_URL is not a postgres:// or postgresql:// URL',
  DB_ERR_DATA_DIR_LOCKED: 'another dpu-ztp process holds the embedded database data directory',
  DB_ERR_DATA_DIR: 'the data directory cannot be created or written',
  DB_ERR_DISK_FULL:
    'the disk holding the data directory is full (or too full to create the embedded database)',
  DB_ERR_MIGRATION_FAILED: 'a migration failed; the error names it',
} as const;

/** A database-layer error code. */
export type DbErrorCode = keyof typeof DB_ERROR_CODES;

/** An error of the database layer, with a stable code. */
export class DbError extends Error {
  readonly code: DbErrorCode;
  constructor(code: DbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DbError';
    this.code = code;
  }
}
