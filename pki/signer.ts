/**
 * The `Signer` port (STYLE.md lesson 9): every signature `pki/` makes goes
 * through it, so a HSM or TPM can stand in for the in-memory key. Also the
 * mapping between signature algorithms and their AlgorithmIdentifiers
 * (RFC 5754 §3, RFC 5758 §3.2, RFC 4055 §3.1) and one verify function over
 * node:crypto.
 */
import {
  type KeyObject,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
  constants,
} from 'node:crypto';
import { decodeOid, decodeSmallInt, int, nul, oid, readChildren, readTlv, seq, tlv } from './der.js';
import { PkiError } from './errors.js';
import { importPrivateKey, publicKeyOf } from './keys.js';
import { AlgOid, HashOid } from './oids.js';

/** Digest algorithms: SHA-2 only (RFC 5754 §2). */
export type HashAlgorithm = 'sha256' | 'sha384' | 'sha512';

/** A signature algorithm: scheme plus digest. */
export interface SignatureAlgorithm {
  scheme: 'ecdsa' | 'rsa-pkcs1' | 'rsa-pss';
  hash: HashAlgorithm;
}

/**
 * Something that signs: a software key today, a HSM/TPM tomorrow.
 * `sign` returns the signature value as it goes into X.509/CMS: DER
 * `Ecdsa-Sig-Value` for ECDSA (RFC 5480 / RFC 3279 §2.2.3), the raw
 * octets for RSA.
 */
export interface Signer {
  /** The algorithm `sign` produces. */
  readonly algorithm: SignatureAlgorithm;
  /** SubjectPublicKeyInfo DER of the signing key. */
  readonly publicKey: Uint8Array;
  /** DER certificates: the signer's own first, then intermediates (may be empty for a key without a cert yet). */
  readonly certificates: readonly Uint8Array[];
  /** Signs `data` (hashing it with `algorithm.hash`). */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** Options for {@link signerFromPrivateKey}. */
export interface SignerOptions {
  /** Signer certificate then intermediates (DER). */
  certificates?: readonly Uint8Array[];
  /** Digest; default by key: P-256→sha256, P-384→sha384, P-521→sha512, RSA→sha256. */
  hash?: HashAlgorithm;
  /** RSA padding; default PKCS#1 v1.5. Ignored for EC keys. */
  rsaPadding?: 'pkcs1' | 'pss';
}

const HASH_LEN: Record<HashAlgorithm, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** A {@link Signer} over a PKCS#8 private key (PEM text or DER) held by node:crypto. */
export function signerFromPrivateKey(
  pkcs8: string | Uint8Array | KeyObject,
  options: SignerOptions = {},
): Signer {
  const key = typeof pkcs8 === 'string' || pkcs8 instanceof Uint8Array ? importPrivateKey(pkcs8) : pkcs8;
  const isEc = key.asymmetricKeyType === 'ec';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const defaultHash: HashAlgorithm = !isEc
    ? 'sha256'
    : curve === 'secp384r1'
      ? 'sha384'
      : curve === 'secp521r1'
        ? 'sha512'
        : 'sha256';
  const hash = options.hash ?? defaultHash;
  if (!(hash in HASH_LEN))
    throw new PkiError('PKI_ERR_UNSUPPORTED_ALGORITHM', `hash '${hash}' not supported`);
  const scheme: SignatureAlgorithm['scheme'] = isEc
    ? 'ecdsa'
    : options.rsaPadding === 'pss'
      ? 'rsa-pss'
      : 'rsa-pkcs1';
  const publicKey = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const keyOpts =
    scheme === 'rsa-pss'
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: HASH_LEN[hash] }
      : scheme === 'rsa-pkcs1'
        ? { key, padding: constants.RSA_PKCS1_PADDING }
        : { key };
  return {
    algorithm: { scheme, hash },
    publicKey,
    certificates: [...(options.certificates ?? [])],
    sign: (data) =>
      new Promise((resolve, reject) =>
        nodeSign(hash, data, keyOpts, (err, sig) => (err ? reject(err) : resolve(new Uint8Array(sig)))),
      ),
  };
}

