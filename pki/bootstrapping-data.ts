/**
 * RFC 8572 §5.4 "Validating Signed Data" as one function: what the device
 * agent calls on the artifacts it got from get-bootstrapping-data (or from a
 * file, DNS, removable media), before acting on any of it.
 */
import { type CertificateInfo, parseCertificate } from './certificate-info.js';
import {
  decodeOctetContent,
  parseCertificateBag,
  parseContentInfo,
  signerMatches,
  parseSignedData,
  verifySignedData,
} from './cms.js';
import { type ConveyedInformation, decodeConveyedInformation } from './conveyed-info.js';
import { bytesEqual } from './der.js';
import { PkiError } from './errors.js';
import { ContentTypeOid } from './oids.js';
import { isIssuedBy, validateCertificatePath } from './path-validation.js';
import { type Voucher, type VoucherAssertion, verifyOwnershipVoucher } from './voucher.js';
import type { XmlLimits } from './xml.js';

/** Input to {@link verifyBootstrappingData}. All artifacts are DER. */
export interface BootstrappingDataInput {
  /** The conveyed-information artifact: unsigned ContentInfo or SignedData (RFC 8572 §3.1). */
  conveyedInformation: Uint8Array;
  /** The owner-certificate artifact, a degenerate SignedData (RFC 8572 §3.2). Required for signed data. */
  ownerCertificate?: Uint8Array;
  /** The ownership-voucher artifact (RFC 8572 §3.3). Required for signed data. */
  ownershipVoucher?: Uint8Array;
  /** Manufacturer trust anchors for the voucher (RFC 8572 §5.1). Required for signed data. */
  manufacturerTrustAnchors?: readonly Uint8Array[];
  /** The device's serial number. Required for signed data. */
  serialNumber?: string;
  /** The nonce the device sent, if any. */
  nonce?: Uint8Array;
  /** Validation time: the device's clock. */
  now: Date;
  /** Accept unsigned conveyed information (only from a trusted bootstrap server, RFC 8572 §5.3). */
  allowUnsigned?: boolean;
  /** The device's IDevID authority key identifier, checked against voucher idevid-issuer. */
  idevidIssuer?: Uint8Array;
  /** Acceptable voucher assertions (default verified, logged). */
  acceptedAssertions?: readonly VoucherAssertion[];
  /** An extKeyUsage OID the voucher signer must carry (see `voucherSignerProblem` in voucher.ts). */
  voucherSignerPurpose?: string;
  /** Caps for XML conveyed information (parsed before any signature decides trust when unsigned). */
  xmlLimits?: Partial<XmlLimits>;
}

/** The outcome of {@link verifyBootstrappingData}. */
export interface VerifiedBootstrappingData {
  /** The decoded, validated conveyed information (JSON shape, also for XML content). */
  conveyedInformation: ConveyedInformation;
  /** The eContentType/ContentInfo type it came in. */
  contentType: string;
  /** Whether it was signed (and so every §5.4 step ran). */
  signed: boolean;
  /** For signed data: the voucher, the MASA and owner certificates, and the owner path to the pinned cert. */
  voucher?: Voucher;
  voucherSigner?: CertificateInfo;
  ownerCertificate?: CertificateInfo;
  ownerPath?: CertificateInfo[];
  /** The checks performed, in order, for logs and progress reports. */
  checks: string[];
}

const CI_TYPES = [
  ContentTypeOid.sztpConveyedInfoJson,
  ContentTypeOid.sztpConveyedInfoXml,
  ContentTypeOid.data,
];

function decodeByType(
  contentType: string,
  bytes: Uint8Array,
  xmlLimits?: Partial<XmlLimits>,
): ConveyedInformation {
  if (contentType === ContentTypeOid.sztpConveyedInfoJson) return decodeConveyedInformation(bytes, 'json');
  if (contentType === ContentTypeOid.sztpConveyedInfoXml)
    return decodeConveyedInformation(bytes, 'xml', xmlLimits);
  // RFC 8572 §3.1: with id-data the encoding is signalled externally; sniff it.
  return decodeConveyedInformation(bytes, 'auto', xmlLimits);
}

/**
 * Verifies bootstrapping data exactly in RFC 8572 §5.4 order and returns the
 * decoded conveyed information. Any failure throws a coded PkiError and
 * nothing from the artifacts may be acted on.
 */
