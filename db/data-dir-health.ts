/**
 * Whether the data directory can take writes: the embedded database, image
 * uploads and the admin token all live there. `/readyz` reports a full or
 * read-only data directory as not ready, so a load balancer stops sending work
 * that would fail half-way (a device's progress report, an image upload).
 */
import { randomBytes } from 'node:crypto';
import { rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Free space under which the data directory counts as full (default 64 MiB). */
export const DATA_DIR_MIN_FREE_BYTES = 64 * 1024 * 1024;

/** The outcome of {@link checkDataDir}. */
export interface DataDirHealth {
  ok: boolean;
  /** `N MiB free`, or why it is not usable (read-only, full, missing). */
  detail: string;
}

/** Checks that `dir` is writable (a probe file is written and removed) and has `minFreeBytes` free. */
export async function checkDataDir(
  dir: string,
  minFreeBytes = DATA_DIR_MIN_FREE_BYTES,
): Promise<DataDirHealth> {
  let free: number;
  try {
    const s = await statfs(dir);
    free = s.bavail * s.bsize;
  } catch (err) {
    return { ok: false, detail: `cannot inspect ${dir}: ${(err as Error).message}` };
  }
  const mib = (n: number) => `${Math.floor(n / 1024 / 1024)} MiB`;
  const probe = join(dir, `.readyz-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(probe, 'ok', { flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EROFS'
        ? 'is read-only'
        : code === 'ENOSPC' || code === 'EDQUOT'
          ? 'is full'
          : `cannot be written (${code})`;
    return { ok: false, detail: `${dir} ${why}; ${mib(free)} free` };
  } finally {
    await rm(probe, { force: true }).catch(() => {});
  }
  if (free < minFreeBytes)
    return { ok: false, detail: `${dir} is almost full: ${mib(free)} free, below ${mib(minFreeBytes)}` };
  return { ok: true, detail: `${mib(free)} free` };
}
