/**
 * `dpu-ztp serve` as a real child process: health, readiness, graceful
 * shutdown, data-dir reuse and locking, and start-up refusals on bad config.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backend, createPostgresDatabase, repeatsPgliteRun } from '../helpers/db.js';
import { childEnv, runCli, seedDataDir, startServe } from '../helpers/serve.js';
import { migrations } from '../../migrations/index.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dpu-ztp-serve-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// Children on embedded PGlite only (childEnv drops DATABASE_URL): once, not again in the PostgreSQL run.
describe.skipIf(repeatsPgliteRun)('serve on embedded PGlite', () => {
  // A new data dir from nothing: initdb and the migrations on first start (the other tests here
  // start from the run's migrated template, test/helpers/serve.ts seedDataDir).
  it('answers /healthz and /readyz, exits 0 on SIGTERM, reopens its data dir, and refuses a second process', async () => {
    const dataDir = tempDir();
    const first = await startServe(['--data-dir', dataDir]);
    try {
      const health = await fetch(`${first.api}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${first.api}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready' });
      expect(first.device).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(first.images).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

      // A second serve on the same data dir is refused with one clear line.
      const second = runCli([
        'serve',
        '--data-dir',
        dataDir,
        '--host',
        '127.0.0.1',
        '--api-port',
        '0',
        '--device-port',
        '0',
        '--images-port',
        '0',
      ]);
      expect(second.code).not.toBe(0);
      const lines = second.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^error: DB_ERR_DATA_DIR_LOCKED: --data-dir .*in use by another dpu-ztp process/,
      );
    } finally {
      expect(await first.stop('SIGTERM')).toBe(0);
    }
    // The data dir is reusable: the schema is already current.
    const again = await startServe(['--data-dir', dataDir]);
    expect(again.logs.some((l) => l.includes('schema is current'))).toBe(true);
    expect((await fetch(`${again.api}/healthz`)).status).toBe(200);
    expect(await again.stop('SIGINT')).toBe(0);
  });

  it('`dpu-ztp migrate` on a new data dir applies every migration, then finds the schema current', () => {
    const dataDir = tempDir();
    const first = runCli(['migrate', '--data-dir', dataDir], childEnv(), 180_000);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`applied ${Object.keys(migrations).length} migration(s)`);
    const again = runCli(['migrate', '--data-dir', dataDir], childEnv(), 180_000);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe('schema is current\n');
  });

  it('finishes an in-flight request before exiting on SIGTERM', async () => {
    const s = await startServe(['--data-dir', seedDataDir(tempDir())]);
    // Hold a keep-alive connection open, then stop: the server must still exit 0 promptly.
    const res = await fetch(`${s.api}/readyz`);
    expect(res.status).toBe(200);
    const t0 = Date.now();
    expect(await s.stop()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe.skipIf(backend !== 'postgres')('serve on PostgreSQL', () => {
  it('goes from not-ready (migrations pending) to ready after `dpu-ztp migrate`', async () => {
    const created = await createPostgresDatabase();
    const env = childEnv({ DATABASE_URL: created.url });
    const s = await startServe(['--no-migrate', '--data-dir', tempDir()], env);
    try {
      const before = await fetch(`${s.api}/readyz`);
      expect(before.status).toBe(503);
      expect(await before.json()).toMatchObject({
        status: 'not-ready',
        checks: expect.arrayContaining([expect.objectContaining({ name: 'migrations', ok: false })]),
      });
      const m = runCli(['migrate'], env);
      expect(m.code, m.stderr).toBe(0);
      expect(m.stdout).toContain(`applied ${Object.keys(migrations).length} migration(s)`);
      const after = await fetch(`${s.api}/readyz`);
      expect(after.status).toBe(200);
      // Two replicas share one PostgreSQL: a second serve is fine there.
      const replica = await startServe(['--data-dir', tempDir()], env);
      expect((await fetch(`${replica.api}/readyz`)).status).toBe(200);
      expect(await replica.stop()).toBe(0);
    } finally {
      expect(await s.stop()).toBe(0);
      await created.drop();
    }
  });
});

describe('bad configuration stops start-up with one line naming the setting', () => {
  const base = ['serve', '--host', '127.0.0.1', '--device-port', '0', '--images-port', '0'];
  const cases: Array<{ what: string; args: string[]; env?: Record<string, string>; line: RegExp }> = [
    {
      what: 'port out of range (flag)',
      args: ['--api-port', '70000'],
      line: /^error: CONFIG_ERR_INVALID: --api-port: port 70000 is out of range/,
    },
    {
      what: 'port not a number (env)',
      args: [],
      env: { DPU_ZTP_API_PORT: 'eighty' },
      line: /^error: CONFIG_ERR_INVALID: DPU_ZTP_API_PORT: must be a port number/,
    },
    {
      what: 'a Basic throttle that allows nothing',
      args: ['--basic-auth-throttle', '0/50/300'],
      line: /^error: CONFIG_ERR_INVALID: --basic-auth-throttle: must be PER_SERIAL\/PER_ADDRESS\/WINDOW_SECONDS/,
    },
    {
      what: 'unreadable config file',
      args: ['--config', '/nonexistent/dpu-ztp.json'],
      line: /^error: CONFIG_ERR_INVALID: --config \/nonexistent\/dpu-ztp.json: cannot read config file: ENOENT/,
    },
    {
      what: 'malformed DATABASE_URL',
      args: [],
      env: { DATABASE_URL: 'mysql://localhost/x' },
      line: /^error: CONFIG_ERR_INVALID: DATABASE_URL: .*postgres:\/\//,
    },
    {
      what: 'unreachable database',
      args: [],
      env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nope' },
      line: /^error: DB_ERR_UNREACHABLE: DATABASE_URL: PostgreSQL is unreachable/,
    },
    {
      what: 'bad log level',
      args: ['--log-level', 'loud'],
      line: /^error: CONFIG_ERR_INVALID: --log-level: must be one of/,
    },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const port = c.env?.DPU_ZTP_API_PORT ? [] : ['--api-port', '0'];
      const r = runCli([...base, ...port, '--data-dir', tempDir(), ...c.args], childEnv(c.env));
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(c.line);
    });
  }

  it('a config file with an unknown key or a bad value names it', () => {
    const dir = tempDir();
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ 'api-prot': 1 }));
    let r = runCli([...base, '--config', file], childEnv());
    expect(r.stderr.trim()).toMatch(/^error: CONFIG_ERR_INVALID: --config .*unknown setting "api-prot"/);
    writeFileSync(file, JSON.stringify({ 'api-port': 99999 }));
    r = runCli([...base, '--config', file], childEnv());
    expect(r.stderr.trim()).toMatch(
      /^error: CONFIG_ERR_INVALID: api-port in .*c\.json: port 99999 is out of range/,
    );
  });

  it('flags beat env, env beats the config file', async () => {
    const dir = tempDir();
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ 'log-level': 'loud' })); // would fail if used
    const r = runCli(
      [...base, '--api-port', '0', '--data-dir', dir, '--config', file],
      childEnv({ DPU_ZTP_LOG_LEVEL: 'nope' }),
    );
    expect(r.stderr.trim()).toMatch(/^error: CONFIG_ERR_INVALID: DPU_ZTP_LOG_LEVEL:/);
    const ok = await startServe(
      ['--data-dir', seedDataDir(dir), '--config', file, '--log-level', 'info'],
      childEnv({ DPU_ZTP_LOG_LEVEL: 'nope' }),
    );
    expect(await ok.stop()).toBe(0);
  });
});

describe('help', () => {
  it('lists every command and every serve flag', () => {
    const top = runCli(['--help']);
    expect(top.stdout).toMatch(/serve/);
    expect(top.stdout).toMatch(/migrate/);
    const serve = runCli(['serve', '--help']);
    for (const f of [
      '--data-dir',
      '--database-url',
      '--host',
      '--api-port',
      '--device-port',
      '--images-port',
      '--pki-dir',
      '--config',
      '--no-migrate',
    ]) {
      expect(serve.stdout).toContain(f);
    }
  });
});
