/**
 * The embedded database's data directory under hostile conditions: a stale lock
 * file naming some other live process, and a full disk (a real tmpfs of a few
 * MiB, mounted in a private user + mount namespace made by `unshare -rm`, so
 * nothing outside the child process sees it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDataDir, lockDataDir } from '../../db/index.js';
import { childEnv, dpuZtpBin, repoRoot } from '../helpers/serve.js';
import { haveTool, inCI } from '../helpers/tools.js';
import { repeatsPgliteRun } from '../helpers/db.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dpu-ztp-datadir-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(repeatsPgliteRun)('the data-dir lock', () => {
  it('takes over a lock naming a live process that is not dpu-ztp, and one whose PID was reused', async () => {
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const pid = other.pid as number;
      const dir = tempDir();
      const file = join(dir, 'dpu-ztp.lock');
      writeFileSync(file, `${pid}\n`); // older format: pid only; `sleep` is not dpu-ztp
      const a = lockDataDir(dir);
      const written = readFileSync(file, 'utf8').trim().split(' ');
      expect(written[0]).toBe(String(process.pid));
      expect(written[1]).toMatch(/^\d+$/); // our start time, so a reused PID is told apart
      a.release();
      writeFileSync(file, `${pid} 1\n`); // live PID, but not the start time that wrote the lock
      lockDataDir(dir).release();
    } finally {
      other.kill();
    }
  });

  it('refuses a lock held by the live process that wrote it', () => {
    const dir = tempDir();
    const code = `import('${join(repoRoot, 'dist/db/index.js')}').then((m) => { m.lockDataDir(${JSON.stringify(dir)}); process.stdout.write('locked\\n'); setTimeout(() => {}, 60000); })`;
    const holder = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    return new Promise<void>((resolve, reject) => {
      holder.stdout.once('data', () => {
        try {
          expect(() => lockDataDir(dir)).toThrow(expect.objectContaining({ code: 'DB_ERR_DATA_DIR_LOCKED' }));
          resolve();
        } catch (err) {
          reject(err);
        } finally {
          holder.kill();
        }
      });
    });
  });
});

/** Whether this machine lets an unprivileged user mount a tmpfs in its own namespaces. */
function canUnshareMount(): boolean {
  if (!haveTool('unshare')) return false;
  const r = spawnSync('unshare', ['-rm', 'mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tmpdir()], {
    encoding: 'utf8',
  });
  if (r.status !== 0 && inCI)
    throw new Error(`unshare -rm with a tmpfs mount is required under CI=true: ${r.stderr}`);
  return r.status === 0;
}

/** Runs `dpu-ztp migrate` with its data dir on a fresh tmpfs of `sizeKiB`, first filling `fillKiB` of it. */
function migrateOnTmpfs(sizeKiB: number, fill: 'all' | 'none') {
  const mnt = tempDir();
  const script = [
    `mount -t tmpfs -o size=${sizeKiB}k tmpfs "${mnt}"`,
    fill === 'all' ? `dd if=/dev/zero of="${mnt}/fill" bs=64k 2>/dev/null; true` : 'true',
    `exec "${process.execPath}" "${dpuZtpBin}" migrate --data-dir "${mnt}/data"`,
  ].join(' && ');
  return spawnSync('unshare', ['-rm', 'sh', '-c', script], {
    encoding: 'utf8',
    env: childEnv(),
    timeout: 60_000,
  });
}

describe.skipIf(repeatsPgliteRun || !canUnshareMount())('a full disk', () => {
  it('says the disk is full when the data dir has no room for a new database', () => {
    const r = migrateOnTmpfs(4096, 'none');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^error: DB_ERR_DISK_FULL: .*is full \(\d+ KiB free\).*about 64 MiB/m);
  });

  it('says the disk is full when not even the lock file can be written', () => {
    const r = migrateOnTmpfs(1024, 'all');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^error: DB_ERR_DISK_FULL: .*is full \(0 KiB free\)/m);
  });
});

/** Runs checkDataDir (from dist/) in a private namespace on a tmpfs prepared by `setup` (shell). */
function checkOnTmpfs(setup: string) {
  const mnt = tempDir();
  const code = `import('${join(repoRoot, 'dist/db/index.js')}').then(async (m) => process.stdout.write(JSON.stringify(await m.checkDataDir(${JSON.stringify(mnt)}))))`;
  const script = [
    `mount -t tmpfs -o size=1024k tmpfs "${mnt}"`,
    setup.replaceAll('$MNT', mnt),
    `exec "${process.execPath}" -e "$0"`,
  ].join(' && ');
  const r = spawnSync('unshare', ['-rm', 'sh', '-c', script, code], { encoding: 'utf8', timeout: 30_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { ok: boolean; detail: string };
}

describe.skipIf(repeatsPgliteRun)('/readyz data-dir check', () => {
  it('is ready on a writable data dir with room', async () => {
    const h = await checkDataDir(tempDir());
    expect(h.ok, h.detail).toBe(true);
    expect(h.detail).toMatch(/^\d+ MiB free$/);
  });

  it.skipIf(!canUnshareMount())('reports a full, an almost full and a read-only data dir', () => {
    const full = checkOnTmpfs('(dd if=/dev/zero of="$MNT/fill" bs=64k 2>/dev/null; true)');
    expect(full).toMatchObject({ ok: false });
    expect(full.detail).toMatch(/is full; 0 MiB free/);
    const small = checkOnTmpfs('true'); // 1 MiB: writable, but below the 64 MiB floor
    expect(small).toMatchObject({ ok: false });
    expect(small.detail).toMatch(/almost full: 1 MiB free, below 64 MiB/);
    const ro = checkOnTmpfs('mount -o remount,ro "$MNT"');
    expect(ro).toMatchObject({ ok: false });
    expect(ro.detail).toMatch(/is read-only/);
  });
});