export function verifyBootstrappingData(input: BootstrappingDataInput): VerifiedBootstrappingData {
  const ci = parseContentInfo(input.conveyedInformation);
  const checks: string[] = [];
  if (ci.contentType !== ContentTypeOid.signedData) {
    if (!CI_TYPES.includes(ci.contentType as (typeof CI_TYPES)[number]))
      throw new PkiError(
        'PKI_ERR_WRONG_CONTENT_TYPE',
        `conveyed information has content type ${ci.contentType}`,
      );
    if (!input.allowUnsigned)
      throw new PkiError(
        'PKI_ERR_UNSIGNED',
        'conveyed information is unsigned (allow only from a trusted bootstrap server)',
      );
    if (input.ownerCertificate || input.ownershipVoucher)
      throw new PkiError(
        'PKI_ERR_UNSIGNED',
        'conveyed information is unsigned, yet an owner certificate/voucher came with it',
      );
    checks.push('unsigned conveyed information accepted by policy');
    const info = decodeByType(ci.contentType, decodeOctetContent(ci), input.xmlLimits);
    checks.push('conveyed information decoded');
    return { conveyedInformation: info, contentType: ci.contentType, signed: false, checks };
  }

  const missing = [
    !input.ownerCertificate && 'owner certificate',
    !input.ownershipVoucher && 'ownership voucher',
    !input.manufacturerTrustAnchors?.length && 'manufacturer trust anchor',
    !input.serialNumber && 'serial number',
  ].filter(Boolean);
  if (missing.length > 0)
    throw new PkiError(
      'PKI_ERR_MISSING_ARTIFACT',
      `signed conveyed information needs: ${missing.join(', ')}`,
    );

  // Steps 1–4 (and the nonce): the voucher.
  const { voucher, signer: voucherSigner } = verifyOwnershipVoucher(input.ownershipVoucher!, {
    manufacturerTrustAnchors: input.manufacturerTrustAnchors!,
    serialNumber: input.serialNumber!,
    now: input.now,
    ...(input.nonce ? { nonce: input.nonce } : {}),
    ...(input.idevidIssuer ? { idevidIssuer: input.idevidIssuer } : {}),
    ...(input.acceptedAssertions ? { acceptedAssertions: input.acceptedAssertions } : {}),
    ...(input.voucherSignerPurpose ? { requiredSignerPurpose: input.voucherSignerPurpose } : {}),
  });
  checks.push(
    '1 voucher signature chains to a manufacturer trust anchor',
    '2 voucher created-on/expires-on',
    `3 voucher assertion '${voucher.assertion}' accepted`,
    '4 voucher serial-number (and idevid-issuer, nonce) match',
  );

  // Step 5: the owner certificate must chain to the pinned-domain-cert.
  const bag = parseCertificateBag(input.ownerCertificate!).map(parseCertificate);
  const owner = pickOwnerCertificate(bag, input.conveyedInformation);
  const pinned = parseCertificate(voucher.pinnedDomainCert);
  const { path } = validateCertificatePath({
    certificate: owner,
    intermediates: bag.filter((c) => c !== owner),
    trustAnchors: [pinned],
    now: input.now,
    untrustedCode: 'PKI_ERR_CHAIN_NOT_PINNED',
  });
  // RFC 8572 §3.2: key usage absent, or it includes digitalSignature.
  if (owner.keyUsage && !owner.keyUsage.includes('digitalSignature'))
    throw new PkiError(
      'PKI_ERR_KEY_USAGE',
      'owner certificate key usage lacks digitalSignature (RFC 8572 §3.2)',
    );
  checks.push('5 owner certificate chains to the voucher pinned-domain-cert');

  // Step 6: revocation. No CRL/OCSP processing here, so a voucher that demands it cannot be satisfied.
  if (voucher.domainCertRevocationChecks)
    throw new PkiError(
      'PKI_ERR_REVOCATION_UNAVAILABLE',
      'voucher requires domain-cert-revocation-checks and revocation status is not obtainable',
    );
  checks.push('6 revocation checks not required by the voucher');

  // Step 7: the conveyed information's signature, with the validated owner certificate only.
  const signed = verifySignedData(input.conveyedInformation, {
    contentTypes: CI_TYPES,
    signerCertificates: [owner],
  });
  checks.push('7 conveyed information signed by the owner certificate');
  const info = decodeByType(signed.eContentType, signed.content, input.xmlLimits);
  checks.push('conveyed information decoded');
  return {
    conveyedInformation: info,
    contentType: signed.eContentType,
    signed: true,
    voucher,
    voucherSigner,
    ownerCertificate: owner,
    ownerPath: path,
    checks,
  };
}

/**
 * The owner certificate in the artifact: the one the conveyed information's
 * signer names, else the only certificate that issues no other in the bag.
 */
function pickOwnerCertificate(bag: CertificateInfo[], conveyedInformation: Uint8Array): CertificateInfo {
  const sd = parseSignedData(conveyedInformation);
  for (const si of sd.signerInfos) {
    const match = bag.find((c) => signerMatches(si, c));
    if (match) return match;
  }
  const leaves = bag.filter(
    (c) => !bag.some((o) => o !== c && !bytesEqual(o.der, c.der) && isIssuedBy(o, c)),
  );
  if (leaves.length !== 1)
    throw new PkiError(
      'PKI_ERR_SIGNER_NOT_FOUND',
      'the owner-certificate artifact does not hold the conveyed-information signer',
    );
  return leaves[0]!;
}
