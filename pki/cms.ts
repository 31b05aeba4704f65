/**
 * CMS (RFC 5652) as RFC 8572 and RFC 8366 use it: ContentInfo wrapping,
 * SignedData signing and verification with signed attributes, and the
 * "degenerate" certificates-only SignedData. Artifacts are DER (X.690 §10);
 * BER, trailing bytes and indefinite lengths are rejected.
 */
import { createHash } from 'node:crypto';
import {
  type Tlv,
  bytesEqual,
  decodeOid,
  decodeSmallInt,
  decodeTime,
  expectSingleTlv,
  int,
  oid,
  octets,
  readChildren,
  readTlv,
  seq,
  setOf,
  time,
  tlv,
} from './der.js';
import { decodeArtifacts } from './encoding.js';
import { PkiError, guard } from './errors.js';
import { type CertificateInfo, parseCertificate } from './certificate-info.js';
import { AttributeOid, ContentTypeOid } from './oids.js';
import {
  type HashAlgorithm,
  type Signer,
  hashAlgorithmIdentifier,
  hashFromOid,
  resolveSignatureAlgorithm,
  signatureAlgorithmIdentifier,
  verifySignature,
} from './signer.js';

/** A decoded ContentInfo (RFC 5652 §3). */
export interface ContentInfoParts {
  contentType: string;
  /** The DER inside `[0] EXPLICIT`. For the RFC 8572 unsigned types this is an OCTET STRING TLV. */
  content: Uint8Array;
}

/** Decodes a DER ContentInfo. */
export function parseContentInfo(der: Uint8Array): ContentInfoParts {
  return guard('PKI_ERR_MALFORMED_DER', 'cannot decode CMS ContentInfo', () => {
    if (!(der instanceof Uint8Array)) throw new PkiError('PKI_ERR_MALFORMED_DER', 'input is not bytes');
    const top = expectSingleTlv(der, 0x30, 'ContentInfo');
    const [ct, content, extra] = readChildren(top.value);
    if (ct?.tag !== 0x06 || !content || content.tag !== 0xa0 || extra)
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'ContentInfo is not SEQUENCE { OID, [0] content }');
    const inner = expectSingleTlv(content.value, readTlv(content.value).tag, 'ContentInfo content');
    return { contentType: decodeOid(ct.value), content: inner.raw };
  });
}

/**
 * Wraps raw bytes as a ContentInfo whose content is an OCTET STRING: the
 * unsigned conveyed-information form of RFC 8572 §3.1 (content type
 * id-ct-sztpConveyedInfoXML/JSON or id-data).
 */
export function encodeOctetContentInfo(contentType: string, content: Uint8Array): Uint8Array {
  return seq(oid(contentType), tlv(0xa0, octets(content)));
}

/** Reads the OCTET STRING content of an unsigned ContentInfo (see {@link encodeOctetContentInfo}). */
export function decodeOctetContent(ci: ContentInfoParts): Uint8Array {
  const t = readTlv(ci.content);
  if (t.tag !== 0x04)
    throw new PkiError('PKI_ERR_MALFORMED_DER', 'content is not a primitive OCTET STRING (DER)');
  return t.value;
}

/** Options for {@link signCms}. */
export interface SignCmsOptions {
  /** The bytes to sign (encapsulated, not detached). */
  content: Uint8Array;
  /** eContentType OID, e.g. {@link ContentTypeOid.sztpConveyedInfoJson}. */
  contentType: string;
  /** The signing key; `certificates[0]` identifies the signer. */
  signer: Signer;
  /** Adds a signingTime signed attribute (RFC 5652 §11.3). Omitted when undefined. */
  signingTime?: Date;
  /** Whether to embed `signer.certificates` in the SignedData (default true). */
  includeCertificates?: boolean;
}

/**
 * Produces a DER ContentInfo(SignedData) with one SignerInfo carrying signed
 * attributes contentType, messageDigest (and signingTime when asked), as
 * RFC 5652 §5.3 requires for any eContentType other than id-data.
 */
