/**
 * Key generation and import through `node:crypto`. Private keys leave this
 * module only as PKCS#8 PEM (RFC 5958), public keys as SubjectPublicKeyInfo DER
 * (RFC 5280 §4.1.2.7).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair as nodeGenerateKeyPair,
  type KeyObject,
} from 'node:crypto';
import { PkiError, guard } from './errors.js';

/** Key algorithms `pki/` generates: EC P-256 is the lab default (DESIGN.md, Trust model). */
export type KeyAlgorithm = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

/** All {@link KeyAlgorithm} values. */
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = [
  'ec-p256',
  'ec-p384',
  'rsa-2048',
  'rsa-3072',
  'rsa-4096',
];

/** A generated key pair: PKCS#8 PEM private key and SPKI DER public key. */
export interface GeneratedKey {
  algorithm: KeyAlgorithm;
  /** PKCS#8 (RFC 5958) PEM, `-----BEGIN PRIVATE KEY-----`. */
  privateKeyPem: string;
  /** SubjectPublicKeyInfo DER. */
  publicKey: Uint8Array;
}

/** Generates a key pair off the main thread (RSA generation is slow). */
export async function generateKey(algorithm: KeyAlgorithm): Promise<GeneratedKey> {
  if (!KEY_ALGORITHMS.includes(algorithm))
    throw new PkiError('PKI_ERR_BAD_INPUT', `unknown key algorithm '${String(algorithm)}'`);
  const enc = {
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  } as const;
  const [pub, priv] = await new Promise<[Buffer, string]>((resolve, reject) => {
    const done = (err: Error | null, p: Buffer, k: string) => (err ? reject(err) : resolve([p, k]));
    if (algorithm.startsWith('ec-'))
      nodeGenerateKeyPair('ec', { namedCurve: algorithm === 'ec-p256' ? 'P-256' : 'P-384', ...enc }, done);
    else nodeGenerateKeyPair('rsa', { modulusLength: Number(algorithm.slice(4)), ...enc }, done);
  });
  return { algorithm, privateKeyPem: priv, publicKey: new Uint8Array(pub) };
}

/** Imports a PKCS#8 private key (PEM text or DER bytes). Encrypted keys are not supported. */
export function importPrivateKey(pkcs8: string | Uint8Array): KeyObject {
  return guard('PKI_ERR_BAD_INPUT', 'cannot read PKCS#8 private key', () => {
    const key =
      typeof pkcs8 === 'string'
        ? createPrivateKey({ key: pkcs8, format: 'pem' })
        : createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
    if (
      key.asymmetricKeyType !== 'rsa' &&
      key.asymmetricKeyType !== 'ec' &&
      key.asymmetricKeyType !== 'rsa-pss'
    )
      throw new PkiError(
        'PKI_ERR_UNSUPPORTED_ALGORITHM',
        `key type ${key.asymmetricKeyType} is not supported`,
      );
    return key;
  });
}

/** Imports a SubjectPublicKeyInfo DER public key. */
export function importPublicKey(spki: Uint8Array): KeyObject {
  return guard('PKI_ERR_MALFORMED_DER', 'cannot read SubjectPublicKeyInfo', () =>
    createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }),
  );
}

/** Describes a key as a {@link KeyAlgorithm}-like label, e.g. `ec-p256`, `rsa-2048`. */
export function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    const curve =
      { prime256v1: 'p256', secp384r1: 'p384', secp521r1: 'p521' }[d.namedCurve ?? ''] ?? d.namedCurve;
    return `ec-${curve}`;
  }
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') return `rsa-${d.modulusLength}`;
  return String(key.asymmetricKeyType);
}
