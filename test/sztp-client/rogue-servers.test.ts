/**
 * The agent against rogue servers and rogue leases (issue 12), as an attacker
 * would try it: real TLS servers on loopback that stall, dribble, mint vouchers
 * with another device's key, fan redirects out, send hostile XML, or host
 * images a byte a second; rogue lease files and tampered state. The real
 * bundle (`dist/sztp-client.mjs`, `npm run build:agent`) is spawned for each
 * case, and its wall time, peak RSS (VmHWM from /proc) and exit status are
 * asserted. Nothing in the agent's network code is mocked.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { voucherUploadProblem } from '../../bootstrap/voucher-upload.js';
import { encodeOctetContentInfo } from '../../pki/cms.js';
import {
  type ConveyedInformation,
  ContentTypeOid,
  createCertificate,
  createLabPki,
  createOwnerCertificateArtifact,
  createUnsignedConveyedInformation,
  decodeArtifact,
  generateKey,
  signConveyedInformation,
  signerFromPrivateKey,
  signVoucher,
  toColonHex,
} from '../../pki/index.js';
import { detectLeaseFormat } from '../../sztp-client/discovery/lease-file.js';
import { repoRoot } from '../helpers/serve.js';

const bundle = join(repoRoot, 'dist', 'sztp-client.mjs');
const root = mkdtempSync(join(tmpdir(), 'sztp-rogue-'));
const SN = 'DEV-1';
const OTHER = 'DEV-2';
let pkiDir: string;
const file = (name: string) => join(pkiDir, name);
const pem = (name: string) => readFileSync(file(name), 'utf8');
const servers: { close(): void }[] = [];
let n = 0;

interface AgentRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  /** Peak resident set size, KiB (VmHWM, sampled every 20 ms until exit). */
  peakRssKiB: number;
  out: string;
}

/** Peak RSS of a live process, KiB; 0 once it is gone. */
function vmHwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Spawns the bundled agent; `onStart` may signal it. */
function agent(args: string[], onStart?: (child: ChildProcess) => void): Promise<AgentRun> {
  const started = Date.now();
  const child = spawn(process.execPath, [bundle, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, vmHwm(child.pid ?? -1));
  }, 20);
  onStart?.(child);
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      clearInterval(sampler);
      resolve({ code, signal, wallMs: Date.now() - started, peakRssKiB: peak, out });
    }),
  );
}

/** A fresh device: state dir and the flags every run shares. */
function device(extra: string[] = []): { dir: string; args: string[] } {
  const dir = join(root, `dev-${++n}`);
  mkdirSync(join(dir, 'ssh'), { recursive: true });
  return {
    dir,
    args: [
      '--once',
      '--no-dhcp',
      '--state-dir',
      join(dir, 'state'),
      '--serial-number',
      SN,
      '--ssh-host-keys-dir',
      join(dir, 'ssh'),
      '--os-name',
      'lab',
      '--os-version',
      '1',
      '--log-format',
      'json',
      ...extra,
    ],
  };
}

function listening<T extends HttpServer | HttpsServer | NetServer>(s: T): Promise<number> {
  servers.push(s);
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
}

/** A RESTCONF server on real TLS (lab server certificate) answering get-bootstrapping-data with `reply`. */
async function restconf(
  reply: (input: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>,
): Promise<{ url: string; port: number; posts: () => number; progress: string[] }> {
  let posts = 0;
  const progress: string[] = [];
  const s = createHttpsServer({ cert: pem('server.crt'), key: pem('server.key') }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if (req.url?.endsWith(':report-progress')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        progress.push(body['ietf-sztp-bootstrap-server:input']['progress-type']);
        res.writeHead(204).end();
        return;
      }
      if (req.method !== 'POST' || !req.url?.endsWith(':get-bootstrapping-data')) {
        res.writeHead(404).end();
        return;
      }
      posts++;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const out = await reply(body['ietf-sztp-bootstrap-server:input'] ?? {});
      res.writeHead(200, { 'content-type': 'application/yang-data+json' });
      res.end(JSON.stringify({ 'ietf-sztp-bootstrap-server:output': out }));
    });
  });
  const port = await listening(s);
  return { url: `https://127.0.0.1:${port}`, port, posts: () => posts, progress };
}

