/**
 * The device side end to end over real mTLS: a PKI from `dpu-ztp pki init`,
 * the device listener on loopback, undici as the device. Every response,
 * success and error, JSON and XML, validates with yanglint; signed artifacts
 * are accepted by `sztp-client verify` and by `openssl cms -verify`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceStateLifecycle } from '../../bootstrap/index.js';
import { loadServerPki } from '../../cli/commands/serve-pki.js';
import { migrateToLatest } from '../../db/index.js';
import {
  createCertificate,
  decodeArtifact,
  generateKey,
  hashPassword,
  parseCertificate,
  signerFromPrivateKey,
  toPem,
} from '../../pki/index.js';
import {
  BootstrapService,
  buildDeviceServer,
  PROGRESS_TYPES,
  type ServerPki,
} from '../../sztp-server/index.js';
import { backend, freshDatabase, type TestDatabase } from '../helpers/db.js';
import { repoRoot, runCli } from '../helpers/serve.js';
import { haveTool } from '../helpers/tools.js';
import { jsonAsRpc, xmlAsRpc, yanglint } from '../helpers/yang.js';

const silent = pino({ level: 'silent' });
const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-restconf-'));
const pkiDir = join(root, 'pki');
const otherDir = join(root, 'other');
const SERIALS = ['DEV-1', 'DEV-2', 'DEV-3', 'DEV-HOLD', 'DEV-OPI', 'DEV-NOPROF', 'DEV-REDIR'];
const haveYanglint = haveTool('yanglint');
const haveOpenssl = haveTool('openssl');

let t: TestDatabase;
let app: FastifyInstance;
let service: BootstrapService;
let base: string;
let pki: ServerPki;
const agents = new Map<string, Agent>();
const rd = (p: string) => readFileSync(join(pkiDir, p));

function agentFor(device: string | null, dir = pkiDir, certPem?: string, keyPem?: string): Agent {
  const key = `${dir}|${device}|${certPem?.length ?? 0}`;
  let a = agents.get(key);
  if (!a) {
    a = new Agent({
      connect: {
        ca: rd('tls-ca.crt'),
        ...(device
          ? {
              cert: certPem ?? readFileSync(join(dir, 'devices', device, 'idevid.crt')),
              key: keyPem ?? readFileSync(join(dir, 'devices', device, 'idevid.key')),
            }
          : {}),
      },
    });
    agents.set(key, a);
  }
  return a;
}

interface Call {
  device?: string | null;
  dir?: string;
  cert?: string;
  key?: string;
  basic?: [string, string];
  contentType?: string | null;
  accept?: string;
  body?: string;
}

/** The job trace the hook reports for DEV-2 (as the jobs code will). */
const JOB_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

async function rpc(op: 'get-bootstrapping-data' | 'report-progress', c: Call = {}) {
  const headers: Record<string, string> = {};
  if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/yang-data+json';
  if (c.accept) headers.accept = c.accept;
  if (c.basic)
    headers.authorization = `Basic ${Buffer.from(`${c.basic[0]}:${c.basic[1]}`).toString('base64')}`;
  const res = await request(`${base}/restconf/operations/ietf-sztp-bootstrap-server:${op}`, {
    method: 'POST',
    headers,
    body: c.body ?? '',
    dispatcher: agentFor(c.device === undefined ? 'DEV-1' : c.device, c.dir, c.cert, c.key),
  });
  return {
    status: res.statusCode,
    type: String(res.headers['content-type'] ?? ''),
    traceparent: res.headers.traceparent,
    text: await res.body.text(),
  };
}

const gbd = (input: Record<string, unknown> = { 'signed-data-preferred': [null] }) =>
  JSON.stringify({ 'ietf-sztp-bootstrap-server:input': input });
const progress = (input: Record<string, unknown>) =>
  JSON.stringify({ 'ietf-sztp-bootstrap-server:input': input });

function expectRestconfError(
  r: { status: number; type: string; text: string },
  status: number,
  tag: string,
  code: string,
) {
  expect(r.status, r.text).toBe(status);
  const xml = r.type.includes('xml');
  if (xml) {
    expect(r.text).toContain(`<error-tag>${tag}</error-tag>`);
    expect(r.text).toContain(`<error-app-tag>${code}</error-app-tag>`);
  } else {
    const e = JSON.parse(r.text)['ietf-restconf:errors'].error[0];
    expect(e['error-tag']).toBe(tag);
    expect(e['error-app-tag']).toBe(code);
    expect(e['error-message'].length).toBeGreaterThan(5);
  }
  if (haveYanglint) {
    const v = yanglint('data', 'ietf-restconf', r.text, xml ? 'xml' : 'json');
    expect(v.ok, v.out).toBe(true);
  }
}

