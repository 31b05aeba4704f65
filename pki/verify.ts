/**
 * `pki/`'s device-side entry point: what the sZTP agent (`sztp-client/`, and
 * the `sztp-client` CLI) may use — RFC 8572 §5.4 verification, the artifact
 * decoders, and the conveyed-information shapes. It re-exports only verifying
 * modules, never the certificate-issuing side (`certificate-create.ts`, the lab
 * PKI and its ASN.1 object library), so the agent bundle stays small and the
 * import rules (test/docs/import-rules.test.ts) can hold the agent to this file.
 */
export { PkiError, type PkiErrorCode, isPkiError } from './errors.js';
export { ContentTypeOid, EkuOid } from './oids.js';
export { decodeArtifact, decodeArtifacts, decodeBase64, toPem } from './encoding.js';
export { type CertificateInfo, parseCertificate } from './certificate-info.js';
export { createCertificateBag, decodeCertificates, parseCertificateBag } from './cms.js';
export {
  type BootImage,
  type BootstrapServer,
  type ConveyedInformation,
  ONBOARDING_KEY,
  type OnboardingInformation,
  REDIRECT_KEY,
  type RedirectInformation,
} from './conveyed-info.js';
export {
  type BootstrappingDataInput,
  type VerifiedBootstrappingData,
  verifyBootstrappingData,
} from './bootstrapping-data.js';
export { type VoucherAssertion, voucherSignerProblem } from './voucher.js';
export type { XmlLimits } from './xml.js';
export { PROGRESS_TYPES, type ProgressType } from './progress-types.js';