/** The same signer with its certificate chain replaced (signer certificate first). */
export function withCertificates(signer: Signer, certificates: readonly Uint8Array[]): Signer {
  return {
    algorithm: signer.algorithm,
    publicKey: signer.publicKey,
    certificates: [...certificates],
    sign: (data) => signer.sign(data),
  };
}

/** AlgorithmIdentifier DER of a hash (parameters absent, RFC 5754 §2). */
export function hashAlgorithmIdentifier(hash: HashAlgorithm): Uint8Array {
  return seq(oid(HashOid[hash]));
}

/** AlgorithmIdentifier DER for a signature algorithm, as X.509 and CMS carry it. */
export function signatureAlgorithmIdentifier(alg: SignatureAlgorithm): Uint8Array {
  const h = alg.hash;
  switch (alg.scheme) {
    case 'ecdsa': // RFC 5758 §3.2: parameters MUST be absent.
      return seq(
        oid({ sha256: AlgOid.ecdsaSha256, sha384: AlgOid.ecdsaSha384, sha512: AlgOid.ecdsaSha512 }[h]),
      );
    case 'rsa-pkcs1': // RFC 4055 §5: parameters NULL.
      return seq(
        oid({ sha256: AlgOid.sha256WithRsa, sha384: AlgOid.sha384WithRsa, sha512: AlgOid.sha512WithRsa }[h]),
        nul(),
      );
    case 'rsa-pss': {
      // RFC 4055 §3.1 RSASSA-PSS-params; RFC 4055 §3.3 / RFC 5756: MGF1 with the same hash, salt = hash length.
      const hashId = hashAlgorithmIdentifier(h);
      return seq(
        oid(AlgOid.rsassaPss),
        seq(tlv(0xa0, hashId), tlv(0xa1, seq(oid(AlgOid.mgf1), hashId)), tlv(0xa2, int(HASH_LEN[h]))),
      );
    }
  }
}

const HASH_BY_OID: Record<string, HashAlgorithm> = {
  [HashOid.sha256]: 'sha256',
  [HashOid.sha384]: 'sha384',
  [HashOid.sha512]: 'sha512',
};

/** Maps a digest AlgorithmIdentifier OID to a {@link HashAlgorithm}, or throws PKI_ERR_UNSUPPORTED_ALGORITHM. */
export function hashFromOid(o: string): HashAlgorithm {
  const h = HASH_BY_OID[o];
  if (!h)
    throw new PkiError(
      'PKI_ERR_UNSUPPORTED_ALGORITHM',
      `digest algorithm ${o} is not supported (SHA-2 only)`,
    );
  return h;
}

/** A decoded signature algorithm, with the PSS salt length when it applies. */
export interface ResolvedSignatureAlgorithm extends SignatureAlgorithm {
  saltLength?: number;
}

/**
 * Resolves a signature AlgorithmIdentifier. `digestHash` is the CMS
 * SignerInfo digestAlgorithm, needed when the identifier names only the key
 * type (rsaEncryption, id-ecPublicKey — RFC 3370 §3.2, RFC 5753 §2.1.1).
 */
