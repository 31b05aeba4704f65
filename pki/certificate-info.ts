/**
 * Parsing X.509 certificates (RFC 5280 §4) into a plain, typed summary that
 * path validation and callers use. Decoding goes through `@peculiar/x509`;
 * the raw TBS and signature come from the DER itself so signature checks see
 * exactly the signed bytes.
 */
import { createHash } from 'node:crypto';
import { decodeOid, expectSingleTlv, readChildren } from './der.js';
import { PkiError, guard } from './errors.js';
import { describeKey, importPublicKey } from './keys.js';
import { nameToString, decodeName } from './names.js';
import { ExtOid, NameOid } from './oids.js';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
} from './x509-lib.js';

/** Key usage bits by name (RFC 5280 §4.2.1.3). */
export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

const KU_NAMES: KeyUsageName[] = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
];

/** Extensions this module understands; any other critical extension fails validation (RFC 5280 §4.2). */
export const PROCESSED_EXTENSIONS: readonly string[] = Object.values(ExtOid);

/** A parsed certificate. */
export interface CertificateInfo {
  /** The certificate DER as given. */
  der: Uint8Array;
  /** The DER TBSCertificate (the signed bytes). */
  tbs: Uint8Array;
  /** Signature AlgorithmIdentifier OID and parameter DER. */
  signatureAlgorithm: { oid: string; parameters?: Uint8Array };
  /** Signature value. */
  signature: Uint8Array;
  /** Subject as text, wire order (`O=…, CN=…, serialNumber=…`). */
  subject: string;
  /** Issuer as text. */
  issuer: string;
  /** DER subject Name. */
  subjectDer: Uint8Array;
  /** DER issuer Name. */
  issuerDer: Uint8Array;
  /** Serial number, lowercase hex. */
  serialNumber: string;
  /** DER INTEGER contents of the serial (for CMS IssuerAndSerialNumber matching). */
  serialNumberBytes: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** subject commonName, when present. */
  commonName?: string;
  /** subject serialNumber attribute (2.5.4.5), e.g. an IDevID's device serial. */
  subjectSerialNumber?: string;
  /** SubjectPublicKeyInfo DER. */
  publicKey: Uint8Array;
  /** Key type, e.g. `ec-p256`, `rsa-2048`. */
  keyAlgorithm: string;
  /** basicConstraints cA. */
  isCa: boolean;
  /** basicConstraints pathLenConstraint. */
  pathLength?: number;
  /** keyUsage bits, undefined when the extension is absent. */
  keyUsage?: KeyUsageName[];
  /** extKeyUsage OIDs, undefined when absent. */
  extendedKeyUsage?: string[];
  /** subjectAltName DNS names and IP addresses. */
  subjectAltNames: { dns: string[]; ip: string[] };
  /** subjectKeyIdentifier, lowercase hex. */
  subjectKeyIdentifier?: string;
  /** authorityKeyIdentifier keyIdentifier, lowercase hex. */
  authorityKeyIdentifier?: string;
  /** OIDs of extensions marked critical. */
  criticalExtensions: string[];
  /** SHA-256 of the DER, lowercase colon hex. */
  fingerprintSha256: string;
}

/**
 * Parses one DER certificate. Any decoding failure (including trailing bytes)
 * is a PKI_ERR_MALFORMED_DER; nothing else escapes.
 */
