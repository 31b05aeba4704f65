/**
 * Issuing X.509 v3 certificates (RFC 5280 §4.1) with a {@link Signer}: roots,
 * intermediates, signing end-entities (owner, MASA), TLS servers with SANs
 * and device IDevIDs with the serial number in the subject (IEEE 802.1AR §8).
 */
import { createHash, randomBytes } from 'node:crypto';
import { concat, int, readChildren, readTlv, seq, time, tlv } from './der.js';
import { PkiError } from './errors.js';
import { importPublicKey } from './keys.js';
import { type DistinguishedName, encodeName } from './names.js';
import { parseCertificate } from './certificate-info.js';
import { EkuOid } from './oids.js';
import { type Signer, signatureAlgorithmIdentifier } from './signer.js';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
} from './x509-lib.js';

/**
 * What the certificate is for; decides basicConstraints, keyUsage and extKeyUsage.
 * - `ca`: cA=true, keyCertSign+cRLSign (root when self-signed, else intermediate);
 * - `signing`: end-entity digitalSignature (owner certificate RFC 8572 §3.2, MASA voucher signer);
 * - `tls-server`: digitalSignature (+keyEncipherment for RSA), serverAuth, SANs;
 * - `idevid`: digitalSignature (+keyEncipherment for RSA), clientAuth, serialNumber in subject.
 */
export type CertificateProfile = 'ca' | 'signing' | 'tls-server' | 'idevid';

/** Input to {@link createCertificate}. */
export interface CertificateRequest {
  profile: CertificateProfile;
  subject: DistinguishedName;
  /** SubjectPublicKeyInfo DER of the subject key. */
  publicKey: Uint8Array;
  /**
   * The issuing key. Its `certificates[0]` is the issuer certificate; when it has
   * none the certificate is self-signed and `publicKey` must be the signer's own.
   */
  issuer: Signer;
  notBefore: Date;
  notAfter: Date;
  /** basicConstraints pathLenConstraint for `ca`. */
  pathLength?: number;
  /** DNS names for subjectAltName (`tls-server`). */
  dnsNames?: readonly string[];
  /** IPv4/IPv6 addresses for subjectAltName (`tls-server`). */
  ipAddresses?: readonly string[];
  /** extKeyUsage OIDs for a `signing` certificate (e.g. the lab MASA's voucher-signer purpose). */
  extendedKeyUsages?: readonly string[];
  /** Serial number bytes; default 16 random bytes, positive (RFC 5280 §4.1.2.2). */
  serialNumber?: Uint8Array;
}

/** Subject key identifier, RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const [, bits] = readChildren(readTlv(spki).value);
  if (bits?.tag !== 0x03)
    throw new PkiError('PKI_ERR_MALFORMED_DER', 'SubjectPublicKeyInfo without BIT STRING');
  return new Uint8Array(createHash('sha1').update(bits.value.subarray(1)).digest());
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const extDer = (e: { rawData: ArrayBuffer }) => new Uint8Array(e.rawData);

/** Issues a certificate; returns its DER. */
export async function createCertificate(req: CertificateRequest): Promise<Uint8Array> {
  if (!(req.notBefore instanceof Date) || !(req.notAfter instanceof Date) || !(req.notAfter > req.notBefore))
    throw new PkiError('PKI_ERR_BAD_INPUT', 'notAfter must be a date after notBefore');
  const subjectKey = importPublicKey(req.publicKey);
  const issuerCert = req.issuer.certificates[0];
  const issuerInfo = issuerCert ? parseCertificate(issuerCert) : undefined;
  if (!issuerInfo && hex(req.issuer.publicKey) !== hex(req.publicKey))
    throw new PkiError('PKI_ERR_BAD_INPUT', 'self-signed certificate: subject key must be the signer key');
  if (issuerInfo && !issuerInfo.isCa)
    throw new PkiError('PKI_ERR_NOT_A_CA', `issuer '${issuerInfo.subject}' is not a CA`);
  if (req.profile === 'idevid' && !req.subject.serialNumber)
    throw new PkiError('PKI_ERR_BAD_INPUT', 'an IDevID needs subject.serialNumber (IEEE 802.1AR §8.6)');

  const subjectDer = encodeName(req.subject);
  const ski = keyIdentifier(req.publicKey);
  const aki = issuerInfo ? keyIdentifier(issuerInfo.publicKey) : ski;
  const isRsa = subjectKey.asymmetricKeyType === 'rsa';
  const F = KeyUsageFlags;
  const exts: Uint8Array[] = [];
  if (req.profile === 'ca') {
    exts.push(extDer(new BasicConstraintsExtension(true, req.pathLength, true)));
    exts.push(extDer(new KeyUsagesExtension(F.keyCertSign | F.cRLSign, true)));
  } else {
    exts.push(extDer(new BasicConstraintsExtension(false, undefined, true)));
    const ku = F.digitalSignature | (isRsa && req.profile !== 'signing' ? F.keyEncipherment : 0);
    exts.push(extDer(new KeyUsagesExtension(ku, true)));
    if (req.profile === 'tls-server') exts.push(extDer(new ExtendedKeyUsageExtension([EkuOid.serverAuth])));
    if (req.profile === 'idevid') exts.push(extDer(new ExtendedKeyUsageExtension([EkuOid.clientAuth])));
    if (req.profile === 'signing' && req.extendedKeyUsages?.length)
      exts.push(extDer(new ExtendedKeyUsageExtension([...req.extendedKeyUsages])));
  }
  exts.push(extDer(new SubjectKeyIdentifierExtension(hex(ski))));
  exts.push(extDer(new AuthorityKeyIdentifierExtension(hex(aki))));
  const sans = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (sans.length > 0) {
    // RFC 5280 §4.2.1.6: critical only when the subject is empty; ours never is.
    exts.push(extDer(new SubjectAlternativeNameExtension(sans, false)));
  }

  let serial = req.serialNumber ?? new Uint8Array(randomBytes(16));
  if (serial.length === 0 || serial.length > 20)
    throw new PkiError('PKI_ERR_BAD_INPUT', 'serial must be 1..20 octets');
  serial = Uint8Array.from(serial);
  while (serial.length > 1 && serial[0] === 0 && !(serial[1]! & 0x80)) serial = serial.subarray(1);
  if (serial[0]! & 0x80) serial = concat(Uint8Array.of(0), serial);

  const sigAlg = signatureAlgorithmIdentifier(req.issuer.algorithm);
  const tbs = seq(
    tlv(0xa0, int(2)), // version v3
    tlv(0x02, serial),
    sigAlg,
    issuerInfo ? issuerInfo.subjectDer : subjectDer,
    seq(time(req.notBefore), time(req.notAfter)),
    subjectDer,
    req.publicKey,
    tlv(0xa3, seq(...exts)),
  );
  const signature = await req.issuer.sign(tbs);
  return seq(tbs, sigAlg, tlv(0x03, Uint8Array.of(0), signature));
}
