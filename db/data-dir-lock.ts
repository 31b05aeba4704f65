/**
 * Exclusive lock on the embedded database's data directory.
 *
 * Two processes opening one PGlite data directory silently lose data, so the
 * process that opens it first writes `<dir>/dpu-ztp.lock` (O_EXCL) with its PID
 * and that process's start time (`/proc/<pid>/stat` field 22, clock ticks since
 * boot); a second process is refused with a clear message. A lock is stale, and
 * taken over, when its process is gone — or when the PID now names another
 * process: after a reboot or a container restart PIDs are reused, and a lock
 * naming some live `sshd` must not block start-up. The start time tells them
 * apart; a lock without one (older format) counts only when the live process's
 * command line names dpu-ztp. Where `/proc` is missing, liveness alone decides.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DbError } from './errors.js';

/** A held lock; `release()` removes the lock file (idempotent). */
export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/** Start time of a process (field 22 of /proc/<pid>/stat), or undefined without /proc or process. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the lock's holder is still the process that wrote it. */
function holderLive(pid: number, recordedStart: string | undefined): boolean {
  if (!processAlive(pid)) return false;
  if (!existsSync('/proc/self/stat')) return true; // no /proc: liveness is all we know
  const now = startTime(pid);
  if (now === undefined) return true; // alive but unreadable (another user's): be safe
  if (recordedStart !== undefined) return now === recordedStart;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dpu-ztp');
  } catch {
    return true;
  }
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
      writeSync(fd, `${process.pid} ${startTime(process.pid) ?? ''}\n`.replace(' \n', '\n'));
      closeSync(fd);
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          try {
            if (readFileSync(path, 'utf8').trim().split(' ')[0] === String(process.pid))
              rmSync(path, { force: true });
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
      let holderStart: string | undefined;
      try {
        const [pid, start] = readFileSync(path, 'utf8').trim().split(' ');
        holder = Number.parseInt(pid ?? '', 10);
        holderStart = start || undefined;
      } catch {
        // unreadable: treat as stale
      }
      if (
        Number.isInteger(holder) &&
        holder > 0 &&
        holder !== process.pid &&
        holderLive(holder, holderStart)
      ) {
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
