/**
 * Revoking a device identity at run time, through the real `dpu-ztp serve`
 * (built CLI, real mTLS with IDevIDs from `dpu-ztp pki init`):
 *
 * - a fingerprint listed in `<pki-dir>/revoked-idevids.txt` is imported on
 *   start and refused; starting again (a second replica) imports nothing twice;
 * - `dpu-ztp idevids revoke --cert` → the device's next get-bootstrapping-data,
 *   on the same keep-alive TLS connection, is refused with
 *   SZTP_ERR_REVOKED_IDEVID; `idevids unrevoke` → served again; no restart;
 * - PostgreSQL: two replicas on one database — a revocation made on A is
 *   refused by B within a second (NOTIFY), and lifting it on B reaches A alike.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeArtifact, parseCertificate } from '../../pki/index.js';
import { backend, createPostgresDatabase } from '../helpers/db.js';
import { operatorApi } from '../helpers/provision-lab.js';
import {
  childEnv,
  runCli,
  type ServeProcess,
  scaledTimeout,
  seedDataDir,
  startServe,
} from '../helpers/serve.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-revoke-e2e-'));
const pkiDir = join(root, 'pki');
const SECRET = createHash('sha256').update(root).digest('hex');
let env: NodeJS.ProcessEnv;
let dropDb: (() => Promise<void>) | undefined;
const serves: ServeProcess[] = [];
let a: ServeProcess;
let token: string;
const agents = new Map<string, Agent>();
const fingerprints = new Map<string, string>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(name: string): Promise<ServeProcess> {
  const s = await startServe(['--data-dir', join(root, `data-${name}`), '--pki-dir', pkiDir], env, 120_000);
  serves.push(s);
  return s;
}

const api = (s: ServeProcess, method: string, path: string, body?: unknown) =>
  operatorApi(s.api, token, method, path, body);

/** get-bootstrapping-data as `serial`, over its IDevID (one keep-alive agent per device). */
async function fetchData(s: ServeProcess, serial: string): Promise<{ status: number; code?: string }> {
  const res = await request(
    `${s.device}/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/yang-data+json' },
      body: JSON.stringify({ 'ietf-sztp-bootstrap-server:input': { 'signed-data-preferred': [null] } }),
      dispatcher: agents.get(serial) as Agent,
    },
  );
  const text = await res.body.text();
  if (res.statusCode === 200) return { status: 200 };
  const err = JSON.parse(text)['ietf-restconf:errors']?.error?.[0] as
    | { 'error-app-tag'?: string }
    | undefined;
  return { status: res.statusCode, code: err?.['error-app-tag'] ?? text.slice(0, 200) };
}

/** Asks until the answer's status is `want`; resolves with how long that took (ms). */
async function until(s: ServeProcess, serial: string, want: number, limitMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await fetchData(s, serial);
    if (r.status === want) return performance.now() - t0;
    if (performance.now() - t0 > limitMs)
      throw new Error(`${serial} still answered ${r.status} ${r.code ?? ''} after ${limitMs} ms`);
    await sleep(10);
  }
}

const cli = (s: ServeProcess, args: string[]) => runCli([...args, '--api', s.api, '--token', token], env);

beforeAll(async () => {
  const init = runCli(['pki', 'init', '--out', pkiDir, '--devices', 'REV-A,REV-F']);
  expect(init.code, init.stderr).toBe(0);
  for (const serial of ['REV-A', 'REV-F']) {
    const crt = readFileSync(join(pkiDir, `devices/${serial}/idevid.crt`));
    fingerprints.set(serial, parseCertificate(decodeArtifact(crt.toString())).fingerprintSha256);
    agents.set(
      serial,
      new Agent({
        connect: {
          ca: readFileSync(join(pkiDir, 'tls-ca.crt')),
          cert: crt,
          key: readFileSync(join(pkiDir, `devices/${serial}/idevid.key`)),
        },
      }),
    );
  }
  // As `openssl x509 -noout -fingerprint -sha256` prints it: upper case, with its prefix.
  writeFileSync(
    join(pkiDir, 'revoked-idevids.txt'),
    `# returned to the vendor\nSHA256 Fingerprint=${fingerprints.get('REV-F')?.toUpperCase()}\n`,
  );
  if (backend === 'postgres') {
    const created = await createPostgresDatabase();
    dropDb = created.drop;
    env = childEnv({ DATABASE_URL: created.url, DPU_ZTP_SECRET_KEY: SECRET });
  } else {
    env = childEnv({ DPU_ZTP_SECRET_KEY: SECRET });
    seedDataDir(join(root, 'data-a'));
  }
  a = await start('a');
  token = readFileSync(join(root, 'data-a', 'admin-token'), 'utf8').trim();
  expect(
    (
      await api(a, 'PUT', '/api/v1/profiles/rev', {
        type: 'onboarding',
        configurationHandling: 'replace',
        configuration: 'hostname rev\n',
      })
    ).status,
  ).toBe(201);
  for (const serial of ['REV-A', 'REV-F'])
    expect((await api(a, 'PUT', `/api/v1/devices/${serial}`, { profile: 'rev' })).status).toBe(201);
}, scaledTimeout(180_000));