/** Counts get-bootstrapping-data requests and answers 404 (an unknown device). */
async function counting() {
  let posts = 0;
  const s = createHttpsServer({ cert: pem('server.crt'), key: pem('server.key') }, (req, res) => {
    if (req.method === 'POST') posts++;
    req.resume();
    res.writeHead(404).end();
  });
  const port = await listening(s);
  return { url: `https://127.0.0.1:${port}`, posts: () => posts };
}

/** Accepts TLS, then `behave`s on the socket (never answers, dribbles, …). */
async function tlsServer(behave: (s: TLSSocket) => void): Promise<{ url: string; connected: Promise<void> }> {
  let hit: () => void = () => {};
  const connected = new Promise<void>((r) => {
    hit = r;
  });
  const s = createTlsServer({ cert: pem('server.crt'), key: pem('server.key') }, (sock) => {
    sock.on('error', () => {});
    hit();
    behave(sock);
  });
  const port = await listening(s);
  return { url: `https://127.0.0.1:${port}`, connected };
}

const ci = (info: ConveyedInformation) =>
  Buffer.from(createUnsignedConveyedInformation(info)).toString('base64');
const redirect = (entries: Array<{ address: string; port?: number }>): ConveyedInformation => ({
  'ietf-sztp-conveyed-info:redirect-information': { 'bootstrap-server': entries },
});
const logLines = (out: string) =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; step: string; msg: string; code?: string });

