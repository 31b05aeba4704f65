/**
 * RFC 8366 ownership vouchers in the JSON encoding (ietf-voucher, with the
 * non-conflicting RFC 8366bis fields): building, signing as a lab MASA, and
 * the device-side checks of RFC 8572 §5.4 steps 1–4 (plus the nonce policy).
 */
import { bytesEqual } from './der.js';
import { type CertificateInfo, parseCertificate } from './certificate-info.js';
import { signCms, verifySignedData } from './cms.js';
import { decodeBase64, encodeBase64 } from './encoding.js';
import { PkiError, guard } from './errors.js';
import { ContentTypeOid, EkuOid } from './oids.js';
import { validateCertificatePath } from './path-validation.js';
import type { Signer } from './signer.js';

/** Voucher assertions (RFC 8366 §5.3; `agent-proximity` from RFC 8366bis). */
export type VoucherAssertion = 'verified' | 'logged' | 'proximity' | 'agent-proximity';
const ASSERTIONS: readonly VoucherAssertion[] = ['verified', 'logged', 'proximity', 'agent-proximity'];

/** The voucher assertions a device accepts unless told otherwise: no proximity in sZTP. */
export const DEFAULT_ACCEPTED_ASSERTIONS: readonly VoucherAssertion[] = ['verified', 'logged'];

/** JSON member name of the voucher (RFC 8366 §5.3). */
export const VOUCHER_KEY = 'ietf-voucher:voucher';

/** A decoded voucher. Binary leaves are bytes, dates are Dates. */
export interface Voucher {
  createdOn: Date;
  expiresOn?: Date;
  assertion: VoucherAssertion;
  serialNumber: string;
  /** Authority key identifier of the device's IDevID issuer (RFC 8366 §5.3). */
  idevidIssuer?: Uint8Array;
  /** DER certificate the owner certificate must chain to. Mandatory for sZTP (RFC 8572 §5.4). */
  pinnedDomainCert: Uint8Array;
  domainCertRevocationChecks?: boolean;
  nonce?: Uint8Array;
  lastRenewalDate?: Date;
  /** RFC 8366bis leaves, carried through unchecked. */
  pinnedDomainPubk?: Uint8Array;
  pinnedDomainPubkSha256?: Uint8Array;
  estDomain?: string;
  additionalConfigurationUrl?: string;
}

const bad = (msg: string): never => {
  throw new PkiError('PKI_ERR_MALFORMED_VOUCHER', msg);
};

