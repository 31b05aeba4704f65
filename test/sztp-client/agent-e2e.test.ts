/**
 * The agent end to end: `sztp-client run` (the tsc build, and the one-file
 * bundle copied where there is no node_modules) against real `dpu-ztp serve`
 * processes over real mTLS with a PKI from `dpu-ztp pki init`. Onboarding with
 * an image uploaded through the image API, scripts and configuration; a
 * redirect to a second server trusted only through the redirect's anchor; and
 * the refusals — tampered data (a TLS-trusted man in the middle), a wrong
 * image hash, an expired voucher, an untrusted server with unsigned data —
 * each refused, reported where the RFC allows, and nothing installed.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCertificate,
  createUnsignedConveyedInformation,
  decodeArtifact,
  generateKey,
  signerFromPrivateKey,
  toPem,
} from '../../pki/index.js';
import { encodeBootstrapServerList } from '../../sztp-client/discovery/index.js';
import { operatorApi } from '../helpers/provision-lab.js';
import { childEnv, repoRoot, runCli, type ServeProcess, seedDataDir, startServe } from '../helpers/serve.js';
import { repeatsPgliteRun } from '../helpers/db.js';

const root = mkdtempSync(join(tmpdir(), 'sztp-agent-e2e-'));
const pkiA = join(root, 'pki-a');
const pkiB = join(root, 'pki-b');
const sshDir = join(root, 'ssh');
const agentBin = join(repoRoot, 'dist', 'cli', 'sztp-client.js');
const bundle = join(repoRoot, 'dist', 'sztp-client.mjs');
const SERIALS = ['DEV-OK', 'DEV-REDIR', 'DEV-TAMPER', 'DEV-HASH', 'DEV-EXPIRED', 'DEV-BLIND', 'DEV-BUNDLE'];
const IMAGE = randomBytes(1_500_000);
let a: ServeProcess;
let b: ServeProcess;
let mitm: Server;
let rogue: Server;
const rogueRequests: { path: string; authorization?: string }[] = [];

const PRE = '#!/bin/sh\ntouch "$(dirname "$SZTP_CONFIG_PATH")/pre-ran"\necho pre-configuration done\n';
const POST = 'test -f "$SZTP_CONFIG_PATH" && touch "$(dirname "$SZTP_CONFIG_PATH")/post-ran"\n';
const ONBOARDING = {
  type: 'onboarding',
  bootImage: { osName: 'testos', osVersion: '2.0', image: 'os.img' },
  preConfigurationScript: PRE,
  configurationHandling: 'replace',
  configuration: 'hostname e2e\n',
  postConfigurationScript: POST,
};

const api = (s: ServeProcess, dataDir: string, method: string, path: string, body?: unknown) =>
  operatorApi(s.api, readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(), method, path, body);

/** The progress types a server recorded for a device, in order (request records are batched, so left out). */
async function progress(s: ServeProcess, dataDir: string, serial: string): Promise<string[]> {
  const r = await api(s, dataDir, 'GET', `/api/v1/devices/${serial}/events`);
  return r.body.items
    .filter((e: { kind: string }) => e.kind === 'progress')
    .map((e: { progressType: string }) => e.progressType);
}