beforeAll(async () => {
  pkiDir = join(root, 'pki');
  const lab = await createLabPki({ now: new Date(), devices: [SN, OTHER], serverNames: ['127.0.0.1'] });
  for (const f of lab.files) {
    mkdirSync(join(pkiDir, f.path, '..'), { recursive: true });
    writeFileSync(join(pkiDir, f.path), f.data, { mode: f.mode });
  }
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run npm run build:agent`);
});
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(root, { recursive: true, force: true });
});

describe('a voucher signed by another device identity (the critical finding)', () => {
  /**
   * The rogue server holds DEV-2's IDevID key. It mints a voucher for DEV-1 (echoing the
   * device's nonce), pins its own owner certificate, and conveys a pre-configuration script.
   */
  async function rogue(voucherKey: 'idevid' | 'masa') {
    const now = Date.now();
    const k = await generateKey('ec-p256');
    const ownerDer = await createCertificate({
      profile: 'signing',
      subject: { commonName: 'rogue owner' },
      publicKey: k.publicKey,
      issuer: signerFromPrivateKey(k.privateKeyPem),
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 86_400_000),
    });
    const owner = signerFromPrivateKey(k.privateKeyPem, { certificates: [ownerDer] });
    const voucherSigner =
      voucherKey === 'idevid'
        ? signerFromPrivateKey(pem(`devices/${OTHER}/idevid.key`), {
            certificates: [
              decodeArtifact(pem(`devices/${OTHER}/idevid.crt`)),
              decodeArtifact(pem('manufacturer-ca.crt')),
            ],
          })
        : signerFromPrivateKey(pem('masa.key'), { certificates: [decodeArtifact(pem('masa.crt'))] });
    const marker = join(root, `pwned-${++n}`);
    const script = `#!/bin/sh\ntouch '${marker}'\n`;
    const vouchers: Uint8Array[] = [];
    const server = await restconf(async (input) => {
      const voucher = await signVoucher(
        {
          createdOn: new Date(now - 3_600_000),
          expiresOn: new Date(now + 86_400_000),
          assertion: 'verified',
          serialNumber: SN,
          pinnedDomainCert: ownerDer,
          ...(typeof input.nonce === 'string' ? { nonce: Buffer.from(input.nonce, 'base64') } : {}),
        },
        voucherSigner,
      );
      vouchers.push(voucher);
      const info = await signConveyedInformation({
        information: {
          'ietf-sztp-conveyed-info:onboarding-information': {
            'pre-configuration-script': Buffer.from(script).toString('base64'),
          },
        },
        signer: owner,
      });
      return {
        'conveyed-information': Buffer.from(info).toString('base64'),
        'owner-certificate': Buffer.from(createOwnerCertificateArtifact([ownerDer])).toString('base64'),
        'ownership-voucher': Buffer.from(voucher).toString('base64'),
      };
    });
    return { server, marker, vouchers };
  }

  it('is refused whichever anchor the device holds, and the script never runs', async () => {
    const r = await rogue('idevid');
    // Even a device misconfigured with the IDevID-issuing CA as its voucher anchor (the old advice).
    for (const anchor of ['manufacturer-ca.crt', 'masa-ca.crt']) {
      const d = device(['--bootstrap-url', r.server.url, '--manufacturer-trust-anchor', file(anchor)]);
      const run = await agent(d.args);
      expect(run.code, run.out).toBe(1);
      expect(run.out).toContain(
        anchor === 'manufacturer-ca.crt' ? 'PKI_ERR_NOT_A_VOUCHER_SIGNER' : 'PKI_ERR_UNTRUSTED_SIGNER',
      );
      expect(existsSync(r.marker)).toBe(false);
    }
    // The server side refuses to store such a voucher too.
    expect(voucherUploadProblem(r.vouchers[0] as Uint8Array, SN, new Date())).toMatch(
      /^PKI_ERR_NOT_A_VOUCHER_SIGNER: /,
    );
  });

  it('control: the same rogue flow with a real MASA signature does run the script (the harness reaches §5.6)', async () => {
    const r = await rogue('masa');
    const d = device(['--bootstrap-url', r.server.url, '--manufacturer-trust-anchor', file('masa-ca.crt')]);
    const run = await agent(d.args);
    expect(run.code, run.out).toBe(0);
    expect(existsSync(r.marker)).toBe(true);
    // …and a required voucher-signer EKU the lab MASA lacks refuses it.
    const r2 = await rogue('masa');
    const d2 = device([
      '--bootstrap-url',
      r2.server.url,
      '--manufacturer-trust-anchor',
      file('masa-ca.crt'),
      '--voucher-signer-eku',
      '2.999.1',
    ]);
    const run2 = await agent(d2.args);
    expect(run2.code, run2.out).toBe(1);
    expect(run2.out).toContain('PKI_ERR_NOT_A_VOUCHER_SIGNER');
    expect(existsSync(r2.marker)).toBe(false);
  });
});