// yang:date-and-time (RFC 6991 §3).
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function dateOut(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Encodes a voucher as the RFC 8366 JSON artifact (UTF-8 bytes). */
export function encodeVoucher(v: Voucher): Uint8Array {
  const inner: Record<string, unknown> = {
    'created-on': dateOut(v.createdOn),
    ...(v.expiresOn ? { 'expires-on': dateOut(v.expiresOn) } : {}),
    assertion: v.assertion,
    'serial-number': v.serialNumber,
    ...(v.idevidIssuer ? { 'idevid-issuer': encodeBase64(v.idevidIssuer) } : {}),
    'pinned-domain-cert': encodeBase64(v.pinnedDomainCert),
    ...(v.domainCertRevocationChecks !== undefined
      ? { 'domain-cert-revocation-checks': v.domainCertRevocationChecks }
      : {}),
    ...(v.nonce ? { nonce: encodeBase64(v.nonce) } : {}),
    ...(v.lastRenewalDate ? { 'last-renewal-date': dateOut(v.lastRenewalDate) } : {}),
    ...(v.pinnedDomainPubk ? { 'pinned-domain-pubk': encodeBase64(v.pinnedDomainPubk) } : {}),
    ...(v.pinnedDomainPubkSha256
      ? { 'pinned-domain-pubk-sha256': encodeBase64(v.pinnedDomainPubkSha256) }
      : {}),
    ...(v.estDomain ? { 'est-domain': v.estDomain } : {}),
    ...(v.additionalConfigurationUrl ? { 'additional-configuration-url': v.additionalConfigurationUrl } : {}),
  };
  // Validate what we emit with the same rules we apply on receipt.
  const bytes = new TextEncoder().encode(JSON.stringify({ [VOUCHER_KEY]: inner }));
  decodeVoucher(bytes);
  return bytes;
}

/** Decodes and strictly validates voucher JSON bytes. */
export function decodeVoucher(bytes: Uint8Array): Voucher {
  const doc = guard('PKI_ERR_MALFORMED_VOUCHER', 'voucher is not UTF-8 JSON', () =>
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)),
  ) as unknown;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return bad('voucher must be a JSON object');
  const keys = Object.keys(doc);
  if (keys.length !== 1 || keys[0] !== VOUCHER_KEY)
    bad(`voucher must have exactly one member '${VOUCHER_KEY}'`);
  const v = (doc as Record<string, unknown>)[VOUCHER_KEY];
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return bad(`'${VOUCHER_KEY}' must be an object`);
  const o = v as Record<string, unknown>;
  const known = [
    'created-on',
    'expires-on',
    'assertion',
    'serial-number',
    'idevid-issuer',
    'pinned-domain-cert',
    'domain-cert-revocation-checks',
    'nonce',
    'last-renewal-date',
    'pinned-domain-pubk',
    'pinned-domain-pubk-sha256',
    'est-domain',
    'additional-configuration-url',
  ];
  for (const k of Object.keys(o)) if (!known.includes(k)) bad(`unknown voucher leaf '${k}'`);
  const str = (k: string): string | undefined => {
    if (o[k] === undefined) return undefined;
    if (typeof o[k] !== 'string') bad(`'${k}' must be a string`);
    return o[k] as string;
  };
  const date = (k: string): Date | undefined => {
    const s = str(k);
    if (s === undefined) return undefined;
    const d = new Date(s);
    if (!DATE_TIME.test(s) || Number.isNaN(d.getTime())) bad(`'${k}' is not a yang:date-and-time`);
    return d;
  };
  const bin = (k: string, lenient = false): Uint8Array | undefined => {
    const s = str(k);
    if (s === undefined) return undefined;
    // Unpadded base64 is tolerated only where it is seen in the wild (Minerva nonces).
    const padded = lenient && s.length % 4 !== 0 ? s + '='.repeat(4 - (s.length % 4)) : s;
    try {
      return decodeBase64(padded, k);
    } catch {
      return bad(`'${k}' is not base64`);
    }
  };
  const createdOn = date('created-on');
  if (!createdOn) return bad("'created-on' is mandatory (RFC 8366 §5.3)");
  const assertion = str('assertion');
  if (!assertion || !ASSERTIONS.includes(assertion as VoucherAssertion))
    return bad(`'assertion' must be one of ${ASSERTIONS.join(', ')}`);
  const serialNumber = str('serial-number');
  if (!serialNumber) return bad("'serial-number' is mandatory");
  const pinnedDomainCert = bin('pinned-domain-cert');
  if (!pinnedDomainCert) return bad("'pinned-domain-cert' is mandatory for sZTP (RFC 8572 §5.4)");
  try {
    parseCertificate(pinnedDomainCert);
  } catch (err) {
    bad(`'pinned-domain-cert' is not a certificate: ${(err as Error).message}`);
  }
  const out: Voucher = {
    createdOn,
    assertion: assertion as VoucherAssertion,
    serialNumber,
    pinnedDomainCert,
  };
  const expiresOn = date('expires-on');
  if (expiresOn) out.expiresOn = expiresOn;
  const lastRenewalDate = date('last-renewal-date');
  if (lastRenewalDate) out.lastRenewalDate = lastRenewalDate;
  const idevidIssuer = bin('idevid-issuer');
  if (idevidIssuer) out.idevidIssuer = idevidIssuer;
  const nonce = bin('nonce', true);
  if (nonce) out.nonce = nonce;
  const dcrc = o['domain-cert-revocation-checks'];
  if (dcrc !== undefined) {
    // Seen as the string "true" in anima-wg examples; accepting it can only make checks stricter.
    if (dcrc === true || dcrc === 'true') out.domainCertRevocationChecks = true;
    else if (dcrc === false || dcrc === 'false') out.domainCertRevocationChecks = false;
    else bad("'domain-cert-revocation-checks' must be a boolean");
  }
  const pdp = bin('pinned-domain-pubk');
  if (pdp) out.pinnedDomainPubk = pdp;
  const pdps = bin('pinned-domain-pubk-sha256');
  if (pdps) out.pinnedDomainPubkSha256 = pdps;
  const est = str('est-domain');
  if (est) out.estDomain = est;
  const acu = str('additional-configuration-url');
  if (acu) out.additionalConfigurationUrl = acu;
  return out;
}