export async function signCms(opts: SignCmsOptions): Promise<Uint8Array> {
  const { signer, content, contentType } = opts;
  const certDer = signer.certificates[0];
  if (!certDer) throw new PkiError('PKI_ERR_BAD_INPUT', 'the signer has no certificate to identify it');
  const cert = parseCertificate(certDer);
  const hash = signer.algorithm.hash;
  const digest = createHash(hash).update(content).digest();
  const attrs = [
    seq(oid(AttributeOid.contentType), setOf(oid(contentType))),
    seq(oid(AttributeOid.messageDigest), setOf(octets(digest))),
  ];
  if (opts.signingTime) attrs.push(seq(oid(AttributeOid.signingTime), setOf(time(opts.signingTime))));
  // RFC 5652 §5.4: the signature covers the DER of the SET OF (tag 0x31), sent as [0] IMPLICIT.
  const signedAttrsSet = setOf(...attrs);
  const signature = await signer.sign(signedAttrsSet);
  const signerInfo = seq(
    int(1), // v1: issuerAndSerialNumber (RFC 5652 §5.3)
    seq(cert.issuerDer, tlv(0x02, cert.serialNumberBytes)),
    hashAlgorithmIdentifier(hash),
    tlv(0xa0, readTlv(signedAttrsSet).value),
    signatureAlgorithmIdentifier(signer.algorithm),
    octets(signature),
  );
  const certs = opts.includeCertificates === false ? [] : signer.certificates;
  const signedData = seq(
    // RFC 5652 §5.1: version 3 when eContentType is not id-data, else 1.
    int(contentType === ContentTypeOid.data ? 1 : 3),
    setOf(hashAlgorithmIdentifier(hash)),
    seq(oid(contentType), tlv(0xa0, octets(content))),
    ...(certs.length > 0 ? [tlv(0xa0, ...certs)] : []),
    setOf(signerInfo),
  );
  return seq(oid(ContentTypeOid.signedData), tlv(0xa0, signedData));
}

/** One SignerInfo as decoded. */
export interface SignerInfoParts {
  /** issuerAndSerialNumber, if used. */
  issuerAndSerial?: { issuer: Uint8Array; serial: Uint8Array };
  /** subjectKeyIdentifier, if used (lowercase hex). */
  subjectKeyIdentifier?: string;
  digestHash: HashAlgorithm;
  signatureAlgorithm: { oid: string; parameters?: Uint8Array };
  signature: Uint8Array;
  /** The signed attributes re-tagged as SET OF (the signed bytes), when present. */
  signedAttrs?: Uint8Array;
  attributes: { type: string; values: Uint8Array[] }[];
}

/** A decoded SignedData (not yet verified). */
export interface SignedDataParts {
  eContentType: string;
  /** The encapsulated content, undefined when detached/absent. */
  content?: Uint8Array;
  /** Embedded certificates, DER, in order. */
  certificates: Uint8Array[];
  signerInfos: SignerInfoParts[];
}

/**
 * Decodes a DER ContentInfo(SignedData) without verifying it.
 * `PKI_ERR_WRONG_CONTENT_TYPE` when it is not SignedData.
 */
export function parseSignedData(der: Uint8Array): SignedDataParts {
  const ci = parseContentInfo(der);
  if (ci.contentType !== ContentTypeOid.signedData)
    throw new PkiError('PKI_ERR_WRONG_CONTENT_TYPE', `ContentInfo is ${ci.contentType}, not id-signedData`);
  return guard('PKI_ERR_MALFORMED_DER', 'cannot decode SignedData', () => {
    const sdT = expectSingleTlv(ci.content, 0x30, 'SignedData');
    const fields = readChildren(sdT.value);
    const encap = fields[2];
    if (encap?.tag !== 0x30)
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'SignedData without encapContentInfo');
    const [ectT, econT] = readChildren(encap.value);
    if (ectT?.tag !== 0x06) throw new PkiError('PKI_ERR_MALFORMED_DER', 'eContentType is not an OID');
    let content: Uint8Array | undefined;
    if (econT) {
      if (econT.tag !== 0xa0) throw new PkiError('PKI_ERR_MALFORMED_DER', 'eContent is not [0]');
      const os = expectSingleTlv(econT.value, 0x04, 'eContent OCTET STRING (primitive, DER)');
      content = os.value;
    }
    const certsT = fields.slice(3).find((f) => f.tag === 0xa0);
    const certificates = certsT ? readChildren(certsT.value).map((c) => c.raw) : [];

    // RFC 5652 §5.1: SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo,
    // [0] certificates, [1] crls, signerInfos SET }. Walked with the bounded DER reader: signed
    // attributes must be verified over the bytes as received, and the ASN.1 object libraries cost
    // ~0.3 ms per SignedData.
    const [versionT, digestsT] = fields;
    if (versionT?.tag !== 0x02 || digestsT?.tag !== 0x31)
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'SignedData without version and digestAlgorithms');
    const version = decodeSmallInt(versionT.value);
    if (![1, 3, 4, 5].includes(version))
      throw new PkiError('PKI_ERR_MALFORMED_CMS', `SignedData version ${version}`);
    const sisT = fields[fields.length - 1];
    if (fields.length < 4 || sisT?.tag !== 0x31)
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'SignedData without signerInfos');
    for (const f of fields.slice(3, -1))
      if (f.tag !== 0xa0 && f.tag !== 0xa1)
        throw new PkiError('PKI_ERR_MALFORMED_DER', 'unexpected SignedData field');
    const signerInfos = readChildren(sisT.value).map(decodeSignerInfo);
    return { eContentType: decodeOid(ectT.value), content, certificates, signerInfos };
  });
}

