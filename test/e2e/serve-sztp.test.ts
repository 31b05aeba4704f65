/**
 * End to end through the real `dpu-ztp serve` process: a PKI from
 * `dpu-ztp pki init`, tokens from `dpu-ztp tokens create`, a profile and a
 * device through the operator API, then a device over real mTLS fetching,
 * verifying (`sztp-client verify`) and reporting progress, and the owner
 * certificate replaced at run time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCertificate,
  decodeArtifact,
  generateKey,
  signerFromPrivateKey,
  toPem,
} from '../../pki/index.js';
import { backend, createPostgresDatabase } from '../helpers/db.js';
import { childEnv, repoRoot, runCli, type ServeProcess, seedDataDir, startServe } from '../helpers/serve.js';
import { haveTool } from '../helpers/tools.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-e2e-'));
const pkiDir = join(root, 'pki');
const dataDir = join(root, 'data');
let serve: ServeProcess;
let env: NodeJS.ProcessEnv;
let dropDb: (() => Promise<void>) | undefined;
let operator: string;
let device: Agent;
/** The owner-certificate member served after the owner rotation (base64). */
let rotatedOwnerCertificate: string | undefined;

async function api(method: string, path: string, body?: unknown, token = operator) {
  const res = await fetch(`${serve.api}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function rpc(op: string, input: unknown) {
  const res = await request(`${serve.device}/restconf/operations/ietf-sztp-bootstrap-server:${op}`, {
    method: 'POST',
    headers: { 'content-type': 'application/yang-data+json' },
    body: JSON.stringify({ 'ietf-sztp-bootstrap-server:input': input }),
    dispatcher: device,
  });
  return { status: res.statusCode, text: await res.body.text() };
}

function verify(out: Record<string, string>) {
  for (const k of ['conveyed-information', 'owner-certificate', 'ownership-voucher'])
    writeFileSync(join(root, k), out[k] as string);
  return spawnSync(
    process.execPath,
    [
      join(repoRoot, 'dist/cli/sztp-client.js'),
      'verify',
      '--conveyed-information',
      join(root, 'conveyed-information'),
      '--owner-certificate',
      join(root, 'owner-certificate'),
      '--ownership-voucher',
      join(root, 'ownership-voucher'),
      '--manufacturer-trust-anchor',
      join(pkiDir, 'masa-ca.crt'),
      '--serial-number',
      'DEV-E2E',
    ],
    { encoding: 'utf8' },
  );
}

beforeAll(async () => {
  const init = runCli(['pki', 'init', '--out', pkiDir, '--devices', 'DEV-E2E']);
  expect(init.code, init.stderr).toBe(0);
  if (backend === 'postgres') {
    const created = await createPostgresDatabase();
    dropDb = created.drop;
    env = childEnv({ DATABASE_URL: created.url });
  } else {
    env = childEnv();
    seedDataDir(dataDir);
  }
  serve = await startServe(['--data-dir', dataDir, '--pki-dir', pkiDir], env);
  device = new Agent({
    connect: {
      ca: readFileSync(join(pkiDir, 'tls-ca.crt')),
      cert: readFileSync(join(pkiDir, 'devices/DEV-E2E/idevid.crt')),
      key: readFileSync(join(pkiDir, 'devices/DEV-E2E/idevid.key')),
    },
  });
}, 120_000);

afterAll(async () => {
  await device?.close();
  if (serve) expect(await serve.stop()).toBe(0);
  await dropDb?.();
  rmSync(root, { recursive: true, force: true });
});

describe(`dpu-ztp serve end to end (${backend})`, () => {
  it('writes the first admin token (mode 0600) and mints an operator token through the CLI', () => {
    const file = join(dataDir, 'admin-token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const r = runCli(
      ['tokens', 'create', '--role', 'operator', '--name', 'e2e', '--api', serve.api, '--data-dir', dataDir],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    operator = r.stdout.trim();
    expect(operator).toMatch(/^dztp_/);
    const bad = runCli(
      ['tokens', 'create', '--role', 'operator', '--api', serve.api, '--token', operator],
      env,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^error: API_ERR_FORBIDDEN: /);
  });

  it('onboards a registered device over mTLS and records its progress', async () => {
    expect(
      (
        await api('PUT', '/api/v1/profiles/e2e', {
          type: 'onboarding',
          configurationHandling: 'replace',
          configuration: 'hostname e2e\n',
        })
      ).status,
    ).toBe(201);
    expect((await api('PUT', '/api/v1/devices/DEV-E2E', { profile: 'e2e', hwModel: 'bf3' })).status).toBe(
      201,
    );
    const r = await rpc('get-bootstrapping-data', { 'signed-data-preferred': [null] });
    expect(r.status, r.text).toBe(200);
    const v = verify(JSON.parse(r.text)['ietf-sztp-bootstrap-server:output']);
    expect(v.status, v.stderr).toBe(0);
    expect(
      Buffer.from(
        JSON.parse(v.stdout)['ietf-sztp-conveyed-info:onboarding-information'].configuration,
        'base64',
      ).toString(),
    ).toBe('hostname e2e\n');
    expect((await rpc('report-progress', { 'progress-type': 'bootstrap-initiated' })).status).toBe(204);
    expect(
      (await rpc('report-progress', { 'progress-type': 'bootstrap-complete', message: 'done' })).status,
    ).toBe(204);
    const d = await api('GET', '/api/v1/devices/DEV-E2E');
    expect(d.body).toMatchObject({
      state: 'provisioned',
      lastProgress: { type: 'bootstrap-complete', message: 'done' },
    });
    const ev = await api('GET', '/api/v1/devices/DEV-E2E/events');
    expect(ev.body.items.map((e: { kind: string }) => e.kind)).toEqual([
      'bootstrap-request',
      'progress',
      'progress',
    ]);
  });

  it('shows the owner certificate without its key, and swaps in a new one that devices then verify', async () => {
    const before = await api('GET', '/api/v1/owner');
    expect(before.status).toBe(200);
    // PostgreSQL: the replicas' shared credentials live in the database, keys sealed.
    expect(before.body.keyReference).toBe(
      backend === 'postgres' ? 'database:credentials/owner (sealed)' : `file:${join(pkiDir, 'owner.key')}`,
    );
    expect(JSON.stringify(before.body)).not.toMatch(/PRIVATE KEY/);
    // A new owner certificate from the same owner CA.
    const k = await generateKey('ec-p256');
    const ca = signerFromPrivateKey(readFileSync(join(pkiDir, 'owner-ca.key'), 'utf8'), {
      certificates: [decodeArtifact(readFileSync(join(pkiDir, 'owner-ca.crt'), 'utf8'))],
    });
    const now = Date.now();
    const der = await createCertificate({
      profile: 'signing',
      subject: { commonName: 'Rotated Owner' },
      publicKey: k.publicKey,
      issuer: ca,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
    });
    const forbidden = await api('PUT', '/api/v1/owner', {
      certificateChain: toPem(der, 'CERTIFICATE'),
      privateKey: k.privateKeyPem,
    });
    expect(forbidden.status).toBe(403); // admin only
    const admin = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const wrongKey = await api(
      'PUT',
      '/api/v1/owner',
      {
        certificateChain: toPem(der, 'CERTIFICATE'),
        privateKey: readFileSync(join(pkiDir, 'owner.key'), 'utf8'),
      },
      admin,
    );
    expect(wrongKey.status).toBe(400);
    expect(wrongKey.body.detail).toMatch(/does not belong/);
    const put = await api(
      'PUT',
      '/api/v1/owner',
      { certificateChain: toPem(der, 'CERTIFICATE'), privateKey: k.privateKeyPem },
      admin,
    );
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.subject).toMatch(/Rotated Owner/);
    if (backend === 'pglite') expect(statSync(join(pkiDir, 'owner.key')).mode & 0o777).toBe(0o600);
    const r = await rpc('get-bootstrapping-data', { 'signed-data-preferred': [null] });
    const out = JSON.parse(r.text)['ietf-sztp-bootstrap-server:output'];
    const v = verify(out);
    expect(v.status, v.stderr).toBe(0);
    rotatedOwnerCertificate = out['owner-certificate'];
  });

  it.skipIf(!haveTool('openssl'))('openssl reads the rotated owner certificate from the response', () => {
    expect(rotatedOwnerCertificate).toBeDefined();
    const oc = spawnSync('openssl', ['pkcs7', '-inform', 'DER', '-print_certs', '-noout'], {
      input: Buffer.from(rotatedOwnerCertificate as string, 'base64'),
      encoding: 'utf8',
    });
    expect(oc.status, oc.stderr).toBe(0);
    expect(oc.stdout).toMatch(/Rotated Owner/);
  });
});