export function parseCertificate(der: Uint8Array): CertificateInfo {
  return guard('PKI_ERR_MALFORMED_DER', 'cannot parse certificate', () => {
    const top = expectSingleTlv(der, 0x30, 'certificate');
    const [tbsT, algT, sigT, extra] = readChildren(top.value);
    if (!tbsT || !algT || !sigT || extra || tbsT.tag !== 0x30 || algT.tag !== 0x30 || sigT.tag !== 0x03)
      throw new PkiError(
        'PKI_ERR_MALFORMED_DER',
        'certificate is not SEQUENCE { tbs, algorithm, signature }',
      );
    const [algOid, algParams] = readChildren(algT.value);
    if (algOid?.tag !== 0x06) throw new PkiError('PKI_ERR_MALFORMED_DER', 'bad signature algorithm');
    if (sigT.value[0] !== 0)
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'signature BIT STRING has unused bits');
    // TBSCertificate fields: [0] version, serial, signature, issuer, validity, subject, spki, …
    const fields = readChildren(tbsT.value);
    const i = fields[0]?.tag === 0xa0 ? 1 : 0;
    const serialT = fields[i];
    const issuerT = fields[i + 2];
    const subjectT = fields[i + 4];
    const spkiT = fields[i + 5];
    if (serialT?.tag !== 0x02 || !issuerT || !subjectT || !spkiT || spkiT.tag !== 0x30)
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'TBSCertificate is incomplete');

    const x = new X509Certificate(der);
    const subjectAttrs = decodeName(subjectT.raw);
    const bc = x.getExtension(BasicConstraintsExtension);
    const ku = x.getExtension(KeyUsagesExtension);
    const eku = x.getExtension(ExtendedKeyUsageExtension);
    const san = x.getExtension(SubjectAlternativeNameExtension);
    const ski = x.getExtension(SubjectKeyIdentifierExtension);
    const aki = x.getExtension(AuthorityKeyIdentifierExtension);
    const seen = new Set<string>();
    for (const e of x.extensions) {
      // RFC 5280 §4.2: a certificate MUST NOT include more than one instance of an extension.
      if (seen.has(e.type)) throw new PkiError('PKI_ERR_MALFORMED_DER', `duplicate extension ${e.type}`);
      seen.add(e.type);
    }
    const sans = { dns: [] as string[], ip: [] as string[] };
    for (const n of san?.names.items ?? []) {
      if (n.type === 'dns') sans.dns.push(n.value);
      else if (n.type === 'ip') sans.ip.push(n.value);
    }
    const publicKey = new Uint8Array(spkiT.raw);
    const info: CertificateInfo = {
      der,
      tbs: tbsT.raw,
      signatureAlgorithm: {
        oid: decodeOid(algOid.value),
        ...(algParams ? { parameters: algParams.raw } : {}),
      },
      signature: sigT.value.subarray(1),
      subject: nameToString(subjectT.raw),
      issuer: nameToString(issuerT.raw),
      subjectDer: subjectT.raw,
      issuerDer: issuerT.raw,
      serialNumber: Buffer.from(serialT.value).toString('hex'),
      serialNumberBytes: serialT.value,
      notBefore: x.notBefore,
      notAfter: x.notAfter,
      publicKey,
      keyAlgorithm: describeKey(importPublicKey(publicKey)),
      isCa: bc?.ca ?? false,
      subjectAltNames: sans,
      criticalExtensions: x.extensions.filter((e) => e.critical).map((e) => e.type),
      fingerprintSha256: createHash('sha256')
        .update(der)
        .digest('hex')
        .replace(/(..)(?!$)/g, '$1:'),
    };
    const cn = subjectAttrs.find((a) => a.oid === NameOid.commonName)?.value;
    const sn = subjectAttrs.find((a) => a.oid === NameOid.serialNumber)?.value;
    if (cn !== undefined) info.commonName = cn;
    if (sn !== undefined) info.subjectSerialNumber = sn;
    if (bc?.pathLength !== undefined) info.pathLength = bc.pathLength;
    if (ku) info.keyUsage = KU_NAMES.filter((_, b) => ku.usages & (1 << b));
    if (eku) info.extendedKeyUsage = eku.usages.map(String);
    if (ski) info.subjectKeyIdentifier = ski.keyId.toLowerCase();
    if (aki?.keyId) info.authorityKeyIdentifier = aki.keyId.toLowerCase();
    return info;
  });
}