function algorithmOf(t: Tlv | undefined, what: string): { oid: string; parameters?: Uint8Array } {
  if (t?.tag !== 0x30) throw new PkiError('PKI_ERR_MALFORMED_DER', `${what} is not an AlgorithmIdentifier`);
  const [o, p, extra] = readChildren(t.value);
  if (o?.tag !== 0x06 || extra)
    throw new PkiError('PKI_ERR_MALFORMED_DER', `${what} is not an AlgorithmIdentifier`);
  return { oid: decodeOid(o.value), ...(p ? { parameters: p.raw } : {}) };
}

/** Decodes one SignerInfo (RFC 5652 §5.3). */
function decodeSignerInfo(t: Tlv): SignerInfoParts {
  if (t.tag !== 0x30) throw new PkiError('PKI_ERR_MALFORMED_DER', 'SignerInfo is not a SEQUENCE');
  const f = readChildren(t.value);
  const [versionT, sidT, digestT] = f;
  if (versionT?.tag !== 0x02) throw new PkiError('PKI_ERR_MALFORMED_DER', 'SignerInfo without version');
  let k = 3;
  const attrsT = f[k]?.tag === 0xa0 ? f[k++] : undefined;
  const sigAlgT = f[k++];
  const sigT = f[k++];
  const rest = f.slice(k);
  if (sigT?.tag !== 0x04 || rest.length > 1 || (rest[0] && rest[0].tag !== 0xa1))
    throw new PkiError('PKI_ERR_MALFORMED_DER', 'SignerInfo fields out of order');
  const part: SignerInfoParts = {
    digestHash: hashFromOid(algorithmOf(digestT, 'digestAlgorithm').oid),
    signatureAlgorithm: algorithmOf(sigAlgT, 'signatureAlgorithm'),
    signature: sigT.value,
    attributes: [],
  };
  if (sidT?.tag === 0x30) {
    const [issuerT, serialT, extra] = readChildren(sidT.value);
    if (issuerT?.tag !== 0x30 || serialT?.tag !== 0x02 || extra)
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'bad IssuerAndSerialNumber');
    part.issuerAndSerial = { issuer: issuerT.raw, serial: serialT.value };
  } else if (sidT?.tag === 0x80) part.subjectKeyIdentifier = Buffer.from(sidT.value).toString('hex');
  else throw new PkiError('PKI_ERR_MALFORMED_DER', 'bad SignerIdentifier');
  if (attrsT) {
    for (const a of readChildren(attrsT.value)) {
      const [typeT, valuesT, extra] = readChildren(a.value);
      if (a.tag !== 0x30 || typeT?.tag !== 0x06 || valuesT?.tag !== 0x31 || extra)
        throw new PkiError('PKI_ERR_MALFORMED_DER', 'bad Attribute');
      part.attributes.push({
        type: decodeOid(typeT.value),
        values: readChildren(valuesT.value).map((v) => v.raw),
      });
    }
    // RFC 5652 §5.3: SignedAttributes is SET SIZE (1..MAX).
    if (part.attributes.length === 0)
      throw new PkiError('PKI_ERR_MISSING_SIGNED_ATTRS', 'signedAttrs is empty');
    // RFC 5652 §5.4: the signature is over the EXPLICIT SET OF encoding, not the [0] IMPLICIT one.
    const raw = Uint8Array.from(attrsT.raw);
    raw[0] = 0x31;
    part.signedAttrs = raw;
  }
  return part;
}