afterAll(async () => {
  for (const ag of agents.values()) await ag.close();
  for (const s of serves) expect(await s.stop()).toBe(0);
  await dropDb?.();
  rmSync(root, { recursive: true, force: true });
});

describe(`revoking IDevIDs at run time (${backend})`, () => {
  it('refuses a device listed in revoked-idevids.txt: the file is imported into the table on start', async () => {
    const f = fingerprints.get('REV-F') as string;
    expect(await fetchData(a, 'REV-F')).toEqual({ status: 401, code: 'SZTP_ERR_REVOKED_IDEVID' });
    const list = await api(a, 'GET', '/api/v1/revoked-idevids');
    expect(list.body.items).toEqual([
      expect.objectContaining({ fingerprint: f, revokedBy: `file:${join(pkiDir, 'revoked-idevids.txt')}` }),
    ]);
    expect(a.logs.join('')).toMatch(/imported revoked IDevIDs from the file/);
  });

  it('revoke over the CLI → refused on the next request of the same connection; unrevoke → served again, no restart', async () => {
    expect(await fetchData(a, 'REV-A')).toEqual({ status: 200 });
    const revoke = cli(a, [
      'idevids',
      'revoke',
      '--cert',
      join(pkiDir, 'devices/REV-A/idevid.crt'),
      '--reason',
      'e2e: key leaked',
    ]);
    expect(revoke.code, revoke.stderr).toBe(0);
    const f = fingerprints.get('REV-A') as string;
    expect(revoke.stdout).toContain(`revoked ${f}`);
    // The CLI's answer came after this replica's set changed: the very next request is refused.
    expect(await fetchData(a, 'REV-A')).toEqual({ status: 401, code: 'SZTP_ERR_REVOKED_IDEVID' });
    const list = cli(a, ['idevids', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${f}  \\S+  \\S+  e2e: key leaked$`, 'm'));
    // Pasted as openssl prints it (upper case): the CLI normalises.
    const unrevoke = cli(a, ['idevids', 'unrevoke', f.toUpperCase()]);
    expect(unrevoke.code, unrevoke.stderr).toBe(0);
    expect(await fetchData(a, 'REV-A')).toEqual({ status: 200 });
    const again = cli(a, ['idevids', 'unrevoke', f]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: API_ERR_NOT_FOUND: /);
    const bad = cli(a, ['idevids', 'revoke', 'abc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/CLI_ERR_USAGE/);
  });

  it.skipIf(backend !== 'postgres')(
    'two replicas on one PostgreSQL: revoked on A → refused by B within a second; lifted on B → served by A within a second',
    async () => {
      // B starts with the same PKI directory: it imports the file again, which adds nothing.
      const b = await start('b');
      expect(b.logs.join('')).not.toMatch(/imported revoked IDevIDs from the file/);
      const fileAudit = await api(
        a,
        'GET',
        `/api/v1/audit?action=idevid.revoke&actor=${encodeURIComponent(`file:${join(pkiDir, 'revoked-idevids.txt')}`)}`,
      );
      expect(fileAudit.status).toBe(200);
      expect(fileAudit.body.items).toHaveLength(1);
      const f = fingerprints.get('REV-A') as string;
      const timings: number[] = [];
      for (let round = 0; round < 3; round++) {
        expect(await fetchData(b, 'REV-A')).toEqual({ status: 200 });
        expect(
          (await api(a, 'PUT', `/api/v1/revoked-idevids/${f}`, { reason: `round ${round}` })).status,
        ).toBe(201);
        timings.push(await until(b, 'REV-A', 401, 1000));
        expect(await fetchData(b, 'REV-A')).toEqual({ status: 401, code: 'SZTP_ERR_REVOKED_IDEVID' });
        expect((await api(b, 'DELETE', `/api/v1/revoked-idevids/${f}`)).status).toBe(204);
        timings.push(await until(a, 'REV-A', 200, 1000));
      }
      // The numbers the README quotes come from here.
      process.stderr.write(
        `revocation reached the other replica in ${timings.map((t) => t.toFixed(0)).join(', ')} ms\n`,
      );
      for (const t of timings) expect(t).toBeLessThan(1000);
    },
    scaledTimeout(180_000),
  );
});
