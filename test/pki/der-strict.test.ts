/**
 * DER strictness: lengths in their minimal form (X.690 §10.1) and Time values
 * that name a real calendar instant. Impossible dates are checked against
 * `openssl verify` on the same certificate bytes, which refuses them too.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeTime, readTlv } from '../../pki/der.js';
import { isPkiError, parseCertificate } from '../../pki/index.js';
import { haveTool } from '../helpers/tools.js';

const enc = (s: string) => new TextEncoder().encode(s);
const utc = (s: string) => decodeTime({ tag: 0x17, value: enc(s), raw: new Uint8Array() });
const gen = (s: string) => decodeTime({ tag: 0x18, value: enc(s), raw: new Uint8Array() });

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    return isPkiError(err) ? err.code : `not a PkiError: ${String(err)}`;
  }
  return undefined;
}

describe('lengths', () => {
  it('accepts the minimal forms', () => {
    expect(readTlv(Uint8Array.of(0x04, 0x03, 1, 2, 3)).value).toEqual(Uint8Array.of(1, 2, 3));
    const long = new Uint8Array(3 + 200);
    long.set([0x04, 0x81, 200]);
    expect(readTlv(long).value.length).toBe(200);
  });

  it('refuses a long form for a length below 128 and a leading zero octet', () => {
    expect(code(() => readTlv(Uint8Array.of(0x04, 0x81, 0x03, 1, 2, 3)))).toBe('PKI_ERR_MALFORMED_DER');
    const padded = new Uint8Array(4 + 200);
    padded.set([0x04, 0x82, 0x00, 200]);
    expect(code(() => readTlv(padded))).toBe('PKI_ERR_MALFORMED_DER');
  });
});

describe('Time', () => {
  it('accepts real instants, leap days included', () => {
    expect(utc('240229235959Z').toISOString()).toBe('2024-02-29T23:59:59.000Z');
    expect(gen('20500101000000Z').toISOString()).toBe('2050-01-01T00:00:00.000Z');
    expect(utc('491231235959Z').getUTCFullYear()).toBe(2049);
    expect(utc('500101000000Z').getUTCFullYear()).toBe(1950);
  });

  it.each([
    ['month 13', '251301000000Z'],
    ['month 0', '250001000000Z'],
    ['day 45', '250145000000Z'],
    ['day 0', '250100000000Z'],
    ['Feb 29 in a common year', '230229000000Z'],
    ['April 31', '250431000000Z'],
    ['hour 24', '250101240000Z'],
    ['minute 60', '250101006000Z'],
    ['second 60', '250101000060Z'],
  ])('refuses %s', (_, s) => {
    expect(code(() => utc(s))).toBe('PKI_ERR_MALFORMED_DER');
    expect(code(() => gen(`20${s}`))).toBe('PKI_ERR_MALFORMED_DER');
  });
});

describe.skipIf(!haveTool('openssl'))('the same bytes through openssl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-der-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A self-signed certificate made by openssl, as DER, and where its notBefore UTCTime digits start. */
  function opensslCert(): { der: Buffer; at: number } {
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=der',
        '-days',
        '10',
        '-keyout',
        join(dir, 'k.pem'),
        '-outform',
        'DER',
        '-out',
        join(dir, 'c.der'),
      ],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const der = readFileSync(join(dir, 'c.der'));
    return { der, at: der.indexOf(Buffer.from([0x17, 0x0d])) + 2 };
  }

  /** `openssl verify` of a self-signed certificate against itself: exit status and output. */
  function verify(der: Uint8Array): { status: number | null; out: string } {
    writeFileSync(join(dir, 'x.der'), der);
    const pem = spawnSync('openssl', [
      'x509',
      '-inform',
      'DER',
      '-in',
      join(dir, 'x.der'),
      '-out',
      join(dir, 'x.pem'),
    ]);
    expect(pem.status).toBe(0);
    const r = spawnSync('openssl', ['verify', '-CAfile', join(dir, 'x.pem'), join(dir, 'x.pem')], {
      encoding: 'utf8',
    });
    return { status: r.status, out: r.stdout + r.stderr };
  }

  it('openssl and pki accept the certificate as made', () => {
    const { der } = opensslCert();
    expect(verify(der).status).toBe(0);
    expect(() => parseCertificate(der)).not.toThrow();
  });

  it.each([
    ['month 13', (t: string) => `${t.slice(0, 2)}13${t.slice(4)}`],
    ['day 45', (t: string) => `${t.slice(0, 4)}45${t.slice(6)}`],
  ])('both refuse a notBefore with %s', (_, mutate) => {
    const { der, at } = opensslCert();
    const bad = Buffer.from(der);
    bad.write(mutate(der.subarray(at, at + 13).toString('latin1')), at, 'latin1');
    const v = verify(bad);
    expect(v.status).not.toBe(0);
    expect(v.out).toMatch(/format error in certificate's notBefore field/);
    expect(code(() => parseCertificate(bad))).toBe('PKI_ERR_MALFORMED_DER');
  });
});
