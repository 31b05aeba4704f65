/**
 * The two commands, run as a user would: `node dist/cli/dpu-ztp.js pki init`
 * and `node dist/cli/sztp-client.js verify` (npm test builds dist/ first).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConveyedInformation,
  createOwnerCertificateArtifact,
  createUnsignedConveyedInformation,
  decodeArtifact,
  parseCertificate,
  signConveyedInformation,
  signerFromPrivateKey,
} from '../../pki/index.js';
import { haveTool } from '../helpers/tools.js';
import { openssl, tempDir } from './fixtures.js';

const run = (cli: 'dpu-ztp' | 'sztp-client', args: string[]) => {
  const r = spawnSync(process.execPath, [join('dist/cli', `${cli}.js`), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

const INFO: ConveyedInformation = {
  'ietf-sztp-conveyed-info:onboarding-information': {
    'boot-image': {
      'download-uri': ['https://images.example/os.iso'],
      'image-verification': [{ 'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256', 'hash-value': '01:02' }],
    },
  },
};

let t: ReturnType<typeof tempDir>;
let pki: string;
beforeAll(() => {
  t = tempDir('pki-cli-');
  pki = join(t.dir, 'lab');
});
afterAll(() => t.cleanup());

describe('dpu-ztp pki init', () => {
  it('writes exactly the documented files with the documented modes', () => {
    const r = run('dpu-ztp', [
      'pki',
      'init',
      '--out',
      pki,
      '--devices',
      'SN-1,SN-2',
      '--server-names',
      'ztp.lab,10.0.0.5',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const files = [
      ...['manufacturer-ca', 'masa-ca', 'masa', 'owner-ca', 'owner', 'tls-ca', 'server'].flatMap((n) => [
        `${n}.crt`,
        `${n}.key`,
      ]),
      ...['SN-1', 'SN-2'].flatMap((sn) =>
        ['idevid.crt', 'idevid.key', 'ownership-voucher.cms'].map((f) => `devices/${sn}/${f}`),
      ),
    ];
    for (const f of files) {
      const mode = statSync(join(pki, f)).mode & 0o777;
      expect([f, mode.toString(8)]).toEqual([f, f.endsWith('.key') ? '600' : '644']);
    }
    expect(readFileSync(join(pki, 'owner.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const server = parseCertificate(decodeArtifact(readFileSync(join(pki, 'server.crt'))));
    expect(server.subjectAltNames).toEqual({ dns: ['ztp.lab'], ip: ['10.0.0.5'] });
    const dev = parseCertificate(decodeArtifact(readFileSync(join(pki, 'devices/SN-1/idevid.crt'))));
    expect(dev.subjectSerialNumber).toBe('SN-1');
    expect(parseCertificate(decodeArtifact(readFileSync(join(pki, 'masa.crt')))).issuer).toBe(
      parseCertificate(decodeArtifact(readFileSync(join(pki, 'masa-ca.crt')))).subject,
    );
  });

  it('refuses to overwrite without --force, overwrites with it', () => {
    const r = run('dpu-ztp', ['pki', 'init', '--out', pki]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^error: CLI_ERR_EXISTS: .*--force/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const before = readFileSync(join(pki, 'owner-ca.crt'), 'utf8');
    const f = run('dpu-ztp', ['pki', 'init', '--out', pki, '--devices', 'SN-1', '--force']);
    expect(f.status, f.stderr).toBe(0);
    expect(readFileSync(join(pki, 'owner-ca.crt'), 'utf8')).not.toBe(before);
    expect(statSync(join(pki, 'owner-ca.key')).mode & 0o777).toBe(0o600);
  });

  it('rejects a bad algorithm and a bad serial', () => {
    expect(run('dpu-ztp', ['pki', 'init', '--out', join(t.dir, 'x'), '--alg', 'dsa']).status).not.toBe(0);
    const r = run('dpu-ztp', ['pki', 'init', '--out', join(t.dir, 'y'), '--devices', '../evil']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^error: CLI_ERR_USAGE: /);
  });

  it.skipIf(!haveTool('openssl'))('rsa-2048 PKI: OpenSSL verifies the certificates and the vouchers', () => {
    const out = join(t.dir, 'rsa');
    expect(run('dpu-ztp', ['pki', 'init', '--out', out, '--alg', 'rsa-2048', '--devices', 'R1']).status).toBe(
      0,
    );
    expect(
      openssl(['verify', '-CAfile', join(out, 'tls-ca.crt'), join(out, 'server.crt')]).toString(),
    ).toContain('OK');
    expect(
      openssl([
        'verify',
        '-CAfile',
        join(out, 'manufacturer-ca.crt'),
        join(out, 'devices/R1/idevid.crt'),
      ]).toString(),
    ).toContain('OK');
    const voucher = openssl([
      'cms',
      '-verify',
      '-binary',
      '-inform',
      'DER',
      '-in',
      join(out, 'devices/R1/ownership-voucher.cms'),
      '-CAfile',
      join(out, 'masa-ca.crt'),
      '-purpose',
      'any',
    ]);
    expect(JSON.parse(voucher.toString())['ietf-voucher:voucher']['serial-number']).toBe('R1');
  });
});

describe('sztp-client verify', () => {
  let args: string[];
  beforeAll(async () => {
    const owner = signerFromPrivateKey(readFileSync(join(pki, 'owner.key'), 'utf8'), {
      certificates: [decodeArtifact(readFileSync(join(pki, 'owner.crt')))],
    });
    const ci = await signConveyedInformation({ information: INFO, signer: owner, format: 'xml' });
    // Conveyed information as DER, owner certificate as base64 (RESTCONF JSON form), voucher as DER, anchor as PEM.
    writeFileSync(join(t.dir, 'ci.cms'), ci);
    writeFileSync(
      join(t.dir, 'oc.b64'),
      Buffer.from(createOwnerCertificateArtifact([owner.certificates[0]!])).toString('base64'),
    );
    writeFileSync(join(t.dir, 'unsigned.cms'), createUnsignedConveyedInformation(INFO));
    args = [
      'verify',
      '--conveyed-information',
      join(t.dir, 'ci.cms'),
      '--owner-certificate',
      join(t.dir, 'oc.b64'),
      '--ownership-voucher',
      join(pki, 'devices/SN-1/ownership-voucher.cms'),
      '--manufacturer-trust-anchor',
      join(pki, 'masa-ca.crt'),
      '--serial-number',
      'SN-1',
    ];
  });

  it('prints the decoded conveyed information as JSON and exits 0', () => {
    const r = run('sztp-client', args);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(INFO);
  });

  it('accepts PEM input for the artifacts too', () => {
    const pem = `-----BEGIN CMS-----\n${readFileSync(join(t.dir, 'ci.cms')).toString('base64')}\n-----END CMS-----\n`;
    writeFileSync(join(t.dir, 'ci.pem'), pem);
    const r = run(
      'sztp-client',
      args.map((a) => (a.endsWith('ci.cms') ? join(t.dir, 'ci.pem') : a)),
    );
    expect(r.status, r.stderr).toBe(0);
  });

  const failures: [string, (a: string[]) => string[], RegExp][] = [
    ['wrong serial', (a) => [...a.slice(0, -1), 'SN-2'], /^error: PKI_ERR_SERIAL_MISMATCH: /],
    [
      'voucher expired at --now',
      (a) => [...a, '--now', '2099-01-01T00:00:00Z'],
      /^error: PKI_ERR_(VOUCHER_EXPIRED|CERT_EXPIRED): /,
    ],
    [
      'nonce not in voucher',
      (a) => [...a, '--nonce', Buffer.alloc(16, 1).toString('base64')],
      /^error: PKI_ERR_NONCE_MISMATCH: /,
    ],
    ['signed data without voucher', (a) => a.slice(0, 5), /^error: PKI_ERR_MISSING_ARTIFACT: /],
    ['bad --now', (a) => [...a, '--now', 'tomorrow'], /^error: CLI_ERR_USAGE: /],
    [
      'missing file',
      (_a) => ['verify', '--conveyed-information', '/nonexistent/ci.cms'],
      /^error: CLI_ERR_FILE: /,
    ],
  ];
  for (const [name, mk, re] of failures) {
    it(`fails with one coded line: ${name}`, () => {
      const r = run('sztp-client', mk(args));
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    });
  }

  it('refuses unsigned data unless --allow-unsigned', () => {
    const u = ['verify', '--conveyed-information', join(t.dir, 'unsigned.cms')];
    const r = run('sztp-client', u);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^error: PKI_ERR_UNSIGNED: /);
    const ok = run('sztp-client', [...u, '--allow-unsigned']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual(INFO);
  });
});
