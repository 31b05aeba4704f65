/**
 * Shared test material for pki tests: key/certificate factories, an OpenSSL
 * runner, a pkijs verifier and temp dirs. Keys are generated per test file
 * (RSA sparingly: the CI machine is small).
 */
import { execFileSync } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import {
  type CertificateProfile,
  type KeyAlgorithm,
  type Signer,
  createCertificate,
  generateKey,
  signerFromPrivateKey,
  toPem,
} from '../../pki/index.js';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** A fixed clock for deterministic validity checks. */
export const NOW = new Date('2030-06-01T12:00:00Z');

/** A key plus its certificate chain and a signer over it. */
export interface Identity {
  cert: Uint8Array;
  keyPem: string;
  publicKey: Uint8Array;
  /** Signer with certificates [cert, ...issuer chain without the root]. */
  signer: Signer;
  /** Every certificate above this one up to and including the root. */
  chain: Uint8Array[];
}

/** Creates a self-signed CA. */
export async function makeRoot(
  alg: KeyAlgorithm,
  cn: string,
  opts: { notBefore?: Date; notAfter?: Date; rsaPadding?: 'pkcs1' | 'pss' } = {},
): Promise<Identity> {
  const k = await generateKey(alg);
  const s = signerFromPrivateKey(k.privateKeyPem, opts.rsaPadding ? { rsaPadding: opts.rsaPadding } : {});
  const cert = await createCertificate({
    profile: 'ca',
    subject: { organization: 'pki tests', commonName: cn },
    publicKey: k.publicKey,
    issuer: s,
    notBefore: opts.notBefore ?? new Date(NOW.getTime() - 365 * DAY),
    notAfter: opts.notAfter ?? new Date(NOW.getTime() + 3650 * DAY),
  });
  return {
    cert,
    keyPem: k.privateKeyPem,
    publicKey: k.publicKey,
    signer: signerFromPrivateKey(k.privateKeyPem, {
      certificates: [cert],
      ...(opts.rsaPadding ? { rsaPadding: opts.rsaPadding } : {}),
    }),
    chain: [],
  };
}

/** Issues a certificate under `issuer`. `reuseKey` avoids generating a new key (RSA is slow). */
export async function issue(
  issuer: Identity,
  profile: CertificateProfile,
  cn: string,
  opts: {
    alg?: KeyAlgorithm;
    reuseKey?: { keyPem: string; publicKey: Uint8Array };
    serialNumber?: string;
    notBefore?: Date;
    notAfter?: Date;
    pathLength?: number;
    hash?: 'sha256' | 'sha384' | 'sha512';
    rsaPadding?: 'pkcs1' | 'pss';
  } = {},
): Promise<Identity> {
  const k = opts.reuseKey ?? (await generateKey(opts.alg ?? 'ec-p256'));
  const cert = await createCertificate({
    profile,
    subject: {
      organization: 'pki tests',
      commonName: cn,
      ...(opts.serialNumber ? { serialNumber: opts.serialNumber } : {}),
    },
    publicKey: k.publicKey,
    issuer: issuer.signer,
    notBefore: opts.notBefore ?? new Date(NOW.getTime() - 30 * DAY),
    notAfter: opts.notAfter ?? new Date(NOW.getTime() + 365 * DAY),
    ...(opts.pathLength !== undefined ? { pathLength: opts.pathLength } : {}),
  });
  const chain = [issuer.cert, ...issuer.chain];
  const intermediates = chain.slice(0, -1);
  return {
    cert,
    keyPem: 'privateKeyPem' in k ? k.privateKeyPem : k.keyPem,
    publicKey: k.publicKey,
    signer: signerFromPrivateKey('privateKeyPem' in k ? k.privateKeyPem : k.keyPem, {
      certificates: [cert, ...intermediates],
      ...(opts.hash ? { hash: opts.hash } : {}),
      ...(opts.rsaPadding ? { rsaPadding: opts.rsaPadding } : {}),
    }),
    chain,
  };
}

/** A temp dir and a cleanup function. */
export function tempDir(prefix = 'pki-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs openssl; returns stdout, throws with stderr on failure. */
export function openssl(args: string[], input?: Uint8Array): Buffer {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 16 << 20 });
}

/** Like {@link openssl} but returns the exit status and stderr instead of throwing. */
export function opensslStatus(args: string[]): { status: number; stderr: string; stdout: string } {
  try {
    const stdout = execFileSync('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] }).toString();
    return { status: 0, stderr: '', stdout };
  } catch (err) {
    const e = err as { status?: number; stderr?: Buffer; stdout?: Buffer };
    return { status: e.status ?? 1, stderr: String(e.stderr ?? ''), stdout: String(e.stdout ?? '') };
  }
}

/** Writes certificates as one PEM file. */
export function writePem(path: string, certs: Uint8Array[]): string {
  writeFileSync(path, certs.map((c) => toPem(c, 'CERTIFICATE')).join(''));
  return path;
}

let engineSet = false;
/**
 * Verifies a CMS SignedData with pkijs (an independent implementation).
 * `extraCerts` are added when the signer certificate is not embedded.
 */
export async function pkijsVerify(der: Uint8Array, extraCerts: Uint8Array[] = []): Promise<boolean> {
  if (!engineSet) {
    pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as never }));
    engineSet = true;
  }
  const ci = pkijs.ContentInfo.fromBER(der);
  const sd = new pkijs.SignedData({ schema: ci.content });
  sd.certificates = [...(sd.certificates ?? []), ...extraCerts.map((c) => pkijs.Certificate.fromBER(c))];
  const r = await sd.verify({ signer: 0, checkChain: false, extendedMode: true });
  return r.signatureVerified === true;
}
