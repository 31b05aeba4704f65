/**
 * Certification path validation with an explicit clock (RFC 5280 §6, the
 * subset this service needs): signatures, validity at `now`, basicConstraints
 * and pathLenConstraint, keyUsage keyCertSign, unknown critical extensions.
 * Trust anchors are certificates and may be non-root ("partial chain"): RFC
 * 8366's pinned-domain-cert may be an intermediate or the end-entity itself.
 */
import { bytesEqual } from './der.js';
import { PkiError, type PkiErrorCode } from './errors.js';
import { type CertificateInfo, PROCESSED_EXTENSIONS, parseCertificate } from './certificate-info.js';
import { resolveSignatureAlgorithm, verifySignature } from './signer.js';

/** Input to {@link validateCertificatePath}. */
export interface PathValidationInput {
  /** The end-entity certificate (DER or already parsed). */
  certificate: Uint8Array | CertificateInfo;
  /** Untrusted intermediates that may help build the path. */
  intermediates?: readonly (Uint8Array | CertificateInfo)[];
  /** Trust anchors; any certificate here ends the path, root or not. */
  trustAnchors: readonly (Uint8Array | CertificateInfo)[];
  /** The validation time. */
  now: Date;
  /** Code to raise when no path to an anchor exists (default PKI_ERR_UNTRUSTED_SIGNER). */
  untrustedCode?: PkiErrorCode;
  /** Maximum certificates in a path, anchor included (default 10). */
  maxLength?: number;
}

/** A validated path, end-entity first, trust anchor last. */
export interface ValidatedPath {
  path: CertificateInfo[];
  anchor: CertificateInfo;
}

const parse = (c: Uint8Array | CertificateInfo): CertificateInfo =>
  c instanceof Uint8Array ? parseCertificate(c) : c;

/** True when `issuer`'s key verifies `subject`'s signature and the names chain. */
export function isIssuedBy(subject: CertificateInfo, issuer: CertificateInfo): boolean {
  if (!bytesEqual(subject.issuerDer, issuer.subjectDer)) return false;
  try {
    const alg = resolveSignatureAlgorithm(
      subject.signatureAlgorithm.oid,
      subject.signatureAlgorithm.parameters,
    );
    return verifySignature(issuer.publicKey, alg, subject.tbs, subject.signature);
  } catch {
    return false;
  }
}

function checkTimeAndExtensions(c: CertificateInfo, now: Date): void {
  if (now < c.notBefore)
    throw new PkiError(
      'PKI_ERR_CERT_NOT_YET_VALID',
      `'${c.subject}' is not valid before ${c.notBefore.toISOString()}`,
    );
  if (now > c.notAfter)
    throw new PkiError('PKI_ERR_CERT_EXPIRED', `'${c.subject}' expired ${c.notAfter.toISOString()}`);
  const unknown = c.criticalExtensions.find((o) => !PROCESSED_EXTENSIONS.includes(o));
  if (unknown)
    throw new PkiError(
      'PKI_ERR_UNKNOWN_CRITICAL_EXTENSION',
      `'${c.subject}' has unprocessed critical extension ${unknown}`,
    );
}

function checkIssuer(c: CertificateInfo, intermediatesBelow: number): void {
  // RFC 5280 §6.1.4 (k): an issuer must be a CA; (l)/(m) pathLenConstraint; (n) keyCertSign.
  if (!c.isCa) throw new PkiError('PKI_ERR_NOT_A_CA', `'${c.subject}' issues certificates but is not a CA`);
  if (c.pathLength !== undefined && intermediatesBelow > c.pathLength)
    throw new PkiError('PKI_ERR_NOT_A_CA', `'${c.subject}' pathLenConstraint ${c.pathLength} exceeded`);
  if (c.keyUsage && !c.keyUsage.includes('keyCertSign'))
    throw new PkiError('PKI_ERR_KEY_USAGE', `'${c.subject}' key usage lacks keyCertSign`);
}

/**
 * Builds and validates a path from `certificate` to one of `trustAnchors` at
 * `now`. Every certificate in the path, the anchor included, must be within
 * its validity period (as OpenSSL checks). Throws a coded PkiError.
 */
export function validateCertificatePath(input: PathValidationInput): ValidatedPath {
  const { now } = input;
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw new PkiError('PKI_ERR_BAD_INPUT', 'validation time must be a valid Date');
  const leaf = parse(input.certificate);
  const anchors = input.trustAnchors.map(parse);
  const pool = (input.intermediates ?? []).map(parse);
  const maxLength = input.maxLength ?? 10;
  const untrusted = input.untrustedCode ?? 'PKI_ERR_UNTRUSTED_SIGNER';
  if (anchors.length === 0) throw new PkiError(untrusted, 'no trust anchors configured');

  const path: CertificateInfo[] = [leaf];
  const isAnchor = (c: CertificateInfo) => anchors.find((a) => bytesEqual(a.der, c.der));
  let current = leaf;
  let anchor = isAnchor(leaf);
  while (!anchor) {
    if (path.length >= maxLength)
      throw new PkiError(untrusted, `no path to a trust anchor within ${maxLength} certificates`);
    const fromAnchor = anchors.find((a) => isIssuedBy(current, a));
    if (fromAnchor) {
      path.push(fromAnchor);
      anchor = fromAnchor;
      break;
    }
    const next = pool.find((p) => !path.some((q) => bytesEqual(q.der, p.der)) && isIssuedBy(current, p));
    if (!next) throw new PkiError(untrusted, `'${current.subject}' does not chain to a trust anchor`);
    path.push(next);
    current = next;
    anchor = isAnchor(next);
  }
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    checkTimeAndExtensions(c, now);
    if (i > 0) checkIssuer(c, Math.max(0, i - 1));
  }
  return { path, anchor };
}