/** A TLS CA and a server certificate for 127.0.0.1 under it (PEM). */
async function tlsIdentity(caPem?: { cert: string; key: string }) {
  const now = Date.now();
  const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000) };
  let ca = caPem;
  if (!ca) {
    const k = await generateKey('ec-p256');
    const der = await createCertificate({
      profile: 'ca',
      subject: { commonName: 'e2e TLS CA' },
      publicKey: k.publicKey,
      issuer: signerFromPrivateKey(k.privateKeyPem),
      ...validity,
    });
    ca = { cert: toPem(der, 'CERTIFICATE'), key: k.privateKeyPem };
  }
  const issuer = signerFromPrivateKey(ca.key, { certificates: [decodeArtifact(ca.cert)] });
  const k = await generateKey('ec-p256');
  const der = await createCertificate({
    profile: 'tls-server',
    subject: { commonName: '127.0.0.1' },
    publicKey: k.publicKey,
    issuer,
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
    ...validity,
  });
  return { ca, cert: toPem(der, 'CERTIFICATE'), key: k.privateKeyPem };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`https://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

function readBody(req: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** One device's files: hook logs, config, state. */
function deviceDir(serial: string) {
  const dir = join(root, 'dev', serial);
  mkdirSync(join(dir, 'etc'), { recursive: true });
  const hook = join(dir, 'install-hook.sh');
  writeFileSync(
    hook,
    `#!/bin/sh\necho "$1 $SZTP_OS_NAME $SZTP_OS_VERSION" >> "${dir}/install.log"\ncp "$1" "${dir}/installed.img"\n`,
    { mode: 0o755 },
  );
  return {
    dir,
    hook,
    config: join(dir, 'etc', 'running.conf'),
    state: join(dir, 'state'),
    installed: () => existsSync(join(dir, 'install.log')),
  };
}