describe('every network wait is bounded', () => {
  it('a server that never answers and one that dribbles a byte a second cost --timeout each; the next server is tried', async () => {
    const silent = await tlsServer(() => {});
    const dribble = await tlsServer((sock) => {
      const bytes = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n');
      let i = 0;
      const t = setInterval(
        () => (i < bytes.length && !sock.destroyed ? sock.write(bytes.subarray(i, ++i)) : clearInterval(t)),
        200,
      );
      sock.on('close', () => clearInterval(t));
    });
    const good = await counting();
    const d = device([
      '--bootstrap-url',
      silent.url,
      '--bootstrap-url',
      dribble.url,
      '--bootstrap-url',
      good.url,
      '--timeout',
      '1',
    ]);
    const run = await agent(d.args);
    expect(run.code, run.out).toBe(1);
    expect(good.posts()).toBe(1);
    // Two 1 s deadlines plus start-up; before the fix it never ended.
    expect(run.wallMs).toBeLessThan(15_000);
    expect(run.peakRssKiB).toBeLessThan(200 * 1024);
    const errors = logLines(run.out).filter((l) => l.code === 'SZTP_CLIENT_ERR_CONNECT');
    expect(errors.map((l) => l.msg).join('\n')).toMatch(/deadline passed/);
  });

  it('SIGTERM during a stalled request ends the agent within 2 s, with state saved', async () => {
    const silent = await tlsServer(() => {});
    const d = device(['--bootstrap-url', silent.url, '--timeout', '600']);
    d.args.splice(d.args.indexOf('--once'), 1); // loop forever, as under systemd
    let signalledAt = 0;
    const run = await agent(d.args, (child) => {
      void silent.connected.then(() =>
        // Let the request reach its wait for headers.
        setTimeout(() => {
          signalledAt = Date.now();
          child.kill('SIGTERM');
        }, 300),
      );
    });
    const afterSignal = Date.now() - signalledAt;
    expect(run.code, run.out).toBe(143);
    expect(afterSignal).toBeLessThan(2000);
    const state = JSON.parse(readFileSync(join(d.dir, 'state', 'state.json'), 'utf8'));
    expect(state).toMatchObject({ status: 'idle', enabled: true });
    expect(state.pid).toBeUndefined();
    expect(state.lastAttempt).toMatchObject({ source: silent.url, outcome: 'failed' });
  });
  it('SIGTERM while a conveyed script hangs ends the agent and the script within 2 s', async () => {
    const d = device();
    const started = join(d.dir, 'script-started');
    const script = `#!/bin/sh\necho $$ > '${started}'\nexec sleep 600\n`;
    const server = await restconf(() => ({
      'conveyed-information': ci({
        'ietf-sztp-conveyed-info:onboarding-information': {
          'pre-configuration-script': Buffer.from(script).toString('base64'),
        },
      }),
    }));
    let signalledAt = 0;
    const run = await agent(
      [...d.args, '--bootstrap-url', server.url, '--trust-anchor', file('tls-ca.crt')],
      (child) => {
        const poll = setInterval(() => {
          if (!existsSync(started) || readFileSync(started, 'utf8').trim() === '') return;
          clearInterval(poll);
          signalledAt = Date.now();
          child.kill('SIGTERM');
        }, 20);
        child.once('exit', () => clearInterval(poll));
      },
    );
    expect(Date.now() - signalledAt).toBeLessThan(2000);
    expect(run.code, run.out).toBe(143);
    const pid = Number(readFileSync(started, 'utf8'));
    // The script's process group was ended with the agent (kill 0 only probes).
    await new Promise((r) => setTimeout(r, 1200));
    expect(() => process.kill(pid, 0)).toThrow();
  });
});

