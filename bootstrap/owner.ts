/**
 * The owner certificate in use: what the operator API shows and how a
 * replacement is checked before it signs anything (RFC 8572 §3.2: the owner
 * certificate's key usage, if present, includes digitalSignature, and the
 * certificate chains to the voucher's pinned-domain-cert).
 */
import {
  type CertificateInfo,
  decodeArtifacts,
  isPkiError,
  parseCertificate,
  type Signer,
  signerFromPrivateKey,
  toPem,
  validateCertificatePath,
} from '../pki/index.js';
import { ApiError } from './errors.js';

/** What `GET /api/v1/owner` shows. The private key never leaves the server; only where it lives. */
export interface OwnerView {
  certificateChain: string[];
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  fingerprintSha256: string;
  keyAlgorithm: string;
  /** Where the signing key is held, e.g. `file:/var/lib/dpu-ztp/pki/owner.key`. */
  keyReference: string;
  pinnedDomainCert: string | null;
  pinnedDomainCertSubject: string | null;
  /** Whether a lab MASA mints vouchers (else only uploaded vouchers are served). */
  labMasa: boolean;
}

/** Owner credentials as the operator uploads them (PEM). */
export interface OwnerUpload {
  /** Owner certificate first, then intermediates. */
  certificateChain: string;
  /** PKCS#8 private key of the owner certificate. */
  privateKey: string;
  /** The certificate vouchers pin (owner CA); default: the one in use. */
  pinnedDomainCert?: string | undefined;
}

/** Checked owner credentials, ready to sign with. */
export interface OwnerCredentials {
  signer: Signer;
  chain: Uint8Array[];
  pinned: Uint8Array;
  keyPem: string;
}

/** Where the owner credentials live and how they are swapped in (implemented by the composition root). */
export interface OwnerStore {
  get(): Promise<OwnerView | undefined>;
  replace(upload: OwnerUpload): Promise<OwnerView>;
}

const bad = (msg: string): never => {
  throw new ApiError('API_ERR_BAD_REQUEST', msg);
};

function certs(pem: string, what: string): Uint8Array[] {
  try {
    return decodeArtifacts(pem);
  } catch (err) {
    return bad(`${what}: ${(err as Error).message}`);
  }
}

/** Validates uploaded owner credentials; throws API_ERR_BAD_REQUEST naming what is wrong. */
export function checkOwnerUpload(
  upload: OwnerUpload,
  currentPinned: Uint8Array | undefined,
  now: Date,
): OwnerCredentials {
  const chain = certs(upload.certificateChain, 'certificateChain');
  if (chain.length === 0) bad('certificateChain holds no certificate');
  let owner: CertificateInfo;
  try {
    owner = parseCertificate(chain[0] as Uint8Array);
  } catch (err) {
    return bad(`certificateChain: ${(err as Error).message}`);
  }
  if (owner.keyUsage && !owner.keyUsage.includes('digitalSignature')) {
    bad('the owner certificate has a keyUsage without digitalSignature (RFC 8572 §3.2)');
  }
  let signer: Signer;
  try {
    signer = signerFromPrivateKey(upload.privateKey, { certificates: chain });
  } catch (err) {
    return bad(`privateKey: ${isPkiError(err) ? err.message : 'not a PKCS#8 private key'}`);
  }
  if (Buffer.compare(Buffer.from(signer.publicKey), Buffer.from(owner.publicKey)) !== 0) {
    bad('privateKey does not belong to the owner certificate');
  }
  const pinned = upload.pinnedDomainCert
    ? certs(upload.pinnedDomainCert, 'pinnedDomainCert')[0]
    : currentPinned;
  if (!pinned) return bad('pinnedDomainCert is required: no owner CA is configured yet');
  try {
    validateCertificatePath({
      certificate: owner,
      intermediates: chain.slice(1),
      trustAnchors: [pinned],
      now,
      untrustedCode: 'PKI_ERR_CHAIN_NOT_PINNED',
    });
  } catch (err) {
    bad(`the owner certificate does not chain to the pinned domain certificate: ${(err as Error).message}`);
  }
  return { signer, chain, pinned, keyPem: upload.privateKey };
}

/** Builds the API view of owner credentials. */
export function ownerView(
  chain: readonly Uint8Array[],
  pinned: Uint8Array | undefined,
  keyReference: string,
  labMasa: boolean,
): OwnerView {
  const owner = parseCertificate(chain[0] as Uint8Array);
  const p = pinned ? parseCertificate(pinned) : undefined;
  return {
    certificateChain: chain.map((c) => toPem(c, 'CERTIFICATE')),
    subject: owner.subject,
    issuer: owner.issuer,
    notBefore: owner.notBefore.toISOString(),
    notAfter: owner.notAfter.toISOString(),
    fingerprintSha256: owner.fingerprintSha256,
    keyAlgorithm: owner.keyAlgorithm,
    keyReference,
    pinnedDomainCert: pinned ? toPem(pinned, 'CERTIFICATE') : null,
    pinnedDomainCertSubject: p?.subject ?? null,
    labMasa,
  };
}
