/**
 * `pki/`: everything RFC 8572 signs or verifies, as pure functions over bytes
 * (STYLE.md lesson 9). Keys sit behind {@link Signer}; the clock is always an
 * argument; every failure is a {@link PkiError} with a stable code. The server
 * uses the signing side (certificates, conveyed information, owner-certificate
 * artifacts, vouchers); the device agent uses {@link verifyBootstrappingData}.
 * Imports nothing internal.
 */
export { PKI_ERROR_CATALOGUE, PkiError, type PkiErrorCode, isPkiError } from './errors.js';
export { ContentTypeOid } from './oids.js';
export {
  decodeArtifact,
  decodeArtifacts,
  decodeBase64,
  encodeBase64,
  toColonHex,
  toPem,
} from './encoding.js';
export { type GeneratedKey, KEY_ALGORITHMS, type KeyAlgorithm, generateKey } from './keys.js';
export {
  type HashAlgorithm,
  type SignatureAlgorithm,
  type Signer,
  type SignerOptions,
  signerFromPrivateKey,
  withCertificates,
} from './signer.js';
export type { DistinguishedName } from './names.js';
export { type CertificateInfo, type KeyUsageName, parseCertificate } from './certificate-info.js';
export { type CertificateProfile, type CertificateRequest, createCertificate } from './certificate-create.js';
export { type PathValidationInput, type ValidatedPath, validateCertificatePath } from './path-validation.js';
export {
  type SignCmsOptions,
  type VerifiedSignedData,
  type VerifySignedDataOptions,
  createCertificateBag,
  createCertificateBag as createOwnerCertificateArtifact,
  decodeCertificates,
  parseCertificateBag,
  signCms,
  verifySignedData,
} from './cms.js';
export {
  type BootImage,
  type BootstrapServer,
  CONVEYED_INFO_NS,
  type ConveyedInformation,
  type ConveyedInformationFormat,
  type ImageVerification,
  ONBOARDING_KEY,
  type OnboardingInformation,
  REDIRECT_KEY,
  type RedirectInformation,
  type SignConveyedInformationOptions,
  createUnsignedConveyedInformation,
  decodeConveyedInformation,
  encodeConveyedInformation,
  signConveyedInformation,
  validateConveyedInformation,
} from './conveyed-info.js';
export {
  DEFAULT_ACCEPTED_ASSERTIONS,
  type SignVoucherOptions,
  type VerifiedVoucher,
  type Voucher,
  type VoucherAssertion,
  type VoucherPolicy,
  decodeVoucher,
  encodeVoucher,
  signVoucher,
  verifyOwnershipVoucher,
  voucherSignerProblem,
} from './voucher.js';
export {
  type BootstrappingDataInput,
  type VerifiedBootstrappingData,
  verifyBootstrappingData,
} from './bootstrapping-data.js';
export {
  DEVICE_SERIAL_RE,
  type LabPki,
  type LabPkiFile,
  type LabPkiOptions,
  createLabPki,
} from './lab-pki.js';
export { hashPassword, verifyPassword } from './password.js';
export {
  escapeXml,
  NamespaceScope,
  parseXml,
  XML_LIMITS,
  type XmlElement,
  type XmlLimits,
  XmlSyntaxError,
} from './xml.js';
export { PROGRESS_TYPES, type ProgressType } from './progress-types.js';