/** Options for {@link signVoucher}. */
export interface SignVoucherOptions {
  /** Adds a signingTime signed attribute. */
  signingTime?: Date;
}

/**
 * Signs a voucher as a MASA: CMS SignedData, eContentType
 * id-ct-animaJSONVoucher (RFC 8366 §5.4; OID per RFC 8572 erratum EID 6807),
 * embedding the MASA certificate and its intermediates so the device can
 * chain them to its manufacturer trust anchor.
 */
export function signVoucher(
  voucher: Voucher | Uint8Array,
  signer: Signer,
  options: SignVoucherOptions = {},
): Promise<Uint8Array> {
  if (voucher instanceof Uint8Array) decodeVoucher(voucher); // never sign what a device would reject
  const content = voucher instanceof Uint8Array ? voucher : encodeVoucher(voucher);
  return signCms({
    content,
    contentType: ContentTypeOid.animaJsonVoucher,
    signer,
    ...(options.signingTime ? { signingTime: options.signingTime } : {}),
  });
}

/** What the device knows when it checks a voucher. */
export interface VoucherPolicy {
  /** Manufacturer trust anchors (DER certificates) for the voucher signature (RFC 8572 §5.1). */
  manufacturerTrustAnchors: readonly Uint8Array[];
  /** The device's own serial number. */
  serialNumber: string;
  /** Current time; RFC 8572 §5.4 step 2 applies when the device has an accurate clock. */
  now: Date;
  /** The nonce the device sent in get-bootstrapping-data, if any. */
  nonce?: Uint8Array;
  /** Authority key identifier of the device's IDevID, to check `idevid-issuer` against. */
  idevidIssuer?: Uint8Array;
  /** Acceptable assertions (default {@link DEFAULT_ACCEPTED_ASSERTIONS}). */
  acceptedAssertions?: readonly VoucherAssertion[];
  /**
   * An extKeyUsage OID the voucher signer must carry, when the
   * operator knows the one their manufacturer's MASA certificates carry (RFC 8366 names none).
   */
  requiredSignerPurpose?: string;
}

/**
 * Why `signer` may not sign ownership vouchers, or undefined when it may. A voucher decides
 * who owns the device, so its signer must be a MASA, never a device: an IDevID (IEEE 802.1AR
 * §8.6 puts the device serial in the subject's serialNumber) chains to the same manufacturer
 * CA in many PKIs, and without this check any device's key could mint a voucher for any
 * other device (issue 12's rogue server did). Also refused: a signer marked for TLS client
 * authentication only, and one without `requiredPurpose` when that is given.
 */
export function voucherSignerProblem(signer: CertificateInfo, requiredPurpose?: string): string | undefined {
  if (signer.subjectSerialNumber !== undefined)
    return `voucher signer '${signer.subject}' is a device identity (serialNumber in the subject), not a MASA`;
  const eku = signer.extendedKeyUsage;
  if (eku && eku.length > 0 && eku.every((o) => o === EkuOid.clientAuth))
    return `voucher signer '${signer.subject}' is a TLS client (device) certificate, not a MASA`;
  if (requiredPurpose !== undefined && !(eku ?? []).includes(requiredPurpose))
    return `voucher signer '${signer.subject}' lacks the required voucher-signer purpose ${requiredPurpose}`;
  return undefined;
}

