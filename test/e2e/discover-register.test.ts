/**
 * `dpu-ztp bmc discover --register` end to end: emulated BMCs serving real TLS
 * (a certificate made by pki/ at test time, passed as `--ca`) on several
 * loopback addresses sharing one random port — two DPU personas and a second
 * generic DPU, a host BMC (iDRAC persona, SystemType Physical), an HTTPS
 * listener that is not Redfish, and an address where nothing listens — against
 * a live `dpu-ztp serve`. The first run finds exactly the DPUs and creates
 * their BMC records and devices through the operator API; the second changes
 * nothing (same records, same update times, no new audit records).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCert } from '../../cli/commands/bmc.js';
import { type BmcEmulator, type EmulatorPersonaId, startBmcEmulator } from '../../redfish/index.js';
import { FAST_EMULATOR } from '../redfish/helpers.js';
import {
  childEnv,
  dpuZtpBin,
  type ServeProcess,
  scaledTimeout,
  seedDataDir,
  startServe,
} from '../helpers/serve.js';
import { repeatsPgliteRun } from '../helpers/db.js';

const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-discover-register-'));
const dataDir = join(dir, 'data');
const BMCS: Array<[string, EmulatorPersonaId, string]> = [
  ['127.0.0.2', 'generic', 'DISC-REG-A'],
  ['127.0.0.3', 'bluefield', 'DISC-REG-B'],
  ['127.0.0.4', 'idrac', 'HOST-REG-C'],
  ['127.0.0.6', 'generic', 'DISC-REG-D'],
];
const NOT_REDFISH = '127.0.0.5'; // 127.0.0.7: nothing listens
const DPUS = ['DISC-REG-A', 'DISC-REG-B', 'DISC-REG-D'];

let serve: ServeProcess;
let port = 0;
let token = '';
const emulators: BmcEmulator[] = [];
let plain: Server | undefined;

function discover(extra: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [
        dpuZtpBin,
        'bmc',
        'discover',
        '--range',
        '127.0.0.2-7',
        '--port',
        String(port),
        '--username',
        FAST_EMULATOR.username as string,
        '--password-file',
        join(dir, 'bmc.pw'),
        '--ca',
        join(dir, 'bmc-ca.pem'),
        '--timeout',
        String(scaledTimeout(3000)),
        '--register',
        '--profile',
        'lab',
        '--api',
        serve.api,
        '--token',
        token,
        ...extra,
      ],
      { env: childEnv(), timeout: scaledTimeout(60_000) },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * The operator API; a 503 (the service's event-loop guard on a loaded machine) is retried, as a
 * client should — every call here is safe to repeat.
 */
async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  for (let tries = 1; ; tries++) {
    const res = await fetch(`${serve.api}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (res.status === 503 && tries < 20) {
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** What register may change: the BMC records, the devices, and the audit log. */
async function inventory() {
  const bmcs = (await api<{ items: any[] }>('GET', '/api/v1/bmcs?limit=100')).items;
  const devices = (await api<{ items: any[] }>('GET', '/api/v1/devices?limit=100')).items;
  const audit = (await api<{ items: any[] }>('GET', '/api/v1/audit?limit=200')).items;
  return { bmcs, devices, audit };
}

beforeAll(async () => {
  const tls = await selfSignedCert(['127.0.0.1', ...BMCS.map(([a]) => a), NOT_REDFISH]);
  writeFileSync(join(dir, 'bmc-ca.pem'), tls.cert);
  writeFileSync(join(dir, 'bmc.pw'), `${FAST_EMULATOR.password}\n`);
  // One random port: the first emulator picks it, every other address binds the same one.
  for (const [host, persona, serial] of BMCS) {
    const emu = await startBmcEmulator({ ...FAST_EMULATOR, host, port, persona, serial, tls });
    port = Number(new URL(emu.url).port);
    emulators.push(emu);
  }
  plain = createServer(tls, (_req, res) =>
    res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>printer</h1>'),
  );
  await new Promise<void>((r) => plain?.listen(port, NOT_REDFISH, r));
  serve = await startServe(['--data-dir', seedDataDir(dataDir)], childEnv(), 120_000);
  token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  await api('PUT', '/api/v1/profiles/lab', {
    type: 'onboarding',
    configurationHandling: 'merge',
    configuration: 'hostname lab\n',
  });
}, scaledTimeout(180_000));

afterAll(async () => {
  await serve?.stop();
  await Promise.all(emulators.map((e) => e.close()));
  await new Promise((r) => plain?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(repeatsPgliteRun)(
  'bmc discover --register against a live serve (TLS BMCs on loopback addresses)',
  {
    timeout: scaledTimeout(120_000),
  },
  () => {
    it('finds exactly the DPU BMCs and registers each BMC and device once; a second run changes nothing', async () => {
      const first = await discover([]);
      expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
      expect(first.stdout).toMatch(/^6 addresses probed: 4 Redfish services, 3 DPU BMCs$/m);
      expect(first.stdout).toMatch(/^https:\/\/127\.0\.0\.4:\d+ +Redfish, not a DPU: no DPU system/m);
      for (const [i, serial] of DPUS.entries()) {
        const addr = ['127.0.0.2', '127.0.0.3', '127.0.0.6'][i] as string;
        const id = `bmc-${addr.replace(/\./g, '-')}-p${port}`;
        expect(first.stdout).toContain(`registered ${serial} via ${id}: BMC created, device created`);
      }
      expect(first.stdout).not.toMatch(/HOST-REG-C|127\.0\.0\.5:\d+ +DPU/);

      const after = await inventory();
      expect(
        after.bmcs.map((b) => [b.id, b.address, b.username, Boolean(b.caCertificate), b.insecure]),
      ).toEqual(
        ['127.0.0.2', '127.0.0.3', '127.0.0.6'].map((a) => [
          `bmc-${a.replace(/\./g, '-')}-p${port}`,
          `https://${a}:${port}`,
          'admin',
          true,
          false,
        ]),
      );
      expect(
        after.devices
          .map((d) => [d.serial, d.bmc, d.profile])
          .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      ).toEqual(
        DPUS.map((s, i) => [
          s,
          `bmc-${['127.0.0.2', '127.0.0.3', '127.0.0.6'][i]?.replace(/\./g, '-')}-p${port}`,
          'lab',
        ]),
      );
      const again = await discover(['--json']);
      expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
      const doc = JSON.parse(again.stdout) as {
        found: Array<{ address: string; dpu: boolean }>;
        registrations: Array<{ serial: string; bmcRecord: string; device: string }>;
      };
      expect(doc.found.map((f) => [f.address, f.dpu])).toEqual([
        ['127.0.0.2', true],
        ['127.0.0.3', true],
        ['127.0.0.4', false],
        ['127.0.0.6', true],
      ]);
      expect(doc.registrations).toEqual(
        DPUS.map((serial, i) => ({
          serial,
          bmc: `bmc-${['127.0.0.2', '127.0.0.3', '127.0.0.6'][i]?.replace(/\./g, '-')}-p${port}`,
          bmcRecord: 'unchanged',
          device: 'unchanged',
        })),
      );
      // Nothing moved: the same records with the same update times, and no new audit records.
      expect(await inventory()).toEqual(after);

      // The stored BMC works with the CA it was registered with: the service's own check reaches it.
      const check = await api('POST', `/api/v1/bmcs/${after.bmcs[1].id}/check`);
      expect(check.lastCheck ?? check, JSON.stringify(check)).toMatchObject({ ok: true });
    });
  },
);
