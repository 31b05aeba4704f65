/**
 * Parsing X.509 certificates (RFC 5280 §4) into a plain, typed summary that
 * path validation and callers use. Decoding walks the DER with the bounded
 * reader in `der.ts` (the ASN.1 object libraries cost ~0.7 ms per certificate,
 * most of a device's §5.4 budget), so signature checks also see exactly the
 * signed TBS bytes.
 */
import { createHash } from 'node:crypto';
import {
  type Tlv,
  bytesEqual,
  decodeOid,
  decodeSmallInt,
  decodeTime,
  expectSingleTlv,
  readChildren,
  readTlv,
} from './der.js';
import { PkiError, guard } from './errors.js';
import { describeSpki } from './keys.js';
import { nameToString, decodeName } from './names.js';
import { ExtOid, NameOid } from './oids.js';

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
    if (!(der instanceof Uint8Array)) throw new PkiError('PKI_ERR_MALFORMED_DER', 'certificate is not bytes');
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
    // RFC 5280 §4.1: TBSCertificate ::= SEQUENCE { [0] version, serial, signature, issuer, validity, subject, spki, [1] [2] [3] extensions }
    const fields = readChildren(tbsT.value);
    const hasVersion = fields[0]?.tag === 0xa0;
    const i = hasVersion ? 1 : 0;
    const [serialT, innerAlgT, issuerT, validityT, subjectT, spkiT] = fields.slice(i, i + 6);
    if (
      serialT?.tag !== 0x02 ||
      innerAlgT?.tag !== 0x30 ||
      issuerT?.tag !== 0x30 ||
      validityT?.tag !== 0x30 ||
      subjectT?.tag !== 0x30 ||
      spkiT?.tag !== 0x30
    )
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'TBSCertificate is incomplete');
    // RFC 5280 §4.1.1.2: the inner and outer signature algorithms must be the same.
    if (!bytesEqual(innerAlgT.raw, algT.raw))
      throw new PkiError(
        'PKI_ERR_MALFORMED_DER',
        'TBSCertificate signature algorithm differs from the outer one',
      );
    const [nbT, naT] = readChildren(validityT.value);
    if (!nbT || !naT) throw new PkiError('PKI_ERR_MALFORMED_DER', 'bad Validity');
    const extsT = fields.slice(i + 6).find((f) => f.tag === 0xa3);
    const subjectAttrs = decodeName(subjectT.raw);
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
      serialNumber: Buffer.from(serialT.value)
        .toString('hex')
        .replace(/^00(?=[89a-f])/, ''),
      serialNumberBytes: serialT.value,
      notBefore: decodeTime(nbT),
      notAfter: decodeTime(naT),
      publicKey,
      keyAlgorithm: describeSpki(publicKey),
      isCa: false,
      subjectAltNames: { dns: [], ip: [] },
      criticalExtensions: [],
      fingerprintSha256: createHash('sha256')
        .update(der)
        .digest('hex')
        .replace(/(..)(?!$)/g, '$1:'),
    };
    const cn = subjectAttrs.find((a) => a.oid === NameOid.commonName)?.value;
    const sn = subjectAttrs.find((a) => a.oid === NameOid.serialNumber)?.value;
    if (cn !== undefined) info.commonName = cn;
    if (sn !== undefined) info.subjectSerialNumber = sn;
    if (extsT) decodeExtensions(expectSingleTlv(extsT.value, 0x30, 'Extensions'), info);
    return info;
  });
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Decodes the extensions this module processes (RFC 5280 §4.2) into `info`. */
function decodeExtensions(exts: Tlv, info: CertificateInfo): void {
  const seen = new Set<string>();
  for (const ext of readChildren(exts.value)) {
    const parts = readChildren(ext.value);
    const idT = parts[0];
    const critT = parts[1]?.tag === 0x01 ? parts[1] : undefined;
    const valT = parts[critT ? 2 : 1];
    if (ext.tag !== 0x30 || idT?.tag !== 0x06 || valT?.tag !== 0x04)
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'bad Extension');
    const id = decodeOid(idT.value);
    // RFC 5280 §4.2: a certificate MUST NOT include more than one instance of an extension.
    if (seen.has(id)) throw new PkiError('PKI_ERR_MALFORMED_DER', `duplicate extension ${id}`);
    seen.add(id);
    if (critT && critT.value[0] !== 0) info.criticalExtensions.push(id);
    const v = expectSingleTlv(valT.value, readTlv(valT.value).tag, `extension ${id}`);
    switch (id) {
      case ExtOid.basicConstraints: {
        const [a, b] = readChildren(v.value);
        const caT = a?.tag === 0x01 ? a : undefined;
        const lenT = caT ? b : a;
        info.isCa = caT !== undefined && caT.value[0] !== 0;
        if (lenT?.tag === 0x02) info.pathLength = decodeSmallInt(lenT.value);
        break;
      }
      case ExtOid.keyUsage: {
        if (v.tag !== 0x03) throw new PkiError('PKI_ERR_MALFORMED_DER', 'keyUsage is not a BIT STRING');
        const bits = v.value.subarray(1);
        info.keyUsage = KU_NAMES.filter((_, n) => ((bits[n >> 3] ?? 0) & (0x80 >> (n & 7))) !== 0);
        break;
      }
      case ExtOid.extKeyUsage:
        info.extendedKeyUsage = readChildren(v.value).map((o) => decodeOid(o.value));
        break;
      case ExtOid.subjectAltName:
        for (const gn of readChildren(v.value)) {
          if (gn.tag === 0x82) info.subjectAltNames.dns.push(Buffer.from(gn.value).toString('latin1'));
          else if (gn.tag === 0x87) info.subjectAltNames.ip.push(formatIp(gn.value));
        }
        break;
      case ExtOid.subjectKeyIdentifier:
        info.subjectKeyIdentifier = hexOf(v.value);
        break;
      case ExtOid.authorityKeyIdentifier: {
        const kid = readChildren(v.value).find((c) => c.tag === 0x80);
        if (kid) info.authorityKeyIdentifier = hexOf(kid.value);
        break;
      }
    }
  }
}

/** Formats an iPAddress GeneralName: dotted quad, or RFC 5952 compressed IPv6. */
function formatIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) return `#${hexOf(b)}`;
  const groups = Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