interface AgentRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runAgent(
  serial: string,
  extra: string[],
  opts: { bin?: string; cwd?: string; command?: string[] } = {},
): Promise<AgentRun> {
  const d = deviceDir(serial);
  const args = opts.command ?? [
    'run',
    ...(extra.includes('--dhcp-lease-file') ? [] : ['--no-dhcp']),
    '--once',
    '--backoff',
    '0.05',
    '--timeout',
    '10',
    '--script-timeout',
    '10',
    '--idevid-cert',
    join(pkiA, 'devices', serial, 'idevid.crt'),
    '--idevid-key',
    join(pkiA, 'devices', serial, 'idevid.key'),
    '--manufacturer-trust-anchor',
    join(pkiA, 'masa-ca.crt'),
    '--install-hook',
    d.hook,
    '--config-path',
    d.config,
    '--config-hook',
    `echo applied >> "${d.dir}/config-hook.log"; echo`,
    '--ssh-host-keys-dir',
    sshDir,
    '--state-dir',
    d.state,
    '--os-name',
    'testos',
    '--os-version',
    '1.0',
    '--hw-model',
    'e2e-dpu',
    ...extra,
  ];
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [opts.bin ?? agentBin, ...args], {
      env: childEnv(),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    p.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const trustA = () => ['--trust-anchor', join(pkiA, 'tls-ca.crt')];

/** Asserts that nothing of the onboarding information was acted on. */
function expectNothingInstalled(serial: string) {
  const d = deviceDir(serial);
  expect(d.installed(), 'install hook ran').toBe(false);
  expect(existsSync(d.config), 'config written').toBe(false);
  expect(existsSync(join(d.dir, 'etc', 'pre-ran')), 'pre-script ran').toBe(false);
  const work = join(d.state, 'work');
  expect(existsSync(work) ? readdirSync(work) : [], 'leftover files').toEqual([]);
}

beforeAll(async () => {
  const init = runCli(['pki', 'init', '--out', pkiA, '--devices', SERIALS.join(',')]);
  expect(init.code, init.stderr).toBe(0);
  // Server B: same manufacturer and owner, its own TLS CA — the device learns it only from A's redirect.
  cpSync(pkiA, pkiB, { recursive: true });
  const tlsB = await tlsIdentity();
  writeFileSync(join(pkiB, 'tls-ca.crt'), tlsB.ca.cert);
  writeFileSync(join(pkiB, 'tls-ca.key'), tlsB.ca.key, { mode: 0o600 });
  writeFileSync(join(pkiB, 'server.crt'), tlsB.cert);
  writeFileSync(join(pkiB, 'server.key'), tlsB.key, { mode: 0o600 });
  // A synthetic SSH host key (RFC 4253 §6.6 blob) for bootstrap-complete.
  mkdirSync(sshDir, { recursive: true });
  const u32 = (n: number) => {
    const x = Buffer.alloc(4);
    x.writeUInt32BE(n);
    return x;
  };
  const blob = Buffer.concat([u32(11), Buffer.from('ssh-ed25519'), u32(32), randomBytes(32)]);
  writeFileSync(
    join(sshDir, 'ssh_host_ed25519_key.pub'),
    `ssh-ed25519 ${blob.toString('base64')} root@dpu\n`,
  );

  [a, b] = await Promise.all([
    startServe(['--data-dir', seedDataDir(join(root, 'data-a')), '--pki-dir', pkiA]),
    startServe(['--data-dir', seedDataDir(join(root, 'data-b')), '--pki-dir', pkiB]),
  ]);
  const A = (m: string, p: string, body?: unknown) => api(a, join(root, 'data-a'), m, p, body);
  const B = (m: string, p: string, body?: unknown) => api(b, join(root, 'data-b'), m, p, body);
  for (const [name, bytes] of [
    ['os.img', IMAGE],
    ['bad.img', IMAGE],
  ] as const)
    expect((await A('PUT', `/api/v1/images/${name}`, new Uint8Array(bytes))).status).toBeLessThan(300);
  // Corrupt bad.img on the server's disk (same size): its catalogued SHA-256 no longer matches.
  const imagesDir = join(root, 'data-a', 'images');
  const stored = readdirSync(imagesDir).find((f) => f.startsWith('bad.img@')) as string;
  const corrupted = Buffer.from(IMAGE);
  corrupted[1000] = (corrupted[1000] as number) ^ 0xff;
  writeFileSync(join(imagesDir, stored), corrupted);

  expect((await A('PUT', '/api/v1/profiles/onboard', ONBOARDING)).status).toBe(201);
  expect(
    (
      await A('PUT', '/api/v1/profiles/bad-image', {
        ...ONBOARDING,
        bootImage: { ...ONBOARDING.bootImage, image: 'bad.img' },
      })
    ).status,
  ).toBe(201);
  const devicePortB = Number(new URL(b.device).port);
  expect(
    (
      await A('PUT', '/api/v1/profiles/to-b', {
        type: 'redirect',
        bootstrapServers: [{ address: '127.0.0.1', port: devicePortB, trustAnchor: tlsB.ca.cert }],
      })
    ).status,
  ).toBe(201);
  for (const [serial, profile] of [
    ['DEV-OK', 'onboard'],
    ['DEV-REDIR', 'to-b'],
    ['DEV-TAMPER', 'onboard'],
    ['DEV-HASH', 'bad-image'],
    ['DEV-EXPIRED', 'onboard'],
    ['DEV-BLIND', 'onboard'],
    ['DEV-BUNDLE', 'onboard'],
  ])
    expect((await A('PUT', `/api/v1/devices/${serial}`, { profile })).status).toBe(201);
  expect(
    (
      await B('PUT', '/api/v1/profiles/on-b', {
        type: 'onboarding',
        configurationHandling: 'merge',
        configuration: 'hostname from-b\n',
      })
    ).status,
  ).toBe(201);
  expect((await B('PUT', '/api/v1/devices/DEV-REDIR', { profile: 'on-b' })).status).toBe(201);

  // A man in the middle holding a certificate from A's TLS CA (so the device trusts the channel)
  // that changes one character of the signed conveyed information on its way through.
  const mitmTls = await tlsIdentity({
    cert: readFileSync(join(pkiA, 'tls-ca.crt'), 'utf8'),
    key: readFileSync(join(pkiA, 'tls-ca.key'), 'utf8'),
  });
  const upstream = new URL(a.device);
  mitm = createHttpsServer({ cert: mitmTls.cert, key: mitmTls.key }, async (req, res) => {
    const body = await readBody(req);
    const up = httpsRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        ca: readFileSync(join(pkiA, 'tls-ca.crt')),
        cert: readFileSync(join(pkiA, 'devices', 'DEV-TAMPER', 'idevid.crt')),
        key: readFileSync(join(pkiA, 'devices', 'DEV-TAMPER', 'idevid.key')),
      },
      async (ur) => {
        let out = await readBody(ur);
        if (req.url?.endsWith(':get-bootstrapping-data') && ur.statusCode === 200) {
          const j = JSON.parse(out.toString());
          const o = j['ietf-sztp-bootstrap-server:output'];
          const ci = Buffer.from(o['conveyed-information'], 'base64');
          const at = ci.indexOf(Buffer.from('testos'));
          expect(at).toBeGreaterThan(0);
          ci[at] = 'T'.charCodeAt(0);
          o['conveyed-information'] = ci.toString('base64');
          out = Buffer.from(JSON.stringify(j));
        }
        const headers = { ...ur.headers };
        delete headers['content-length'];
        delete headers['transfer-encoding'];
        res.writeHead(ur.statusCode ?? 502, headers);
        res.end(out);
      },
    );
    up.on('error', () => res.destroy());
    up.end(body);
  });

  // An untrusted bootstrap server (its own CA) handing out unsigned onboarding information.
  const rogueTls = await tlsIdentity();
  const unsigned = createUnsignedConveyedInformation(
    {
      'ietf-sztp-conveyed-info:onboarding-information': {
        'configuration-handling': 'replace',
        configuration: Buffer.from('hostname rogue\n').toString('base64'),
        'pre-configuration-script': Buffer.from(PRE).toString('base64'),
      },
    },
    'json',
  );
  rogue = createHttpsServer({ cert: rogueTls.cert, key: rogueTls.key }, async (req, res) => {
    await readBody(req);
    rogueRequests.push({
      path: req.url ?? '',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    if (req.url?.endsWith(':get-bootstrapping-data')) {
      res.writeHead(200, { 'content-type': 'application/yang-data+json' });
      res.end(
        JSON.stringify({
          'ietf-sztp-bootstrap-server:output': {
            'reporting-level': 'verbose',
            'conveyed-information': Buffer.from(unsigned).toString('base64'),
          },
        }),
      );
    } else {
      res.writeHead(204);
      res.end();
    }
  });
}, 120_000);

afterAll(async () => {
  mitm?.close();
  rogue?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  rmSync(root, { recursive: true, force: true });
});

describe.skipIf(repeatsPgliteRun)('sztp-client run against dpu-ztp serve (real mTLS, pki init PKI)', () => {
  it('onboards: verified image to the install hook, pre-script, config + hook, post-script, bootstrap-complete with SSH keys', async () => {
    const r = await runAgent('DEV-OK', [...trustA(), '--bootstrap-url', a.device]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const d = deviceDir('DEV-OK');
    expect(readFileSync(join(d.dir, 'install.log'), 'utf8')).toMatch(/os\.img testos 2\.0\n$/);
    expect(readFileSync(join(d.dir, 'installed.img')).equals(IMAGE)).toBe(true);
    expect(readFileSync(d.config, 'utf8')).toBe('hostname e2e\n');
    expect(readFileSync(join(d.dir, 'config-hook.log'), 'utf8')).toBe('applied\n');
    expect(existsSync(join(d.dir, 'etc', 'pre-ran'))).toBe(true);
    expect(existsSync(join(d.dir, 'etc', 'post-ran'))).toBe(true);
    expect(existsSync(join(d.state, 'work')) ? readdirSync(join(d.state, 'work')) : []).toEqual([]);
    // One human line per step.
    expect(r.stdout).toMatch(
      /boot-image: downloaded and verified https:\/\/127\.0\.0\.1:\d+\/images\/os\.img/,
    );
    expect(r.stdout).toMatch(/post-script: post-script-complete/);
    const dev = await api(a, join(root, 'data-a'), 'GET', '/api/v1/devices/DEV-OK');
    expect(dev.body.state).toBe('provisioned');
    expect(dev.body.sshHostKeys).toEqual([
      {
        algorithm: 'ssh-ed25519',
        keyData: readFileSync(join(sshDir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ')[1],
      },
    ]);
    expect(await progress(a, join(root, 'data-a'), 'DEV-OK')).toEqual([
      'bootstrap-initiated',
      'parsing-initiated',
      'parsing-complete',
      'boot-image-mismatch',
      'boot-image-initiated',
      'boot-image-complete',
      'pre-script-initiated',
      'pre-script-complete',
      'config-initiated',
      'config-complete',
      'post-script-initiated',
      'post-script-complete',
      'bootstrap-complete',
    ]);
    // State: bootstrapped, the SZTP flag now off (RFC 8572 §5.2); a later run exits 0 at once.
    const st = await runAgent('DEV-OK', [], { command: ['status', '--json', '--state-dir', d.state] });
    const state = JSON.parse(st.stdout);
    expect(state).toMatchObject({ status: 'bootstrapped', enabled: false, disabledReason: 'bootstrapped' });
    expect(state.lastAttempt).toMatchObject({ outcome: 'bootstrapped', serverTrusted: true, signed: true });
    expect(Object.keys(state.lastAttempt.steps)).toEqual(
      expect.arrayContaining(['fetch', 'verify', 'boot-image', 'pre-script', 'config', 'post-script']),
    );
    const again = await runAgent('DEV-OK', [...trustA(), '--bootstrap-url', a.device]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/SZTP is disabled \(bootstrapped\)/);
    const human = await runAgent('DEV-OK', [], { command: ['status', '--verbose', '--state-dir', d.state] });
    expect(human.stdout).toMatch(/SZTP: +disabled \(bootstrapped\)/);
    expect(human.stdout).toMatch(/step timings/);
  });

  it('follows a signed redirect to a second server, trusting it through the redirect’s trust anchor only', async () => {
    const r = await runAgent('DEV-REDIR', [...trustA(), '--bootstrap-url', a.device, '--log-format', 'json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.find((l) => l.step === 'redirect')).toMatchObject({
      msg: `redirected to ${b.device}`,
      trustAnchor: true,
    });
    expect(readFileSync(deviceDir('DEV-REDIR').config, 'utf8')).toBe('hostname from-b\n');
    expect(readFileSync(join(deviceDir('DEV-REDIR').dir, 'config-hook.log'), 'utf8')).toBe('applied\n');
    expect((await api(b, join(root, 'data-b'), 'GET', '/api/v1/devices/DEV-REDIR')).body.state).toBe(
      'provisioned',
    );
    // Server A handed out a redirect: it gets no progress reports.
    expect(await progress(a, join(root, 'data-a'), 'DEV-REDIR')).toEqual([]);
    expect((await progress(b, join(root, 'data-b'), 'DEV-REDIR')).at(-1)).toBe('bootstrap-complete');
  });

  it('acts on signed data from an untrusted server but sends it no progress reports', async () => {
    const r = await runAgent('DEV-BLIND', ['--bootstrap-url', a.device, '--basic-password', 'not-for-them']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/not a trusted server: no progress reports/);
    expect(readFileSync(deviceDir('DEV-BLIND').config, 'utf8')).toBe('hostname e2e\n');
    expect(await progress(a, join(root, 'data-a'), 'DEV-BLIND')).toEqual([]);
  });

  it('refuses tampered conveyed information, reports parsing-error to the (TLS-trusted) server, installs nothing', async () => {
    const url = await listen(mitm);
    const r = await runAgent('DEV-TAMPER', [...trustA(), '--bootstrap-url', url]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/ERROR verify: .*PKI_ERR_DIGEST_MISMATCH.*code=SZTP_CLIENT_ERR_VERIFICATION/);
    expect(r.stderr).toMatch(/^error: SZTP_CLIENT_ERR_GAVE_UP: .*PKI_ERR_DIGEST_MISMATCH/m);
    expectNothingInstalled('DEV-TAMPER');
    expect(await progress(a, join(root, 'data-a'), 'DEV-TAMPER')).toEqual(['parsing-error']);
    const st = JSON.parse(
      (
        await runAgent('DEV-TAMPER', [], {
          command: ['status', '--json', '--state-dir', deviceDir('DEV-TAMPER').state],
        })
      ).stdout,
    );
    expect(st).toMatchObject({
      status: 'failed',
      enabled: true,
      lastError: { code: 'SZTP_CLIENT_ERR_VERIFICATION', step: 'verify' },
    });
  });

  it('refuses an image whose SHA-256 does not match, reports boot-image-error, runs nothing after it', async () => {
    const r = await runAgent('DEV-HASH', [...trustA(), '--bootstrap-url', a.device]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/SZTP_CLIENT_ERR_IMAGE_HASH/);
    expectNothingInstalled('DEV-HASH');
    const ev = await progress(a, join(root, 'data-a'), 'DEV-HASH');
    expect(ev.at(-1)).toBe('boot-image-error');
    expect(ev).not.toContain('pre-script-initiated');
    expect((await api(a, join(root, 'data-a'), 'GET', '/api/v1/devices/DEV-HASH')).body.state).toBe('failed');
  });

  it('refuses an expired voucher (device clock past expires-on) and reports parsing-error', async () => {
    const later = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const r = await runAgent('DEV-EXPIRED', [...trustA(), '--bootstrap-url', a.device, '--now', later]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/PKI_ERR_VOUCHER_EXPIRED/);
    expectNothingInstalled('DEV-EXPIRED');
    expect(await progress(a, join(root, 'data-a'), 'DEV-EXPIRED')).toEqual(['parsing-error']);
  });

  it('refuses unsigned onboarding information from an untrusted server: no secrets, no reports, nothing run', async () => {
    const url = await listen(rogue);
    const r = await runAgent('DEV-OK', [
      ...trustA(),
      '--bootstrap-url',
      `${url}/restconf`,
      '--basic-password',
      'secret',
      '--state-dir',
      join(root, 'dev', 'rogue-state'),
      '--config-path',
      join(root, 'dev', 'rogue', 'etc', 'running.conf'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/SZTP_CLIENT_ERR_UNTRUSTED_UNSIGNED/);
    expect(rogueRequests).toEqual([
      { path: '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data' },
    ]);
    expect(existsSync(join(root, 'dev', 'rogue', 'etc'))).toBe(false);
  });

  it('the bundled dist/sztp-client.mjs, in a directory without node_modules, onboards from a server found in a DHCP lease', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sztp-bundle-'));
    try {
      copyFileSync(bundle, join(dir, 'sztp-client.mjs'));
      // ISC dhclient's rendering of option 143 (RFC 8572 §8.3 framing, hex without leading zeros).
      const hex = Array.from(encodeBootstrapServerList([a.device]), (x) => x.toString(16)).join(':');
      const lease = join(root, 'dhclient.leases');
      writeFileSync(
        lease,
        `lease {\n  interface "eth0";\n  fixed-address 10.0.0.9;\n  option sztp-redirect-urls ${hex};\n  renew 0 2030/01/01 00:00:00;\n}\n`,
      );
      const args = [...trustA(), '--dhcp-lease-file', lease];
      const r = await runAgent('DEV-BUNDLE', args, {
        bin: join(dir, 'sztp-client.mjs'),
        cwd: dir,
      });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`discover: 1 source(s): ${a.device}`);
      expect(readFileSync(join(deviceDir('DEV-BUNDLE').dir, 'installed.img')).equals(IMAGE)).toBe(true);
      expect(readFileSync(deviceDir('DEV-BUNDLE').config, 'utf8')).toBe('hostname e2e\n');
      expect((await api(a, join(root, 'data-a'), 'GET', '/api/v1/devices/DEV-BUNDLE')).body.state).toBe(
        'provisioned',
      );
      expect(readdirSync(dir)).toEqual(['sztp-client.mjs']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