/** True when `cert` is the one a SignerInfo's sid names (RFC 5652 §5.3). */
export function signerMatches(si: SignerInfoParts, cert: CertificateInfo): boolean {
  if (si.issuerAndSerial) {
    return (
      bytesEqual(si.issuerAndSerial.serial, cert.serialNumberBytes) &&
      bytesEqual(si.issuerAndSerial.issuer, cert.issuerDer)
    );
  }
  return si.subjectKeyIdentifier !== undefined && si.subjectKeyIdentifier === cert.subjectKeyIdentifier;
}

/** Options for {@link verifySignedData}. */
export interface VerifySignedDataOptions {
  /** eContentTypes acceptable here; anything else is PKI_ERR_WRONG_CONTENT_TYPE. */
  contentTypes: readonly string[];
  /**
   * Certificates that may have signed. When omitted, the SignedData's embedded
   * certificates are candidates (the caller must then validate the returned
   * signer certificate against its trust anchors).
   */
  signerCertificates?: readonly (Uint8Array | CertificateInfo)[];
  /** Further candidates tried after the others (e.g. trust anchors that may sign directly). */
  additionalCertificates?: readonly (Uint8Array | CertificateInfo)[];
}

/** The outcome of {@link verifySignedData}. */
export interface VerifiedSignedData {
  eContentType: string;
  content: Uint8Array;
  /** The certificate whose key verified the signature. */
  signer: CertificateInfo;
  /** Every certificate embedded in the SignedData. */
  certificates: Uint8Array[];
  signingTime?: Date;
}

function onlyAttr(si: SignerInfoParts, type: string, name: string): Uint8Array {
  const found = si.attributes.filter((a) => a.type === type);
  if (found.length === 0)
    throw new PkiError('PKI_ERR_MISSING_SIGNED_ATTRS', `signed attribute ${name} is missing (RFC 5652 §5.3)`);
  // RFC 5652 §11.1/§11.2: single-valued, and at most one instance per SignerInfo.
  if (found.length > 1 || found[0]!.values.length !== 1)
    throw new PkiError('PKI_ERR_MALFORMED_CMS', `signed attribute ${name} must have exactly one value`);
  return found[0]!.values[0]!;
}

/**
 * Verifies a DER ContentInfo(SignedData): content type allowed, a signer
 * certificate found, signed attributes present unless eContentType is id-data
 * (RFC 5652 §5.3), contentType attribute = eContentType (§11.1),
 * messageDigest = digest(content) (§11.2), and the signature. Does not
 * validate the signer's certificate path (see `validateCertificatePath`).
 */