export function resolveSignatureAlgorithm(
  algOid: string,
  parameters: Uint8Array | undefined,
  digestHash?: HashAlgorithm,
): ResolvedSignatureAlgorithm {
  const unsupported = () =>
    new PkiError('PKI_ERR_UNSUPPORTED_ALGORITHM', `signature algorithm ${algOid} is not supported`);
  switch (algOid) {
    case AlgOid.ecdsaSha256:
      return { scheme: 'ecdsa', hash: 'sha256' };
    case AlgOid.ecdsaSha384:
      return { scheme: 'ecdsa', hash: 'sha384' };
    case AlgOid.ecdsaSha512:
      return { scheme: 'ecdsa', hash: 'sha512' };
    case AlgOid.sha256WithRsa:
      return { scheme: 'rsa-pkcs1', hash: 'sha256' };
    case AlgOid.sha384WithRsa:
      return { scheme: 'rsa-pkcs1', hash: 'sha384' };
    case AlgOid.sha512WithRsa:
      return { scheme: 'rsa-pkcs1', hash: 'sha512' };
    case AlgOid.rsaEncryption:
      if (!digestHash) throw unsupported();
      return { scheme: 'rsa-pkcs1', hash: digestHash };
    case AlgOid.ecPublicKey:
      if (!digestHash) throw unsupported();
      return { scheme: 'ecdsa', hash: digestHash };
    case AlgOid.rsassaPss:
      return parsePssParams(parameters);
    default:
      throw unsupported();
  }
}

function parsePssParams(parameters: Uint8Array | undefined): ResolvedSignatureAlgorithm {
  // RFC 4055 §3.1: absent fields default to SHA-1, which we do not accept.
  if (!parameters)
    throw new PkiError('PKI_ERR_UNSUPPORTED_ALGORITHM', 'RSASSA-PSS without parameters means SHA-1');
  const top = readTlv(parameters);
  if (top.tag !== 0x30) throw new PkiError('PKI_ERR_MALFORMED_DER', 'RSASSA-PSS-params is not a SEQUENCE');
  let hash: HashAlgorithm | undefined;
  let mgfHash: HashAlgorithm | undefined;
  let saltLength = 20;
  for (const f of readChildren(top.value)) {
    const inner = readTlv(f.value);
    if (f.tag === 0xa0) hash = hashFromOid(decodeOid(readTlv(inner.value).value));
    else if (f.tag === 0xa1) {
      const [mgfOid, mgfParam] = readChildren(inner.value);
      if (!mgfOid || decodeOid(mgfOid.value) !== AlgOid.mgf1 || !mgfParam)
        throw new PkiError('PKI_ERR_UNSUPPORTED_ALGORITHM', 'RSASSA-PSS mask generation other than MGF1');
      mgfHash = hashFromOid(decodeOid(readTlv(mgfParam.value).value));
    } else if (f.tag === 0xa2) saltLength = decodeSmallInt(inner.value);
    else if (f.tag === 0xa3 && decodeSmallInt(inner.value) !== 1)
      throw new PkiError('PKI_ERR_UNSUPPORTED_ALGORITHM', 'RSASSA-PSS trailerField other than 1');
  }
  if (!hash || !mgfHash)
    throw new PkiError('PKI_ERR_UNSUPPORTED_ALGORITHM', 'RSASSA-PSS with SHA-1 defaults');
  if (hash !== mgfHash)
    throw new PkiError('PKI_ERR_UNSUPPORTED_ALGORITHM', 'RSASSA-PSS with MGF1 hash ≠ message hash');
  return { scheme: 'rsa-pss', hash, saltLength };
}

/**
 * Verifies `signature` over `data` with a SubjectPublicKeyInfo key. Returns
 * false (never throws) when the signature does not verify or does not fit the key.
 */
export function verifySignature(
  publicKey: Uint8Array | KeyObject,
  alg: ResolvedSignatureAlgorithm,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    const key = publicKey instanceof Uint8Array ? publicKeyOf(publicKey) : publicKey;
    const kt = key.asymmetricKeyType;
    if (alg.scheme === 'ecdsa' ? kt !== 'ec' : kt !== 'rsa' && kt !== 'rsa-pss') return false;
    const opts =
      alg.scheme === 'rsa-pss'
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength ?? HASH_LEN[alg.hash] }
        : alg.scheme === 'rsa-pkcs1'
          ? { key, padding: constants.RSA_PKCS1_PADDING }
          : { key };
    return nodeVerify(alg.hash, data, opts, signature);
  } catch {
    return false;
  }
}
