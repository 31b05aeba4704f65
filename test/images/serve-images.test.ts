/**
 * The image service in the real `dpu-ztp serve` child: `dpu-ztp images
 * add|list|rm`, advertised URLs, HTTPS on the device listener, and memory:
 * 32 concurrent downloads of a 1 GiB image keep the server's RSS growth
 * under 64 MiB (VmRSS from /proc/<pid>/status, sampled throughout).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createPostgresDatabase } from '../helpers/db.js';
import { childEnv, runCli, type ServeProcess, seedDataDir, startServe } from '../helpers/serve.js';
import { haveTool } from '../helpers/tools.js';

const run = promisify(execFile);
const GiB = 1024 ** 3;
let dir: string;
let s: ServeProcess;
let env: NodeJS.ProcessEnv;
let dropDb: (() => Promise<void>) | undefined;

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-serve-images-'));
  let databaseUrl: string | undefined;
  if (backend === 'postgres') {
    const created = await createPostgresDatabase();
    databaseUrl = created.url;
    dropDb = created.drop;
  } else seedDataDir(join(dir, 'data'));
  env = childEnv({ DATABASE_URL: databaseUrl });
  s = await startServe(
    ['--data-dir', join(dir, 'data'), '--images-advertise-url', 'http://images.lab.example:9000/dpu/'],
    env,
    60_000,
  );
});
afterAll(async () => {
  await s?.stop();
  await dropDb?.();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) =>
  runCli([...args, '--api', s.api, '--data-dir', join(dir, 'data')], env, 120_000);

/** A bound for the tests that move 1 GiB (a hang bound, not a speed goal: `BENCH=images` measures). */
const BIG_TIMEOUT = 180_000;

describe.skipIf(!haveTool('curl'))(`images in dpu-ztp serve (${backend})`, () => {
  it('refuses an advertise URL of the wrong scheme at start-up', () => {
    const r = runCli(['serve', '--images-advertise-url', 'ftp://x', '--data-dir', join(dir, 'other')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CONFIG_ERR_INVALID: --images-advertise-url: must be an http:\/\/ URL/);
  });

  it(
    'images add (1 GiB) / list / rm through the CLI; URLs use the advertised base or the listener address',
    async () => {
      const file = join(dir, 'big.iso');
      writeFileSync(file, 'ISO header');
      truncateSync(file, GiB);
      const add = cli(['images', 'add', 'big.iso', file, '--os-name', 'ubuntu', '--os-version', '24.04']);
      expect(add.code, add.stderr).toBe(0);
      const sha = (await run('sha256sum', [file])).stdout.split(' ')[0];
      expect(add.stdout).toContain(`big.iso: ${GiB} bytes, sha256 ${sha}`);
      expect(add.stdout).toContain('http://images.lab.example:9000/dpu/images/big.iso');
      expect(add.stdout).toContain(`${s.device}/images/big.iso`);
      const list = cli(['images', 'list']);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/big\.iso\s+1\.0 GiB\s+\w{16}…\s+ubuntu 24\.04/);

      const small = join(dir, 'small.bin');
      writeFileSync(small, 'small');
      expect(cli(['images', 'add', 'small.bin', small]).code).toBe(0);
      expect(cli(['images', 'rm', 'small.bin']).stdout).toBe('deleted small.bin\n');
      const gone = cli(['images', 'rm', 'small.bin']);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toMatch(/^error: API_ERR_NOT_FOUND: no image small\.bin/);
      const bad = runCli(['images', 'list', '--api', s.api, '--token', 'nope'], env);
      expect(bad.stderr).toMatch(/^error: API_ERR_UNAUTHENTICATED/);
    },
    BIG_TIMEOUT,
  );

  it('serves Range requests over HTTPS on the device listener too', async () => {
    const { stdout } = await run('curl', ['-sSk', '-r', '0-9', `${s.device}/images/big.iso`]);
    expect(stdout).toBe('ISO header');
    const head = await run('curl', ['-sSk', '-I', `${s.device}/images/big.iso`]);
    expect(head.stdout).toMatch(/content-length: 1073741824/i);
    expect(head.stdout).toMatch(/content-type: application\/x-iso9660-image/i);
  });

  it(
    '32 concurrent downloads of the 1 GiB image keep RSS growth under 64 MiB',
    async () => {
      const pid = s.proc.pid as number;
      const base = rssKiB(pid);
      let peak = base;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssKiB(pid));
      }, 25);
      const t0 = performance.now();
      const results = await Promise.all(
        Array.from(
          { length: 32 },
          () =>
            new Promise<string>((resolve, reject) => {
              const c = spawn('curl', [
                '-sS',
                '-o',
                '/dev/null',
                '-w',
                '%{http_code} %{size_download}',
                `${s.images}/images/big.iso`,
              ]);
              let out = '';
              c.stdout.on('data', (d: Buffer) => {
                out += d.toString();
              });
              c.once('error', reject);
              c.once('close', () => resolve(out));
            }),
        ),
      );
      clearInterval(sampler);
      peak = Math.max(peak, rssKiB(pid));
      const seconds = (performance.now() - t0) / 1000;
      expect(results).toEqual(Array(32).fill(`200 ${GiB}`));
      const growthMiB = (peak - base) / 1024;
      console.log(
        `32 x 1 GiB in ${seconds.toFixed(1)} s (${((32 * 1024) / seconds).toFixed(0)} MiB/s); RSS ${(base / 1024).toFixed(0)} -> peak ${(peak / 1024).toFixed(0)} MiB (+${growthMiB.toFixed(1)} MiB)`,
      );
      expect(growthMiB).toBeLessThan(64);
    },
    BIG_TIMEOUT,
  );
});
