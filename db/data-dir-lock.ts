/**
 * Exclusive lock on the embedded database's data directory.
 *
 * Two processes opening one PGlite data directory silently lose data, so the
 * process that opens it first writes `<dir>/dpu-ztp.lock` (O_EXCL) with its PID;
 * a second process is refused with a clear message. A lock left by a process
 * that no longer exists is taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DbError } from './errors.js';

/** A held lock; `release()` removes the lock file (idempotent). */
export interface DataDirLock {
  readonly path: string;
  release(): void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock on `dir` (which must exist) or throws `DB_ERR_DATA_DIR_LOCKED`. */
export function lockDataDir(dir: string): DataDirLock {
  const path = join(dir, 'dpu-ztp.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          try {
            if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true });
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DbError('DB_ERR_DATA_DIR', `cannot create lock file ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      let holder = Number.NaN;
      try {
        holder = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
      } catch {
        // unreadable: treat as stale
      }
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
        throw new DbError(
          'DB_ERR_DATA_DIR_LOCKED',
          `data directory ${dir} is in use by another dpu-ztp process (pid ${holder}); ` +
            'stop it, use another --data-dir, or share a PostgreSQL server with DATABASE_URL',
        );
      }
      rmSync(path, { force: true }); // stale lock from a process that is gone
    }
  }
  throw new DbError('DB_ERR_DATA_DIR_LOCKED', `could not take the lock on ${dir}`);
}