export function verifySignedData(der: Uint8Array, options: VerifySignedDataOptions): VerifiedSignedData {
  const sd = parseSignedData(der);
  if (!options.contentTypes.includes(sd.eContentType))
    throw new PkiError(
      'PKI_ERR_WRONG_CONTENT_TYPE',
      `eContentType ${sd.eContentType} is not acceptable here`,
    );
  if (sd.content === undefined)
    throw new PkiError('PKI_ERR_MALFORMED_CMS', 'SignedData has no encapsulated content');
  if (sd.signerInfos.length === 0) throw new PkiError('PKI_ERR_UNSIGNED', 'SignedData has no signers');
  const candidates = guard('PKI_ERR_MALFORMED_DER', 'bad certificate', () =>
    (options.signerCertificates ?? sd.certificates).map((c) =>
      c instanceof Uint8Array ? parseCertificate(c) : c,
    ),
  );
  let si: SignerInfoParts | undefined;
  let cert: CertificateInfo | undefined;
  for (const s of sd.signerInfos) {
    cert = candidates.find((c) => signerMatches(s, c));
    if (cert) {
      si = s;
      break;
    }
  }
  if (!si || !cert)
    throw new PkiError('PKI_ERR_SIGNER_NOT_FOUND', 'no available certificate matches the SignedData signer');

  const content = sd.content;
  let signed: Uint8Array;
  let signingTime: Date | undefined;
  if (si.signedAttrs) {
    const ct = onlyAttr(si, AttributeOid.contentType, 'contentType');
    const ctOid = guard('PKI_ERR_MALFORMED_DER', 'contentType attribute', () =>
      decodeOid(expectSingleTlv(ct, 0x06, 'OID').value),
    );
    if (ctOid !== sd.eContentType)
      throw new PkiError(
        'PKI_ERR_CONTENT_TYPE_ATTR_MISMATCH',
        `contentType attribute ${ctOid} differs from eContentType ${sd.eContentType} (RFC 5652 §11.1)`,
      );
    const md = onlyAttr(si, AttributeOid.messageDigest, 'messageDigest');
    const mdValue = guard(
      'PKI_ERR_MALFORMED_DER',
      'messageDigest attribute',
      () => expectSingleTlv(md, 0x04, 'OCTET STRING').value,
    );
    const digest = createHash(si.digestHash).update(content).digest();
    if (!bytesEqual(mdValue, digest))
      throw new PkiError('PKI_ERR_DIGEST_MISMATCH', 'messageDigest attribute does not match the content');
    const st = si.attributes.find((a) => a.type === AttributeOid.signingTime)?.values[0];
    if (st) signingTime = parseTime(st);
    signed = si.signedAttrs;
  } else {
    // RFC 5652 §5.3: signedAttrs MUST be present when eContentType is not id-data (RFC 8366bis: decoders MUST check).
    if (sd.eContentType !== ContentTypeOid.data)
      throw new PkiError(
        'PKI_ERR_MISSING_SIGNED_ATTRS',
        'no signed attributes for non-id-data content (RFC 5652 §5.3)',
      );
    signed = content;
  }
  const alg = resolveSignatureAlgorithm(
    si.signatureAlgorithm.oid,
    si.signatureAlgorithm.parameters,
    si.digestHash,
  );
  if (!verifySignature(cert.publicKey, alg, signed, si.signature))
    throw new PkiError('PKI_ERR_BAD_SIGNATURE', `signature by '${cert.subject}' does not verify`);
  const out: VerifiedSignedData = {
    eContentType: sd.eContentType,
    content,
    signer: cert,
    certificates: sd.certificates,
  };
  if (signingTime) out.signingTime = signingTime;
  return out;
}

function parseTime(der: Uint8Array): Date | undefined {
  try {
    return decodeTime(readTlv(der));
  } catch {
    return undefined;
  }
}

/**
 * The "degenerate" SignedData of RFC 5652 §5.2 / RFC 8572 §3.2: certificates
 * only, no content, no signers. Used for the owner certificate artifact
 * (owner certificate plus intermediates) and for trust-anchor bundles.
 */
export function createCertificateBag(certificates: readonly Uint8Array[]): Uint8Array {
  if (certificates.length === 0)
    throw new PkiError('PKI_ERR_BAD_INPUT', 'a certificate bag needs certificates');
  for (const c of certificates) parseCertificate(c);
  const signedData = seq(
    int(1),
    tlv(0x31),
    seq(oid(ContentTypeOid.data)),
    tlv(0xa0, ...certificates),
    tlv(0x31),
  );
  return seq(oid(ContentTypeOid.signedData), tlv(0xa0, signedData));
}

/** Returns the certificates of a degenerate SignedData (rejects one with signers or content). */
export function parseCertificateBag(der: Uint8Array): Uint8Array[] {
  const sd = parseSignedData(der);
  if (sd.signerInfos.length > 0 || (sd.content !== undefined && sd.content.length > 0))
    throw new PkiError(
      'PKI_ERR_MALFORMED_CMS',
      'expected a degenerate SignedData (certificates only, RFC 8572 §3.2)',
    );
  if (sd.certificates.length === 0)
    throw new PkiError('PKI_ERR_MALFORMED_CMS', 'certificate bag holds no certificates');
  for (const c of sd.certificates) parseCertificate(c);
  return sd.certificates;
}

/**
 * Certificates from a trust-anchor file as operators and RFC 8572 hand them
 * out: a PEM bundle, one DER or base64 certificate, or a degenerate SignedData
 * (certificates-only CMS, like a redirect's `trust-anchor`) — in any mix.
 */
export function decodeCertificates(input: Uint8Array | string): Uint8Array[] {
  return decodeArtifacts(input).flatMap((der) => {
    try {
      parseCertificate(der);
      return [der];
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
      return parseCertificateBag(der);
    }
  });
}
