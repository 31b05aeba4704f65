/**
 * `bmc discover`: address ranges, and a probe of several loopback addresses
 * holding emulated BMCs of mixed personas (DPU and host BMCs), a listener
 * that is not Redfish, and addresses where nothing listens.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BmcEmulator, discoverBmcs, expandAddressRange, startBmcEmulator } from '../../redfish/index.js';
import { childEnv, dpuZtpBin, runCli } from '../helpers/serve.js';
import { FAST_EMULATOR } from './helpers.js';

/** Runs the CLI without blocking this process (the emulators answer from here). */
function runCliAsync(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [dpuZtpBin, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('expandAddressRange', () => {
  it('expands ranges, short ranges, CIDR blocks and single addresses', () => {
    expect(expandAddressRange('10.0.0.10-10.0.0.12')).toEqual(['10.0.0.10', '10.0.0.11', '10.0.0.12']);
    expect(expandAddressRange('10.0.0.254-10.0.1.1')).toEqual([
      '10.0.0.254',
      '10.0.0.255',
      '10.0.1.0',
      '10.0.1.1',
    ]);
    expect(expandAddressRange('10.0.0.10-11')).toEqual(['10.0.0.10', '10.0.0.11']);
    expect(expandAddressRange('192.168.1.0/30')).toEqual(['192.168.1.1', '192.168.1.2']);
    expect(expandAddressRange('192.168.1.7/31')).toEqual(['192.168.1.6', '192.168.1.7']);
    expect(expandAddressRange('192.168.1.7/32')).toEqual(['192.168.1.7']);
    expect(expandAddressRange('10.1.2.3/24')).toHaveLength(254);
    expect(expandAddressRange('fe80::1')).toEqual(['fe80::1']);
  });

  it.each([
    ['10.0.0.12-10.0.0.10', /ends before/],
    ['10.0.0.0/16', /more than 4096/],
    ['10.0.0.300', /expected/],
    ['10.0.0.1/33', /above 32/],
    ['host.example', /expected/],
    ['10.0.0.1-', /expected/],
  ])('refuses %s', (spec, why) => {
    expect(() => expandAddressRange(spec)).toThrow(why);
  });
});

describe('probing loopback addresses', () => {
  const emulators: BmcEmulator[] = [];
  let plain: Server;
  let port = 0;
  const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-discover-'));

  beforeAll(async () => {
    const first = await startBmcEmulator({
      ...FAST_EMULATOR,
      host: '127.0.0.2',
      persona: 'generic',
      serial: 'DISC-A',
    });
    emulators.push(first);
    port = Number(new URL(first.url).port);
    emulators.push(
      await startBmcEmulator({
        ...FAST_EMULATOR,
        host: '127.0.0.3',
        port,
        persona: 'bluefield',
        serial: 'DISC-B',
      }),
    );
    emulators.push(
      await startBmcEmulator({
        ...FAST_EMULATOR,
        host: '127.0.0.4',
        port,
        persona: 'idrac',
        serial: 'HOST-C',
      }),
    );
    // Something that answers HTTP but is no Redfish service.
    plain = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>printer</h1>'),
    );
    await new Promise<void>((r) => plain.listen(port, '127.0.0.5', r));
    writeFileSync(join(dir, 'password'), `${FAST_EMULATOR.password ?? 'password'}\n`);
  });

  afterAll(async () => {
    await Promise.all(emulators.map((e) => e.close()));
    await new Promise((r) => plain?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds exactly the DPU BMCs, with their serials and why they count', async () => {
    const results = await discoverBmcs({
      addresses: expandAddressRange('127.0.0.2-127.0.0.6'),
      port,
      scheme: 'http',
      username: FAST_EMULATOR.username ?? 'admin',
      password: FAST_EMULATOR.password ?? 'password',
      timeoutMs: 2000,
    });
    expect(results.map((r) => [r.address, r.redfish, r.dpu])).toEqual([
      ['127.0.0.2', true, true],
      ['127.0.0.3', true, true],
      ['127.0.0.4', true, false],
      ['127.0.0.5', false, false],
      ['127.0.0.6', false, false],
    ]);
    expect(results[0]?.systems.find((s) => s.dpu)).toMatchObject({ serial: 'DISC-A', dpu: 'SystemType DPU' });
    expect(results[1]?.systems.find((s) => s.dpu)).toMatchObject({ serial: 'DISC-B' });
    expect(results[2]?.reason).toMatch(/no DPU system/);
    expect(results[3]?.reason).toMatch(/no Redfish service root/);
  });

  it('dpu-ztp bmc discover --json prints the same findings', async () => {
    const r = await runCliAsync(
      [
        'bmc',
        'discover',
        '--range',
        '127.0.0.2-6',
        '--port',
        String(port),
        '--http',
        '--username',
        FAST_EMULATOR.username ?? 'admin',
        '--password-file',
        join(dir, 'password'),
        '--json',
      ],
      childEnv(),
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { probed: number; found: { address: string; dpu: boolean }[] };
    expect(out.probed).toBe(5);
    expect(out.found.map((f) => [f.address, f.dpu])).toEqual([
      ['127.0.0.2', true],
      ['127.0.0.3', true],
      ['127.0.0.4', false],
    ]);
  });

  it('refuses --register with --http (BMC records are https only) before probing anything', () => {
    const r = runCli(
      ['bmc', 'discover', '--range', '127.0.0.2', '--http', '--register', '--username', 'u'],
      childEnv({ DPU_ZTP_BMC_PASSWORD: 'x' }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CLI_ERR_USAGE.*--register needs https/);
  });

  it('refuses a bad range with a usage error', () => {
    const r = runCli(
      ['bmc', 'discover', '--range', '10.0.0.0/8', '--username', 'u'],
      childEnv({ DPU_ZTP_BMC_PASSWORD: 'x' }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CLI_ERR_USAGE.*more than 4096/);
  });
});
