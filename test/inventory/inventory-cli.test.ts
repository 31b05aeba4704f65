/**
 * `dpu-ztp bmcs …` and `dpu-ztp devices import` end to end: the built CLI
 * against a real `dpu-ztp serve` (PGlite, or PostgreSQL with DATABASE_URL),
 * an emulated BMC over real TLS, and the secret key file across restarts.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BmcEmulator } from '../../redfish/index.js';
import { backend, createPostgresDatabase } from '../helpers/db.js';
import { childEnv, dpuZtpBin, runCli, type ServeProcess, seedDataDir, startServe } from '../helpers/serve.js';
import { tlsEmulator } from './helpers.js';

const PASSWORD = 'cli-Secret-pw-42';

let dir: string;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let dropDb: (() => Promise<void>) | undefined;
let s: ServeProcess | undefined;
let emu: BmcEmulator;
let ca: string;

/** Runs the CLI without blocking this process (the emulated BMC answers from here). */
function cli(args: string[], extraEnv: NodeJS.ProcessEnv = env) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const p = spawn(process.execPath, [dpuZtpBin, ...args, '--api', s!.api, '--data-dir', dataDir], {
      env: extraEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    p.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-inv-cli-'));
  dataDir = join(dir, 'data');
  let databaseUrl: string | undefined;
  if (backend === 'postgres') {
    const created = await createPostgresDatabase();
    databaseUrl = created.url;
    dropDb = created.drop;
  } else seedDataDir(dataDir);
  env = childEnv({ DATABASE_URL: databaseUrl });
  s = await startServe(['--data-dir', dataDir], env);
  ({ emu, ca } = await tlsEmulator({ password: PASSWORD }));
  writeFileSync(join(dir, 'ca.pem'), ca);
  writeFileSync(join(dir, 'pw'), `${PASSWORD}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await s?.stop();
  await emu?.close();
  await dropDb?.();
  rmSync(dir, { recursive: true, force: true });
});

describe(`dpu-ztp bmcs and devices import against serve (${backend})`, () => {
  it('made the secret key file with mode 0600 on first start', () => {
    expect(statSync(join(dataDir, 'secret.key')).mode & 0o777).toBe(0o600);
    expect(s!.logs.join('\n')).toContain('created the secret key');
  });

  it('adds, lists and checks a BMC', async () => {
    const add = await cli([
      'bmcs',
      'add',
      'emu',
      '--address',
      emu.url,
      '--username',
      'admin',
      '--password-file',
      join(dir, 'pw'),
      '--ca-file',
      join(dir, 'ca.pem'),
      '--auth',
      'session',
      '--label',
      'rack=r1',
    ]);
    expect(add.stderr).toBe('');
    expect(add.stdout).toBe(`added BMC emu (${emu.url})\n`);
    expect(add.code).toBe(0);

    const noPw = await cli(['bmcs', 'add', 'other', '--address', 'https://10.0.0.9', '--username', 'u']);
    expect(noPw.code).toBe(1);
    expect(noPw.stderr).toBe('error: API_ERR_BAD_REQUEST: password: required to create BMC other\n');
    const badAddr = await cli(['bmcs', 'add', 'other', '--address', 'https://h/x', '--username', 'u'], {
      ...env,
      DPU_ZTP_BMC_PASSWORD: 'from-env',
    });
    expect(badAddr.stderr).toMatch(/^error: API_ERR_BAD_REQUEST: address: only https:\/\/host\[:port\]/);
    const badLabel = await cli(['bmcs', 'list', '--label', 'oops']);
    expect(badLabel.code).toBe(2);
    expect(badLabel.stderr).toBe('error: CLI_ERR_USAGE: --label must be key=value, got "oops"\n');

    const list = await cli(['bmcs', 'list', '--label', 'rack=r1']);
    expect(list.code).toBe(0);
    expect(list.stdout).toBe(`emu  ${emu.url}  admin  auth=session tls=ca  never checked  rack=r1\n`);
    expect((await cli(['bmcs', 'list', '--label', 'rack=r2'])).stdout).toBe('');

    const check = await cli(['bmcs', 'check', 'emu']);
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(`BMC            ${emu.url}`);
    expect(check.stdout).toContain('(recommended)');
    expect((await cli(['bmcs', 'list'])).stdout).toMatch(/ {2}ok \d{4}-/);
  });

  it('imports devices, printing each row and failing when one is refused', async () => {
    writeFileSync(join(dir, 'devices.csv'), 'serial,bmc,labels\nCLI-1,emu,"rack=r1;slot=1"\nCLI-2,nosuch,\n');
    const r = await cli(['devices', 'import', join(dir, 'devices.csv')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(
      'line 2  CLI-1  created  bmc emu unchanged\n' +
        'line 3  CLI-2  refused  API_ERR_UNKNOWN_BMC: bmc: no BMC nosuch (give bmcAddress, bmcUsername and bmcPassword to create it)\n',
    );
    expect(r.stderr).toBe(
      '1 created, 0 updated, 1 refused\nerror: CLI_ERR_IMPORT_REFUSED: 1 row(s) refused\n',
    );

    writeFileSync(
      join(dir, 'more.ndjson'),
      `${JSON.stringify({ serial: 'CLI-3', bmcAddress: 'https://10.3.0.1', bmcUsername: 'root', bmcPassword: 'nd-pw' })}\n${JSON.stringify({ serial: 'CLI-1', hwModel: 'BF3' })}\n`,
    );
    const dry = await cli(['devices', 'import', join(dir, 'more.ndjson'), '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toBe('1 created, 1 updated, 0 refused (dry run: nothing written)\n');
    const ok = await cli(['devices', 'import', join(dir, 'more.ndjson')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('line 1  CLI-3  created  bmc 10.3.0.1 created\nline 2  CLI-1  updated\n');

    const noFmt = await cli(['devices', 'import', join(dir, 'pw')]);
    expect(noFmt.code).toBe(2);
    expect(noFmt.stderr).toMatch(/^error: CLI_ERR_USAGE: --format must be csv or ndjson/);
    const missing = await cli(['devices', 'import', join(dir, 'none.csv')]);
    expect(missing.stderr).toMatch(/^error: CLI_ERR_FILE: cannot read .*none\.csv: ENOENT\n$/);
  });

  it('will not remove a BMC a device names, and says when there is none', async () => {
    const inUse = await cli(['bmcs', 'rm', 'emu']);
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toBe('error: API_ERR_BMC_IN_USE: BMC emu is named by device(s) CLI-1\n');
    expect((await cli(['bmcs', 'rm', '10.0.0.9'])).stderr).toBe(
      'error: API_ERR_NOT_FOUND: no BMC 10.0.0.9\n',
    );
  });

  it('never logged a password', () => {
    const logs = s!.logs.join('\n');
    expect(logs).toContain('/api/v1/bmcs/emu/check');
    for (const pw of [PASSWORD, 'nd-pw', 'from-env']) expect(logs).not.toContain(pw);
  });

  it('refuses to start with a key that does not open the stored passwords, or a readable key file', async () => {
    await s!.stop();
    const args = [
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
    ];
    const other = runCli(args, { ...env, DPU_ZTP_SECRET_KEY: randomBytes(32).toString('base64') });
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(
      // On PostgreSQL the sealed credentials (server TLS, owner, MASA keys) are opened first.
      /^error: SECRET_ERR_OPEN_FAILED: the secret key does not open the stored (BMC passwords \(BMC [^)]+\)|(tls|owner|masa) credentials' private key): start with the key they were sealed with\n$/,
    );
    const bad = runCli(args, { ...env, DPU_ZTP_SECRET_KEY: 'short' });
    expect(bad.stderr).toBe(
      'error: SECRET_ERR_BAD_KEY: DPU_ZTP_SECRET_KEY: expected 64 hex digits or base64 of 32 bytes\n',
    );
    chmodSync(join(dataDir, 'secret.key'), 0o644);
    const readable = runCli(args, env);
    expect(readable.code).toBe(1);
    expect(readable.stderr).toMatch(
      /^error: SECRET_ERR_UNREADABLE: secret key file .* is readable by others \(chmod 600 it\)\n$/,
    );
    chmodSync(join(dataDir, 'secret.key'), 0o600);

    // With its own key again, the stored password still opens: the check passes.
    s = await startServe(['--data-dir', dataDir], env);
    const check = await cli(['bmcs', 'check', 'emu', '--json']);
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true });
  });
});
