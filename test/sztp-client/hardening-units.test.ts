/**
 * The small pure checks behind the agent's hardening (issue 12), each with the
 * hostile inputs that broke it: URIs the §8.3 grammar passed but the URL parser
 * refused, redirect addresses that are not `inet:host`, image names that named
 * a directory, and state files that are not ours.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createCertificate,
  createLabPki,
  decodeArtifact,
  generateKey,
  parseCertificate,
  signerFromPrivateKey,
  voucherSignerProblem,
} from '../../pki/index.js';
import { checkBootstrapServerUri } from '../../sztp-client/discovery/index.js';
import { imageFileName } from '../../sztp-client/onboarding.js';
import { isAgentError, redirectUrl, StateStore } from '../../sztp-client/index.js';

const root = mkdtempSync(join(tmpdir(), 'sztp-hardening-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('bootstrap server URIs (RFC 8572 §8.3) that the URL parser would refuse', () => {
  it.each([
    'https://[fe80::1%25eth0]:9001',
    'https://[::1%lo]',
    'https://xn--a',
    'https://0xffffffffff',
    'https://0x7f000001',
  ])('%s is refused alone', (uri) => {
    expect(checkBootstrapServerUri(uri)).toMatchObject({ ok: false });
  });
  it('ordinary names and addresses still pass', () => {
    expect(checkBootstrapServerUri('https://sztp1.example.com:8443')).toEqual({
      ok: true,
      uri: 'https://sztp1.example.com:8443',
    });
    expect(checkBootstrapServerUri('https://[2001:db8::1]')).toEqual({
      ok: true,
      uri: 'https://[2001:db8::1]',
    });
    expect(checkBootstrapServerUri('https://10.0.0.5:443')).toEqual({ ok: true, uri: 'https://10.0.0.5' });
  });
});

describe('redirect entries (RFC 8572 §2.2 inet:host + port)', () => {
  it.each([
    ['127.0.0.1:1', 443],
    ['http://127.0.0.1', 443],
    ['127.0.0.1/x', 443],
    ['evil.example/path?q', 443],
    ['fe80::1%eth0', 443],
    ['', 443],
    ['10.0.0.1', 0],
    ['10.0.0.1', 70000],
  ])('%s port %d is SZTP_CLIENT_ERR_BAD_SOURCE', (address, port) => {
    let err: unknown;
    try {
      redirectUrl({ address, port });
    } catch (e) {
      err = e;
    }
    expect(isAgentError(err, 'SZTP_CLIENT_ERR_BAD_SOURCE')).toBe(true);
  });
  it('host names, IPv4 and IPv6 (bracketed or not) make URLs', () => {
    expect(redirectUrl({ address: 'ztp.example.com', port: 443 })).toBe('https://ztp.example.com:443');
    expect(redirectUrl({ address: '2001:db8::1', port: 8443 })).toBe('https://[2001:db8::1]:8443');
    expect(redirectUrl({ address: '[2001:db8::1]', port: 8443 })).toBe('https://[2001:db8::1]:8443');
    expect(redirectUrl({ address: '192.0.2.1', port: 9 })).toBe('https://192.0.2.1:9');
  });
});

describe('boot image work-file name', () => {
  it.each([
    [['x:..', 'http://h/boot.img'], 'boot.img'],
    [['http://h/..'], 'boot-image'],
    [['http://h/%2e%2e'], 'boot-image'],
    [['http://h/a/..%2f..%2fetc%2fpasswd'], '_.._etc_passwd'],
    [['http://h/'], 'boot-image'],
    [['ftp://h/x.iso', 'https://h/os.bfb?sig=1'], 'os.bfb'],
    [[`http://h/${'a'.repeat(300)}.iso`], `${'a'.repeat(96)}.iso`],
    [[], 'boot-image'],
  ])('%j → %s', (uris, name) => {
    const got = imageFileName(uris);
    expect(got).toBe(name);
    expect(got).not.toMatch(/^\.|\//);
  });
});

describe('state.json that is not ours is moved aside', () => {
  it.each([
    ['not JSON', '{"version":1,'],
    ['wrong shape', '{"version":1,"enabled":"yes"}'],
    ['history not a list', '{"version":1,"enabled":true,"history":{}}'],
    ['too large', `{"version":1,"enabled":true,"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`],
  ])('%s', async (_what, text) => {
    const dir = mkdtempSync(join(root, 'state-'));
    writeFileSync(join(dir, 'state.json'), text);
    const store = new StateStore(dir);
    const s = await store.load();
    expect(s).toMatchObject({ version: 1, enabled: true, status: 'idle' });
    expect(store.recovered?.movedTo).toMatch(/state\.json\.corrupt-/);
    expect(readdirSync(dir).filter((f) => f.startsWith('state.json.corrupt-'))).toHaveLength(1);
  });

  it('a symlink is moved aside, its target is neither read nor written', async () => {
    const dir = mkdtempSync(join(root, 'state-'));
    mkdirSync(join(dir, 'elsewhere'));
    const target = join(dir, 'elsewhere', 'secret');
    writeFileSync(target, '{"version":1,"enabled":false}');
    symlinkSync(target, join(dir, 'state.json'));
    const store = new StateStore(dir);
    expect(await store.load()).toMatchObject({ enabled: true });
    expect(store.recovered?.reason).toMatch(/symlink/);
    await store.update((s) => {
      s.attempts = 1;
    });
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual(['secret']);
  });
});

describe('who may sign a voucher (voucherSignerProblem)', () => {
  it('a MASA may; an IDevID may not; a required EKU is required', async () => {
    const lab = await createLabPki({ now: new Date(), devices: ['SN-9'] });
    const text = (p: string) => lab.files.find((f) => f.path === p)?.data as string;
    const masa = parseCertificate(decodeArtifact(text('masa.crt')));
    const idevid = parseCertificate(decodeArtifact(text('devices/SN-9/idevid.crt')));
    expect(voucherSignerProblem(masa)).toBeUndefined();
    expect(voucherSignerProblem(idevid)).toMatch(/device identity/);
    expect(voucherSignerProblem(masa, '2.999.1')).toMatch(
      /lacks the required voucher-signer purpose 2\.999\.1/,
    );
    const k = await generateKey('ec-p256');
    const ca = signerFromPrivateKey(text('masa-ca.key'), {
      certificates: [decodeArtifact(text('masa-ca.crt'))],
    });
    const withEku = await createCertificate({
      profile: 'signing',
      subject: { commonName: 'MASA with a purpose' },
      publicKey: k.publicKey,
      issuer: ca,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      extendedKeyUsages: ['2.999.1'],
    });
    expect(voucherSignerProblem(parseCertificate(withEku), '2.999.1')).toBeUndefined();
  });
});