/** A voucher that passed {@link verifyOwnershipVoucher}. */
export interface VerifiedVoucher {
  voucher: Voucher;
  /** The MASA certificate that signed it. */
  signer: CertificateInfo;
}

/**
 * Verifies an ownership voucher artifact in RFC 8572 §5.4 order: (1) its
 * signature, by a certificate that chains to a manufacturer trust anchor;
 * (2) created-on/expires-on against `now`; (3) assertion; (4) serial-number and
 * idevid-issuer; then the nonce (RFC 8366 §5.3 semantics: a device that sent a
 * nonce accepts only a voucher with that nonce, and a nonce-bound voucher only
 * when it sent that nonce).
 */
export function verifyOwnershipVoucher(cms: Uint8Array, policy: VoucherPolicy): VerifiedVoucher {
  // Step 1. RFC 8572 §3.3 allows id-data as well as id-ct-animaJSONVoucher.
  const parsed = verifySignedData(cms, {
    contentTypes: [ContentTypeOid.animaJsonVoucher, ContentTypeOid.data],
    additionalCertificates: policy.manufacturerTrustAnchors,
  });
  const path = validateCertificatePath({
    certificate: parsed.signer,
    intermediates: parsed.certificates,
    trustAnchors: policy.manufacturerTrustAnchors,
    now: policy.now,
    untrustedCode: 'PKI_ERR_UNTRUSTED_SIGNER',
  });
  const ku = path.path[0]!.keyUsage;
  if (ku && !ku.includes('digitalSignature'))
    throw new PkiError('PKI_ERR_KEY_USAGE', 'voucher signer certificate lacks digitalSignature');
  const notSigner = voucherSignerProblem(path.path[0]!, policy.requiredSignerPurpose);
  if (notSigner) throw new PkiError('PKI_ERR_NOT_A_VOUCHER_SIGNER', notSigner);
  const voucher = decodeVoucher(parsed.content);
  // Step 2.
  if (voucher.createdOn > policy.now)
    throw new PkiError(
      'PKI_ERR_VOUCHER_NOT_YET_VALID',
      `voucher created-on ${dateOut(voucher.createdOn)} is in the future`,
    );
  if (voucher.expiresOn && voucher.expiresOn <= policy.now)
    throw new PkiError('PKI_ERR_VOUCHER_EXPIRED', `voucher expired ${dateOut(voucher.expiresOn)}`);
  // Step 3.
  const accepted = policy.acceptedAssertions ?? DEFAULT_ACCEPTED_ASSERTIONS;
  if (!accepted.includes(voucher.assertion))
    throw new PkiError(
      'PKI_ERR_ASSERTION_REJECTED',
      `voucher assertion '${voucher.assertion}' is not accepted`,
    );
  // Step 4.
  if (voucher.serialNumber !== policy.serialNumber)
    throw new PkiError(
      'PKI_ERR_SERIAL_MISMATCH',
      `voucher is for serial '${voucher.serialNumber}', this device is '${policy.serialNumber}'`,
    );
  if (voucher.idevidIssuer) {
    if (!policy.idevidIssuer)
      throw new PkiError(
        'PKI_ERR_IDEVID_ISSUER_MISMATCH',
        "voucher pins idevid-issuer but the device's was not supplied",
      );
    if (!bytesEqual(voucher.idevidIssuer, policy.idevidIssuer))
      throw new PkiError(
        'PKI_ERR_IDEVID_ISSUER_MISMATCH',
        "voucher idevid-issuer differs from the device's IDevID issuer",
      );
  }
  if (policy.nonce || voucher.nonce) {
    if (!policy.nonce || !voucher.nonce || !bytesEqual(policy.nonce, voucher.nonce))
      throw new PkiError(
        'PKI_ERR_NONCE_MISMATCH',
        !voucher.nonce
          ? 'the device sent a nonce but the voucher has none'
          : !policy.nonce
            ? 'the voucher is bound to a nonce the device did not send'
            : 'voucher nonce differs from the nonce the device sent',
      );
  }
  return { voucher, signer: parsed.signer };
}