beforeAll(async () => {
  const init = runCli(['pki', 'init', '--out', pkiDir, '--devices', SERIALS.join(',')]);
  expect(init.code, init.stderr).toBe(0);
  const other = runCli(['pki', 'init', '--out', otherDir, '--devices', 'DEV-1']);
  expect(other.code, other.stderr).toBe(0);
  t = await freshDatabase();
  await migrateToLatest(t.db);
  const loaded = await loadServerPki(pkiDir, silent);
  pki = loaded.pki;
  const revoked = new Set([
    parseCertificate(decodeArtifact(rd('devices/DEV-3/idevid.crt').toString())).fingerprintSha256,
  ]);
  service = new BootstrapService({
    lifecycle: new DeviceStateLifecycle(t.db),
    deviceCacheMs: 0, // these tests change rows directly and expect the next request to see it
    db: t.db,
    pki,
    revokedFingerprints: revoked,
    unknownDevicePolicy: 'reject',
    activeTraceparent: (serial) => (serial === 'DEV-2' ? JOB_TRACEPARENT : undefined),
    resolveImage: async (name, b) =>
      name === 'os.img'
        ? { downloadUris: [`${b.https}/images/os.img`, `${b.http}/images/os.img`], sha256: 'ab'.repeat(32) }
        : undefined,
  });
  app = await buildDeviceServer({
    logger: silent,
    tls: { ...pki.tls, ca: pki.manufacturerAnchors.map((d) => toPem(d, 'CERTIFICATE')) },
    service,
    imageBase: () => ({ https: 'https://sztp.example:8443', http: 'http://sztp.example:8081' }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  base = `https://127.0.0.1:${addr.port}`;

  const db = t.db;
  await db
    .insertInto('images')
    .values({
      name: 'os.img',
      size: 10,
      sha256: 'ab'.repeat(32),
      sha384: 'cd'.repeat(48),
      sha512: 'ef'.repeat(64),
      content_type: 'application/octet-stream',
      path: '/dev/null',
    })
    .execute();
  const profile = (name: string, spec: Record<string, unknown>) =>
    db
      .insertInto('profiles')
      .values({ name, spec: JSON.stringify(spec), updated_at: new Date() })
      .execute();
  await profile('onb', {
    type: 'onboarding',
    bootImage: { osName: 'DPU-OS', osVersion: '2.1', image: 'os.img' },
    configurationHandling: 'merge',
    configuration: 'hostname dpu\n',
    preConfigurationScript: '#!/bin/sh\necho pre\n',
    postConfigurationScript: '#!/bin/sh\necho post\n',
  });
  await profile('unsigned', {
    type: 'onboarding',
    configurationHandling: 'replace',
    configuration: 'x',
    signed: false,
  });
  await profile('redir', {
    type: 'redirect',
    signed: false,
    bootstrapServers: [
      { address: 'sztp2.example.com', port: 8443, trustAnchor: rd('tls-ca.crt').toString() },
    ],
  });
  await profile('opi', {
    type: 'onboarding',
    bootImage: { osName: 'DPU-OS', osVersion: '2.1', image: 'os.img' },
    configurationHandling: 'merge',
    configuration: 'c',
    responseFormat: 'opi-agent',
  });
  const device = async (serial: string, p: string | null, extra: Record<string, unknown> = {}) =>
    db
      .insertInto('devices')
      .values({ serial, profile: p, updated_at: new Date(), ...extra })
      .execute();
  await device('DEV-1', 'onb', { password_hash: await hashPassword('dev1-password') });
  await device('DEV-2', 'unsigned', { password_hash: await hashPassword('dev2-password') });
  await device('DEV-3', 'onb');
  await device('DEV-OPI', 'opi', { password_hash: await hashPassword('opi-password') });
  await device('DEV-NOPROF', null);
  await device('DEV-REDIR', 'redir');
}, 120_000);

afterAll(async () => {
  for (const a of agents.values()) await a.close();
  await app?.close();
  await t?.drop();
  rmSync(root, { recursive: true, force: true });
});

describe(`get-bootstrapping-data over mTLS (${backend})`, () => {
  it('hands a device with an active job its trace in a traceparent header, and no header to others', async () => {
    const withJob = await rpc('get-bootstrapping-data', { device: 'DEV-2', body: gbd({}) });
    expect(withJob.status, withJob.text).toBe(200);
    expect(withJob.traceparent).toBe(JOB_TRACEPARENT);
    const without = await rpc('get-bootstrapping-data', { body: gbd({}) });
    expect(without.status, without.text).toBe(200);
    expect(without.traceparent).toBeUndefined();
  });

  it('serves signed onboarding information that sztp-client verify and openssl both accept', async () => {
    const nonce = Buffer.alloc(24, 7).toString('base64');
    const r = await rpc('get-bootstrapping-data', {
      body: gbd({ 'signed-data-preferred': [null], 'hw-model': 'bf3', nonce }),
    });
    expect(r.status, r.text).toBe(200);
    expect(r.type).toMatch(/^application\/yang-data\+json/);
    const out = JSON.parse(r.text)['ietf-sztp-bootstrap-server:output'];
    expect(Object.keys(out).sort()).toEqual([
      'conveyed-information',
      'owner-certificate',
      'ownership-voucher',
      'reporting-level',
    ]);
    if (haveYanglint) {
      const v = yanglint(
        'reply',
        'ietf-sztp-bootstrap-server',
        jsonAsRpc(r.text, 'get-bootstrapping-data', 'output'),
        'json',
      );
      expect(v.ok, v.out).toBe(true);
    }
    const files = { ci: join(root, 'ci.b64'), oc: join(root, 'oc.b64'), ov: join(root, 'ov.b64') };
    writeFileSync(files.ci, out['conveyed-information']);
    writeFileSync(files.oc, out['owner-certificate']);
    writeFileSync(files.ov, out['ownership-voucher']);
    const verify = spawnSync(
      process.execPath,
      [
        join(repoRoot, 'dist/cli/sztp-client.js'),
        'verify',
        '--conveyed-information',
        files.ci,
        '--owner-certificate',
        files.oc,
        '--ownership-voucher',
        files.ov,
        '--manufacturer-trust-anchor',
        join(pkiDir, 'manufacturer-ca.crt'),
        '--serial-number',
        'DEV-1',
        '--nonce',
        nonce,
      ],
      { encoding: 'utf8' },
    );
    expect(verify.status, verify.stderr).toBe(0);
    const info = JSON.parse(verify.stdout)['ietf-sztp-conveyed-info:onboarding-information'];
    expect(info['boot-image']).toEqual({
      'os-name': 'DPU-OS',
      'os-version': '2.1',
      'download-uri': ['https://sztp.example:8443/images/os.img', 'http://sztp.example:8081/images/os.img'],
      'image-verification': [
        { 'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256', 'hash-value': Array(32).fill('ab').join(':') },
      ],
    });
    expect(Buffer.from(info.configuration, 'base64').toString()).toBe('hostname dpu\n');
    // The wrong serial must fail verification (the voucher pins DEV-1).
    const wrong = spawnSync(
      process.execPath,
      [
        join(repoRoot, 'dist/cli/sztp-client.js'),
        'verify',
        '--conveyed-information',
        files.ci,
        '--owner-certificate',
        files.oc,
        '--ownership-voucher',
        files.ov,
        '--manufacturer-trust-anchor',
        join(pkiDir, 'manufacturer-ca.crt'),
        '--serial-number',
        'DEV-2',
        '--nonce',
        nonce,
      ],
      { encoding: 'utf8' },
    );
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/^error: PKI_ERR_SERIAL_MISMATCH/);
    if (haveOpenssl) {
      const ciDer = join(root, 'ci.der');
      writeFileSync(ciDer, Buffer.from(out['conveyed-information'], 'base64'));
      const content = execFileSync(
        'openssl',
        [
          'cms',
          '-verify',
          '-binary',
          '-inform',
          'DER',
          '-in',
          ciDer,
          '-certfile',
          join(pkiDir, 'owner.crt'),
          '-CAfile',
          join(pkiDir, 'owner-ca.crt'),
          '-purpose',
          'any',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      expect(JSON.parse(content)).toHaveProperty('ietf-sztp-conveyed-info:onboarding-information');
      const ovDer = join(root, 'ov.der');
      writeFileSync(ovDer, Buffer.from(out['ownership-voucher'], 'base64'));
      const voucher = execFileSync(
        'openssl',
        [
          'cms',
          '-verify',
          '-binary',
          '-inform',
          'DER',
          '-in',
          ovDer,
          '-CAfile',
          join(pkiDir, 'manufacturer-ca.crt'),
          '-purpose',
          'any',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      expect(JSON.parse(voucher)['ietf-voucher:voucher']['serial-number']).toBe('DEV-1');
      const ocDer = join(root, 'oc.der');
      writeFileSync(ocDer, Buffer.from(out['owner-certificate'], 'base64'));
      const certs = execFileSync(
        'openssl',
        ['pkcs7', '-inform', 'DER', '-in', ocDer, '-print_certs', '-noout'],
        { encoding: 'utf8' },
      );
      expect(certs).toMatch(/Lab Owner/);
    }
  });

  it('answers XML with XML, valid against the module', async () => {
    const body =
      '<input xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server"><signed-data-preferred/><hw-model>bf3</hw-model></input>';
    const r = await rpc('get-bootstrapping-data', { contentType: 'application/yang-data+xml', body });
    expect(r.status, r.text).toBe(200);
    expect(r.type).toMatch(/^application\/yang-data\+xml/);
    expect(r.text).toMatch(
      /^<output xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server"><reporting-level>verbose<\/reporting-level><conveyed-information>/,
    );
    if (haveYanglint) {
      const v = yanglint(
        'reply',
        'ietf-sztp-bootstrap-server',
        xmlAsRpc(r.text, 'get-bootstrapping-data', 'output'),
        'xml',
      );
      expect(v.ok, v.out).toBe(true);
      const rq = yanglint(
        'rpc',
        'ietf-sztp-bootstrap-server',
        xmlAsRpc(body, 'get-bootstrapping-data', 'input'),
        'xml',
      );
      expect(rq.ok, rq.out).toBe(true);
    }
    // Accept overrides: JSON request, XML answer.
    const r2 = await rpc('get-bootstrapping-data', { body: gbd(), accept: 'application/yang-data+xml' });
    expect(r2.type).toMatch(/xml/);
    expectRestconfError(
      await rpc('get-bootstrapping-data', { body: gbd(), accept: 'text/html' }),
      406,
      'invalid-value',
      'SZTP_ERR_NOT_ACCEPTABLE',
    );
  });

  it('signs once per device and profile version: a storm of retries does not re-sign', async () => {
    await rpc('get-bootstrapping-data', { body: gbd() });
    const before = service.signatures;
    for (let i = 0; i < 20; i++)
      expect((await rpc('get-bootstrapping-data', { body: gbd() })).status).toBe(200);
    expect(service.signatures).toBe(before);
    // The storm is recorded, but identical requests in one batch share a row that counts them.
    await service.flush();
    const rows = await t.db
      .selectFrom('bootstrap_events')
      .select('detail')
      .where('serial', '=', 'DEV-1')
      .where('kind', '=', 'bootstrap-request')
      .execute();
    const counted = rows.reduce(
      (n, r) => n + Number((r.detail as { repeats?: number } | null)?.repeats ?? 1),
      0,
    );
    expect(counted).toBeGreaterThanOrEqual(21);
    expect(rows.length).toBeLessThan(counted);
    await t.db
      .updateTable('profiles')
      .set({ version: 2, updated_at: new Date() })
      .where('name', '=', 'onb')
      .execute();
    await rpc('get-bootstrapping-data', { body: gbd() });
    expect(service.signatures).toBe(before + 1);
  });

  it('authenticates with HTTP Basic alone, and with both when they agree', async () => {
    const basic = await rpc('get-bootstrapping-data', {
      device: null,
      basic: ['DEV-1', 'dev1-password'],
      body: gbd(),
    });
    expect(basic.status, basic.text).toBe(200);
    const both = await rpc('get-bootstrapping-data', {
      device: 'DEV-1',
      basic: ['DEV-1', 'dev1-password'],
      body: gbd(),
    });
    expect(both.status).toBe(200);
  });

  it('serves unsigned onboarding information only when the device did not ask for signed data', async () => {
    const plain = await rpc('get-bootstrapping-data', { device: 'DEV-2', body: gbd({}) });
    expect(plain.status, plain.text).toBe(200);
    const out = JSON.parse(plain.text)['ietf-sztp-bootstrap-server:output'];
    expect(out['owner-certificate']).toBeUndefined();
    expect(out['ownership-voucher']).toBeUndefined();
    // Asked for signed data: the unsigned profile is signed anyway (RFC 8572 §7.1 forbids unsigned onboarding info).
    const signed = JSON.parse((await rpc('get-bootstrapping-data', { device: 'DEV-2', body: gbd() })).text)[
      'ietf-sztp-bootstrap-server:output'
    ];
    expect(signed['ownership-voucher']).toBeDefined();
  });

  it('serves redirect information with the trust anchor as a degenerate SignedData', async () => {
    const r = await rpc('get-bootstrapping-data', { device: 'DEV-REDIR', body: gbd() });
    expect(r.status, r.text).toBe(200);
    const out = JSON.parse(r.text)['ietf-sztp-bootstrap-server:output'];
    expect(out['ownership-voucher']).toBeUndefined(); // unsigned redirect is allowed
    const ci = Buffer.from(out['conveyed-information'], 'base64');
    const json = ci.subarray(ci.indexOf(Buffer.from('{"ietf'))).toString();
    const info = JSON.parse(json)['ietf-sztp-conveyed-info:redirect-information'];
    expect(info['bootstrap-server'][0]).toMatchObject({ address: 'sztp2.example.com', port: 8443 });
    if (haveYanglint) {
      const v = yanglint('data', 'ietf-sztp-conveyed-info', json, 'json');
      expect(v.ok, v.out).toBe(true);
    }
  });

  it('gives the OPI agent only the members it accepts', async () => {
    const r = await rpc('get-bootstrapping-data', {
      device: 'DEV-OPI',
      contentType: 'application/yang-data+json',
      body: JSON.stringify({
        'ietf-sztp-bootstrap-server:input': {
          'hw-model': 'model',
          'os-name': 'linux',
          'os-version': '1',
          nonce: '',
        },
      }),
    });
    expect(r.status, r.text).toBe(200);
    const out = JSON.parse(r.text)['ietf-sztp-bootstrap-server:output'];
    expect(Object.keys(out)).toEqual(['conveyed-information']);
    const ci = Buffer.from(out['conveyed-information'], 'base64');
    const info = JSON.parse(ci.subarray(ci.indexOf(Buffer.from('{"ietf'))).toString())[
      'ietf-sztp-conveyed-info:onboarding-information'
    ];
    expect(Object.keys(info['boot-image']).sort()).toEqual(['download-uri', 'image-verification']);
  });

  const refusals: Array<[string, Call, number, string, string]> = [
    ['no credentials at all', { device: null }, 401, 'access-denied', 'SZTP_ERR_UNAUTHENTICATED'],
    [
      'an IDevID from another manufacturer',
      { dir: otherDir },
      401,
      'access-denied',
      'SZTP_ERR_UNTRUSTED_IDEVID',
    ],
    ['a revoked IDevID', { device: 'DEV-3' }, 401, 'access-denied', 'SZTP_ERR_REVOKED_IDEVID'],
    [
      'a wrong password',
      { device: null, basic: ['DEV-1', 'nope-nope'] },
      401,
      'access-denied',
      'SZTP_ERR_BAD_PASSWORD',
    ],
    [
      'certificate and Basic naming different devices',
      { device: 'DEV-1', basic: ['DEV-2', 'dev2-password'] },
      403,
      'access-denied',
      'SZTP_ERR_IDENTITY_MISMATCH',
    ],
    ['an unknown serial', { device: 'DEV-HOLD' }, 403, 'access-denied', 'SZTP_ERR_UNKNOWN_DEVICE'],
    ['a device without a profile', { device: 'DEV-NOPROF' }, 409, 'data-missing', 'SZTP_ERR_NO_PROFILE'],
    [
      'malformed JSON',
      { body: '{"ietf-sztp-bootstrap-server:input": ' },
      400,
      'malformed-message',
      'SZTP_ERR_MALFORMED',
    ],
    [
      'malformed XML',
      { contentType: 'application/yang-data+xml', body: '<input' },
      400,
      'malformed-message',
      'SZTP_ERR_MALFORMED',
    ],
    [
      'an unknown input node',
      { body: gbd({ colour: 'red' }) },
      400,
      'invalid-value',
      'SZTP_ERR_INVALID_VALUE',
    ],
    ['a short nonce', { body: gbd({ nonce: 'AAAA' }) }, 400, 'invalid-value', 'SZTP_ERR_INVALID_VALUE'],
    [
      'an unsupported content type',
      { contentType: 'text/plain', body: 'hi' },
      415,
      'invalid-value',
      'SZTP_ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
  ];
  for (const [what, call, status, tag, code] of refusals) {
    it(`refuses ${what} with a RESTCONF error`, async () => {
      const r = await rpc('get-bootstrapping-data', { body: gbd(), ...call });
      expectRestconfError(r, status, tag, code);
    });
  }

  it('refuses an expired IDevID', async () => {
    const k = await generateKey('ec-p256');
    const issuer = manufacturerSigner();
    const der = await createCertificate({
      profile: 'idevid',
      subject: { commonName: 'old', serialNumber: 'DEV-1' },
      publicKey: k.publicKey,
      issuer,
      notBefore: new Date('2020-01-01'),
      notAfter: new Date('2021-01-01'),
    });
    const r = await rpc('get-bootstrapping-data', {
      body: gbd(),
      cert: toPem(der, 'CERTIFICATE'),
      key: k.privateKeyPem,
    });
    expectRestconfError(r, 401, 'access-denied', 'SZTP_ERR_UNTRUSTED_IDEVID');
    expect(JSON.parse(r.text)['ietf-restconf:errors'].error[0]['error-message']).toMatch(/expired|EXPIRED/);
  });

  it('accepts an IDevID under an intermediate CA when the device sends the intermediate', async () => {
    const manufacturer = manufacturerSigner();
    const ik = await generateKey('ec-p256');
    const now = Date.now();
    const intermediate = await createCertificate({
      profile: 'ca',
      subject: { commonName: 'IDevID issuing CA' },
      publicKey: ik.publicKey,
      issuer: manufacturer,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 86_400_000),
    });
    const k = await generateKey('ec-p256');
    const leaf = await createCertificate({
      profile: 'idevid',
      subject: { commonName: 'via intermediate', serialNumber: 'DEV-1' },
      publicKey: k.publicKey,
      issuer: signerFromPrivateKey(ik.privateKeyPem, { certificates: [intermediate] }),
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 86_400_000),
    });
    const leafPem = toPem(leaf, 'CERTIFICATE');
    // Without the intermediate there is no path to the manufacturer anchor …
    const alone = await rpc('get-bootstrapping-data', { body: gbd(), cert: leafPem, key: k.privateKeyPem });
    expectRestconfError(alone, 401, 'access-denied', 'SZTP_ERR_UNTRUSTED_IDEVID');
    // … with it (sent after the leaf in the TLS Certificate message) the device is served.
    const chained = await rpc('get-bootstrapping-data', {
      body: gbd(),
      cert: leafPem + toPem(intermediate, 'CERTIFICATE'),
      key: k.privateKeyPem,
    });
    expect(chained.status, chained.text).toBe(200);
  });

  it('records every request, served or refused, with address and TLS identity', async () => {
    await service.flush();
    const ev = await t.db
      .selectFrom('bootstrap_events')
      .selectAll()
      .where('serial', '=', 'DEV-HOLD')
      .execute();
    expect(
      ev.some((e) => e.kind === 'rejected' && e.remote_address && e.tls_identity?.includes('DEV-HOLD')),
    ).toBe(true);
    const served = await t.db
      .selectFrom('bootstrap_events')
      .selectAll()
      .where('serial', '=', 'DEV-1')
      .where('kind', '=', 'bootstrap-request')
      .execute();
    expect(served.length).toBeGreaterThan(3);
  });
});

describe(`report-progress (${backend})`, () => {
  it('accepts every progress type of the module, in JSON and XML, with 204', async () => {
    for (const [i, type] of PROGRESS_TYPES.entries()) {
      const xml = i % 2 === 1;
      const body = xml
        ? `<input xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server"><progress-type>${type}</progress-type><message>step ${i}</message></input>`
        : progress({ 'progress-type': type, message: `step ${i}` });
      const r = await rpc('report-progress', {
        device: 'DEV-2',
        contentType: xml ? 'application/yang-data+xml' : undefined,
        body,
      });
      expect(r.status, `${type}: ${r.text}`).toBe(204);
      if (haveYanglint && i < 3) {
        const v = xml
          ? yanglint('rpc', 'ietf-sztp-bootstrap-server', xmlAsRpc(body, 'report-progress', 'input'), 'xml')
          : yanglint(
              'rpc',
              'ietf-sztp-bootstrap-server',
              jsonAsRpc(body, 'report-progress', 'input'),
              'json',
            );
        expect(v.ok, v.out).toBe(true);
      }
    }
    const events = await t.db
      .selectFrom('bootstrap_events')
      .select(['progress_type', 'message'])
      .where('serial', '=', 'DEV-2')
      .where('kind', '=', 'progress')
      .orderBy('id')
      .execute();
    expect(events.map((e) => e.progress_type)).toEqual([...PROGRESS_TYPES]);
  });

  it('moves the device through bootstrapping to provisioned and stores its SSH host keys', async () => {
    const state = async () =>
      await t.db.selectFrom('devices').selectAll().where('serial', '=', 'DEV-1').executeTakeFirstOrThrow();
    expect(
      (await rpc('report-progress', { body: progress({ 'progress-type': 'bootstrap-initiated' }) })).status,
    ).toBe(204);
    expect((await state()).state).toBe('bootstrapping');
    const key = Buffer.from('ssh-ed25519-blob').toString('base64');
    const done = progress({
      'progress-type': 'bootstrap-complete',
      message: 'ok',
      'ssh-host-keys': { 'ssh-host-key': [{ algorithm: 'ssh-ed25519', 'key-data': key }] },
    });
    if (haveYanglint) {
      const v = yanglint(
        'rpc',
        'ietf-sztp-bootstrap-server',
        jsonAsRpc(done, 'report-progress', 'input'),
        'json',
      );
      expect(v.ok, v.out).toBe(true);
    }
    expect((await rpc('report-progress', { body: done })).status).toBe(204);
    const d = await state();
    expect(d.state).toBe('provisioned');
    expect(d.ssh_host_keys).toEqual([{ algorithm: 'ssh-ed25519', keyData: key }]);
    expect(
      (
        await rpc('report-progress', {
          body: progress({ 'progress-type': 'config-error', message: 'bad config' }),
        })
      ).status,
    ).toBe(204);
    expect((await state()).state).toBe('failed');
    expect((await state()).last_progress_message).toBe('bad config');
  });

  it("accepts the OPI agent's shapes: empty containers on a non-complete report", async () => {
    const r = await rpc('report-progress', {
      device: 'DEV-OPI',
      basic: ['DEV-OPI', 'opi-password'],
      body: progress({
        'progress-type': 'bootstrap-initiated',
        message: 'Bootstrap Initiated',
        'ssh-host-keys': {},
        'trust-anchor-certs': {},
      }),
    });
    expect(r.status, r.text).toBe(204);
  });

  it('refuses a bad progress type, keys outside bootstrap-complete, and a missing progress-type', async () => {
    expectRestconfError(
      await rpc('report-progress', { body: progress({ 'progress-type': 'done' }) }),
      400,
      'invalid-value',
      'SZTP_ERR_INVALID_VALUE',
    );
    expectRestconfError(
      await rpc('report-progress', { body: progress({ message: 'x' }) }),
      400,
      'invalid-value',
      'SZTP_ERR_INVALID_VALUE',
    );
    expectRestconfError(
      await rpc('report-progress', {
        body: progress({
          'progress-type': 'informational',
          'ssh-host-keys': { 'ssh-host-key': [{ algorithm: 'a', 'key-data': 'AAAA' }] },
        }),
      }),
      400,
      'invalid-value',
      'SZTP_ERR_INVALID_VALUE',
    );
    expectRestconfError(
      await rpc('report-progress', {
        device: 'DEV-HOLD',
        body: progress({ 'progress-type': 'informational' }),
      }),
      403,
      'access-denied',
      'SZTP_ERR_UNKNOWN_DEVICE',
    );
  });
});

describe('RESTCONF root discovery', () => {
  it('answers host-meta, /restconf and unknown operations', async () => {
    const d = agentFor('DEV-1');
    const hm = await request(`${base}/.well-known/host-meta`, { dispatcher: d });
    expect(await hm.body.text()).toContain('<Link rel="restconf" href="/restconf"/>');
    const rc = await request(`${base}/restconf`, {
      dispatcher: d,
      headers: { accept: 'application/yang-data+json' },
    });
    expect(JSON.parse(await rc.body.text())['ietf-restconf:restconf']['yang-library-version']).toBe(
      '2019-01-04',
    );
    const nf = await request(`${base}/restconf/operations/ietf-sztp-bootstrap-server:nope`, {
      method: 'POST',
      dispatcher: d,
      body: '{}',
      headers: { 'content-type': 'application/yang-data+json' },
    });
    expect(nf.statusCode).toBe(404);
    expect(JSON.parse(await nf.body.text())['ietf-restconf:errors'].error[0]['error-app-tag']).toBe(
      'SZTP_ERR_UNKNOWN_OPERATION',
    );
  });
});

describe(`unknown-device policy hold and vouchers (${backend})`, () => {
  it('holds an unknown device with a valid IDevID as pending, then serves it once approved', async () => {
    const hold = new BootstrapService({
      lifecycle: new DeviceStateLifecycle(t.db),
      deviceCacheMs: 0,
      db: t.db,
      pki,
      unknownDevicePolicy: 'hold',
      resolveImage: async () => undefined,
    });
    const cred = {
      peerChain: [decodeArtifact(rd('devices/DEV-HOLD/idevid.crt').toString())],
      remoteAddress: '127.0.0.1',
    };
    await expect(
      hold.getBootstrappingData(cred, { signedDataPreferred: true }, 'json', {}),
    ).rejects.toMatchObject({ code: 'SZTP_ERR_DEVICE_PENDING' });
    const d = await t.db
      .selectFrom('devices')
      .selectAll()
      .where('serial', '=', 'DEV-HOLD')
      .executeTakeFirstOrThrow();
    expect(d.state).toBe('pending');
    expect(d.idevid_fingerprint).toMatch(/^[0-9a-f:]+$/);
    await expect(
      hold.getBootstrappingData(cred, { signedDataPreferred: true }, 'json', {}),
    ).rejects.toMatchObject({ code: 'SZTP_ERR_DEVICE_PENDING' });
    await t.db
      .updateTable('devices')
      .set({ state: 'registered', profile: 'unsigned' })
      .where('serial', '=', 'DEV-HOLD')
      .execute();
    const out = await hold.getBootstrappingData(cred, { signedDataPreferred: true }, 'json', {});
    expect(out.ownershipVoucher).toBeDefined();
  });

  it('uses a stored voucher, and refuses a nonce it cannot honour without a MASA', async () => {
    const noMasa = new BootstrapService({
      lifecycle: new DeviceStateLifecycle(t.db),
      deviceCacheMs: 0,
      db: t.db,
      pki: { ...pki, masa: undefined },
      resolveImage: async () => undefined,
    });
    const cred = {
      peerChain: [decodeArtifact(rd('devices/DEV-2/idevid.crt').toString())],
    };
    await expect(
      noMasa.getBootstrappingData(cred, { signedDataPreferred: true }, 'json', {}),
    ).rejects.toMatchObject({ code: 'SZTP_ERR_NO_VOUCHER' });
    const stored = rd('devices/DEV-2/ownership-voucher.cms');
    await t.db
      .updateTable('devices')
      .set({ ownership_voucher: stored })
      .where('serial', '=', 'DEV-2')
      .execute();
    const out = await noMasa.getBootstrappingData(cred, { signedDataPreferred: true }, 'json', {});
    expect(Buffer.from(out.ownershipVoucher as Uint8Array).equals(stored)).toBe(true);
    await expect(
      noMasa.getBootstrappingData(cred, { signedDataPreferred: true, nonce: new Uint8Array(16) }, 'json', {}),
    ).rejects.toMatchObject({ code: 'SZTP_ERR_NONCE_UNSATISFIABLE' });
  });

  it('reuses a device row for deviceCacheMs, and progress reports always read and refresh it', async () => {
    const cached = new BootstrapService({
      lifecycle: new DeviceStateLifecycle(t.db),
      db: t.db,
      pki,
      deviceCacheMs: 300,
      resolveImage: async () => undefined,
    });
    const cred = {
      peerChain: [decodeArtifact(rd('devices/DEV-REDIR/idevid.crt').toString())],
    };
    expect(
      (await cached.getBootstrappingData(cred, { signedDataPreferred: false }, 'json', {}))
        .conveyedInformation,
    ).toBeDefined();
    await t.db.updateTable('devices').set({ profile: null }).where('serial', '=', 'DEV-REDIR').execute();
    // Within the window the cached row still serves the device …
    expect(
      (await cached.getBootstrappingData(cred, { signedDataPreferred: false }, 'json', {}))
        .conveyedInformation,
    ).toBeDefined();
    // … a progress report reads the database, and so does the next request after it.
    await cached.reportProgress(cred, { progressType: 'informational' });
    await expect(
      cached.getBootstrappingData(cred, { signedDataPreferred: false }, 'json', {}),
    ).rejects.toMatchObject({ code: 'SZTP_ERR_NO_PROFILE' });
    // A change as the operator API makes it (updated_at bumped) is seen within deviceCacheMs.
    await t.db
      .updateTable('devices')
      .set({ profile: 'redir', updated_at: new Date(Date.now() + 1) })
      .where('serial', '=', 'DEV-REDIR')
      .execute();
    await new Promise((r) => setTimeout(r, 350));
    expect(
      (await cached.getBootstrappingData(cred, { signedDataPreferred: false }, 'json', {}))
        .conveyedInformation,
    ).toBeDefined();
    await t.db
      .updateTable('devices')
      .set({ profile: null, updated_at: new Date(Date.now() + 2) })
      .where('serial', '=', 'DEV-REDIR')
      .execute();
    await new Promise((r) => setTimeout(r, 350));
    await expect(
      cached.getBootstrappingData(cred, { signedDataPreferred: false }, 'json', {}),
    ).rejects.toMatchObject({ code: 'SZTP_ERR_NO_PROFILE' });
    await t.db.updateTable('devices').set({ profile: 'redir' }).where('serial', '=', 'DEV-REDIR').execute();
    await cached.reportProgress(cred, { progressType: 'informational' }); // re-reads the row
    await cached.flush();
  });

  it('checks cached rows against the database in one query, not one per request', async () => {
    const q = countingDeviceQueries();
    const cached = new BootstrapService({
      lifecycle: new DeviceStateLifecycle(t.db),
      db: q.db,
      pki,
      deviceCacheMs: 200,
      resolveImage: async () => undefined,
    });
    const cred = { peerChain: [decodeArtifact(rd('devices/DEV-REDIR/idevid.crt').toString())] };
    const until = Date.now() + 700;
    let served = 0;
    while (Date.now() < until) {
      await cached.getBootstrappingData(cred, { signedDataPreferred: false }, 'json', {});
      served++;
      await new Promise((r) => setImmediate(r)); // let timers run, as a server's I/O does
    }
    // One read of the row, then one check every 100 ms: far fewer than the requests served.
    expect(served).toBeGreaterThan(50);
    expect(q.rowReads).toBe(1);
    expect(q.rowReads + q.checks).toBeGreaterThanOrEqual(3);
    expect(q.rowReads + q.checks).toBeLessThanOrEqual(12);
    // A profile change (version bump) drops the row at the next check.
    await t.db
      .updateTable('profiles')
      .set((eb) => ({ version: eb('version', '+', 1), updated_at: new Date() }))
      .where('name', '=', 'redir')
      .execute();
    await new Promise((r) => setTimeout(r, 250));
    const before = q.rowReads;
    await cached.getBootstrappingData(cred, { signedDataPreferred: false }, 'json', {});
    expect(q.rowReads).toBe(before + 1); // dropped at the check, so read again
    await cached.flush();
  });

  it('drops a cached row nobody used for deviceCacheIdleMs instead of checking it forever', async () => {
    const q = countingDeviceQueries();
    const cached = new BootstrapService({
      lifecycle: new DeviceStateLifecycle(t.db),
      db: q.db,
      pki,
      deviceCacheMs: 100,
      deviceCacheIdleMs: 200,
      resolveImage: async () => undefined,
    });
    const cred = { peerChain: [decodeArtifact(rd('devices/DEV-REDIR/idevid.crt').toString())] };
    await cached.getBootstrappingData(cred, { signedDataPreferred: false }, 'json', {});
    await new Promise((r) => setTimeout(r, 600));
    const checksWhileIdle = q.checks;
    await new Promise((r) => setTimeout(r, 300));
    expect(q.checks).toBe(checksWhileIdle); // the row is gone, and with it the checking
    expect(checksWhileIdle).toBeLessThanOrEqual(6); // ~4: every 50 ms until 200 ms idle
    await cached.getBootstrappingData(cred, { signedDataPreferred: false }, 'json', {});
    expect(q.rowReads).toBe(2);
    await cached.flush();
  });
});

/**
 * The test database with a counter of the device-row queries the bootstrap service makes:
 * `rowReads` (the per-device read, `where serial = $1`) and `checks` (the revalidation of
 * all cached rows, a raw `= any(...)`).
 */
function countingDeviceQueries() {
  const counts = {
    rowReads: 0,
    checks: 0,
    db: t.db.withPlugin({
      transformQuery: (args) => {
        if (args.node.kind === 'SelectQueryNode') {
          if (args.node.where?.where.kind === 'RawNode') counts.checks++;
          else counts.rowReads++;
        }
        return args.node;
      },
      transformResult: async (args) => args.result,
    }),
  };
  return counts;
}

/** The lab manufacturer CA as a signer, for IDevIDs a test makes itself. */
function manufacturerSigner() {
  return signerFromPrivateKey(rd('manufacturer-ca.key').toString(), {
    certificates: [decodeArtifact(rd('manufacturer-ca.crt').toString())],
  });
}