describe('one bad source never discards the others', () => {
  it('lease URIs the URL parser refuses are skipped; the lease good one and --bootstrap-url are tried; a corrupt state.json is moved aside', async () => {
    const fromLease = await counting();
    const fromFlag = await counting();
    const uris = [
      'https://[fe80::1%25eth0]:9001',
      'https://[::1%lo]',
      'https://xn--a',
      'https://0xffffffffff',
      fromLease.url,
    ];
    const bytes = Buffer.concat(
      uris.map((u) => {
        const b = Buffer.from(u);
        const len = Buffer.alloc(2);
        len.writeUInt16BE(b.length);
        return Buffer.concat([len, b]);
      }),
    );
    const d = device(['--bootstrap-url', fromFlag.url]);
    d.args.splice(d.args.indexOf('--no-dhcp'), 1);
    const lease = join(d.dir, 'dhclient.leases');
    writeFileSync(
      lease,
      `lease {\n  interface "eth0";\n  option sztp-redirect-urls ${[...bytes].map((b) => b.toString(16)).join(':')};\n}\n`,
    );
    mkdirSync(join(d.dir, 'state'), { recursive: true });
    writeFileSync(join(d.dir, 'state', 'state.json'), '{"version":1,"enabled":"yes", "history": 7');
    const run = await agent([...d.args, '--dhcp-lease-file', lease]);
    expect(run.code, run.out).toBe(1);
    expect(fromFlag.posts()).toBe(1);
    expect(fromLease.posts()).toBe(1);
    const warned = logLines(run.out)
      .filter((l) => l.level === 'warn')
      .map((l) => l.msg);
    expect(warned.join('\n')).toMatch(/moved aside/);
    expect(readdirSync(join(d.dir, 'state')).some((f) => f.startsWith('state.json.corrupt-'))).toBe(true);
    expect(JSON.parse(readFileSync(join(d.dir, 'state', 'state.json'), 'utf8'))).toMatchObject({
      version: 1,
    });
  });

  it('malformed redirect entries are skipped; breadth and total hops are capped (10,000-entry lists)', async () => {
    let self = 0;
    // Each reply: three malformed entries, this server again, then 9,996 loopback tarpits.
    const fan = await restconf(() => ({
      'conveyed-information': ci(
        redirect([
          { address: '127.0.0.1:1' },
          { address: 'http://127.0.0.1' },
          { address: '127.0.0.1/x' },
          { address: '127.0.0.1', port: self },
          ...Array.from({ length: 9996 }, (_, i) => ({
            address: `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`,
            port: self,
          })),
        ]),
      ),
    }));
    self = fan.port;
    const d = device(['--bootstrap-url', fan.url]);
    const run = await agent(d.args);
    expect(run.code, run.out).toBe(1);
    // Past the malformed entries to the valid one, then cut by --max-redirect-hops (32):
    // at most 33 requests in the pass, where depth alone allowed 8^10.
    expect(fan.posts()).toBeGreaterThan(1);
    expect(fan.posts()).toBeLessThanOrEqual(33);
    expect(run.out).toContain('SZTP_CLIENT_ERR_REDIRECT_LOOP');
    expect(run.out).toContain('SZTP_CLIENT_ERR_BAD_SOURCE');
    expect(run.out).toContain('trying the first 8');
    expect(run.wallMs).toBeLessThan(30_000);
    expect(run.peakRssKiB).toBeLessThan(250 * 1024);
    const state = JSON.parse(readFileSync(join(d.dir, 'state', 'state.json'), 'utf8'));
    expect(state.lastAttempt.redirects.length).toBeLessThanOrEqual(10);
  });
});

describe('hostile XML in unsigned data is bounded before any trust decision', () => {
  const shapes: Record<string, () => string> = {
    // issue 11/12: 8,500 namespace declarations and 25,000 empty children (~235 KB).
    'namespaces and children': () =>
      `<redirect-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info" ${Array.from(
        { length: 8500 },
        (_, i) => `xmlns:p${i}="u:${i}"`,
      ).join(' ')}>${'<a/>'.repeat(25_000)}</redirect-information>`,
    // 160,000 attributes on one element.
    attributes: () =>
      `<redirect-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info" ${Array.from(
        { length: 160_000 },
        (_, i) => `a${i}=""`,
      ).join(' ')}/>`,
    // 25,000 nested-then-flat elements each re-declaring the default namespace.
    'namespace per element': () =>
      `<redirect-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info">${'<a xmlns="u:x"/>'.repeat(40_000)}</redirect-information>`,
  };
  for (const [name, make] of Object.entries(shapes)) {
    it(`${name}: refused quickly, in bounded memory`, async () => {
      const xml = Buffer.from(make());
      const server = await restconf(() => ({
        'conveyed-information': Buffer.from(
          encodeOctetContentInfo(ContentTypeOid.sztpConveyedInfoXml, xml),
        ).toString('base64'),
      }));
      const d = device(['--bootstrap-url', server.url]);
      const run = await agent(d.args);
      expect(run.code, run.out).toBe(1);
      expect(run.out).toMatch(/limit/);
      expect(run.wallMs).toBeLessThan(15_000);
      expect(run.peakRssKiB).toBeLessThan(300 * 1024);
    });
  }
});

