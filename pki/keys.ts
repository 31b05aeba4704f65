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
import { decodeOid, readChildren, readTlv } from './der.js';
import { PkiError, guard } from './errors.js';
import { AlgOid } from './oids.js';

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

const CURVES: Record<string, string> = {
  '1.2.840.10045.3.1.7': 'ec-p256',
  '1.3.132.0.34': 'ec-p384',
  '1.3.132.0.35': 'ec-p521',
};

/**
 * Names the key in a SubjectPublicKeyInfo (RFC 5480 §2, RFC 3279 §2.3.1)
 * without importing it: `ec-p256`, `rsa-2048`, …, or the algorithm OID.
 * Importing costs ~0.1 ms; a malformed key still fails when it is used.
 */
export function describeSpki(spki: Uint8Array): string {
  const [algT, bitsT] = readChildren(readTlv(spki).value);
  if (algT?.tag !== 0x30 || bitsT?.tag !== 0x03)
    throw new PkiError('PKI_ERR_MALFORMED_DER', 'bad SubjectPublicKeyInfo');
  const [oidT, paramT] = readChildren(algT.value);
  const alg = oidT?.tag === 0x06 ? decodeOid(oidT.value) : '';
  if (alg === AlgOid.ecPublicKey) {
    const curve = paramT?.tag === 0x06 ? decodeOid(paramT.value) : '';
    return CURVES[curve] ?? `ec-${curve}`;
  }
  if (alg === AlgOid.rsaEncryption || alg === AlgOid.rsassaPss) {
    const [modT] = readChildren(readTlv(bitsT.value.subarray(1)).value);
    if (modT?.tag !== 0x02) throw new PkiError('PKI_ERR_MALFORMED_DER', 'bad RSAPublicKey');
    let m = modT.value;
    while (m.length > 0 && m[0] === 0) m = m.subarray(1);
    const bits = m.length === 0 ? 0 : (m.length - 1) * 8 + (32 - Math.clz32(m[0]!));
    return `rsa-${bits}`;
  }
  return alg;
}

const keyCache = new WeakMap<Uint8Array, KeyObject>();

/** {@link importPublicKey}, memoised per SPKI array (certificate summaries hold theirs for life). */
export function publicKeyOf(spki: Uint8Array): KeyObject {
  let k = keyCache.get(spki);
  if (!k) {
    k = importPublicKey(spki);
    keyCache.set(spki, k);
  }
  return k;
}