describe('image hosts and files written as root', () => {
  const image = Buffer.from('a boot image\n'.repeat(1000));
  const sha = toColonHex(createHash('sha256').update(image).digest());

  async function imageHost(handler: (res: import('node:http').ServerResponse) => void) {
    const s = createHttpServer((req, res) => {
      req.resume();
      handler(res);
    });
    return `http://127.0.0.1:${await listening(s)}`;
  }

  /** A TLS-trusted server conveying unsigned onboarding information with a boot image. */
  function onboarding(uris: string[]) {
    return restconf(() => ({
      'conveyed-information': ci({
        'ietf-sztp-conveyed-info:onboarding-information': {
          'boot-image': {
            'os-name': 'lab',
            'os-version': '2',
            'download-uri': uris,
            'image-verification': [
              { 'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256', 'hash-value': sha },
            ],
          },
        },
      }),
    }));
  }

  it('a host dribbling five bytes a second is cut by the rate floor, not waited for', async () => {
    const slow = await imageHost((res) => {
      res.writeHead(200, { 'content-length': '200000' });
      // A byte every 200 ms: never idle for the 1 s --timeout, so only the rate floor can end it.
      const t = setInterval(() => res.write('x'), 200);
      res.on('close', () => clearInterval(t));
    });
    const server = await onboarding([`${slow}/boot.img`]);
    const d = device([
      '--bootstrap-url',
      server.url,
      '--trust-anchor',
      file('tls-ca.crt'),
      '--install-hook',
      'true',
      '--timeout',
      '1',
      '--min-download-rate',
      '50K',
    ]);
    const run = await agent(d.args);
    expect(run.code, run.out).toBe(1);
    expect(run.out).toMatch(/minimum rate/);
    expect(server.progress).toContain('boot-image-error');
    expect(run.wallMs).toBeLessThan(15_000);
  });

  it('`x:..` first in download-uri does not crash the agent, and a symlink planted at the image path is not followed', async () => {
    const host = await imageHost((res) => res.writeHead(200, { 'content-length': image.length }).end(image));
    const server = await onboarding(['x:..', `${host}/boot.img`]);
    const d = device(['--bootstrap-url', server.url, '--trust-anchor', file('tls-ca.crt')]);
    const victim = join(d.dir, 'victim');
    writeFileSync(victim, 'precious\n');
    mkdirSync(join(d.dir, 'state', 'work'), { recursive: true });
    symlinkSync(victim, join(d.dir, 'state', 'work', 'boot.img'));
    const hook = join(d.dir, 'hook.sh');
    writeFileSync(
      hook,
      `#!/bin/sh\n[ -f "$1" ] && [ ! -L "$1" ] && sha256sum "$1" > '${join(d.dir, 'hook.out')}'\n`,
      {
        mode: 0o755,
      },
    );
    const run = await agent([...d.args, '--install-hook', hook]);
    expect(run.code, run.out).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    const seen = readFileSync(join(d.dir, 'hook.out'), 'utf8');
    expect(seen).toContain(sha.replace(/:/g, ''));
    expect(seen).toContain(join(d.dir, 'state', 'work', 'boot.img'));
  });
});

describe('rogue leases', () => {
  it('format detection of a lease file of newlines is linear (1 MiB, was ~21 s for 200 KB)', () => {
    const started = Date.now();
    expect(detectLeaseFormat(`${'\n'.repeat(1 << 20)}x`)).toBeUndefined();
    expect(detectLeaseFormat(`${'\n'.repeat(1 << 20)}lease {\n}\n`)).toBe('dhclient');
    // A quadratic scan needs minutes here; linear needs milliseconds.
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
