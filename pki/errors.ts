/**
 * The PKI error catalogue (STYLE.md lesson 6): every failure in `pki/` is a
 * {@link PkiError} whose `code` is one of these stable strings. The README's
 * PKI section lists exactly these codes; a test keeps the two in step.
 */

/** Code → one-line description of every error `pki/` can raise. */
export const PKI_ERROR_CATALOGUE = {
  PKI_ERR_MALFORMED_DER: 'input is not well-formed DER/PEM/base64 or not the ASN.1 structure expected',
  PKI_ERR_MALFORMED_CMS:
    'CMS structure is decodable but breaks an RFC 5652 rule (version, missing content, …)',
  PKI_ERR_WRONG_CONTENT_TYPE:
    'CMS content type is not one allowed here (e.g. a voucher where conveyed info was expected)',
  PKI_ERR_UNSIGNED: 'data is unsigned (or has no signers) where a signature is required',
  PKI_ERR_MISSING_SIGNED_ATTRS:
    'signed attributes (or their contentType/messageDigest) absent (RFC 5652 §5.3)',
  PKI_ERR_CONTENT_TYPE_ATTR_MISMATCH:
    'contentType signed attribute differs from the eContentType (RFC 5652 §11.1)',
  PKI_ERR_DIGEST_MISMATCH: 'messageDigest signed attribute does not match the content (RFC 5652 §11.2)',
  PKI_ERR_BAD_SIGNATURE: 'a signature does not verify with the signer public key',
  PKI_ERR_UNSUPPORTED_ALGORITHM:
    'digest, signature or key algorithm not supported (SHA-2 with RSA, RSA-PSS, ECDSA only)',
  PKI_ERR_SIGNER_NOT_FOUND:
    'no certificate matches the CMS signer (e.g. signer missing from the owner certificate)',
  PKI_ERR_UNTRUSTED_SIGNER: 'signer certificate does not chain to a configured trust anchor',
  PKI_ERR_CHAIN_NOT_PINNED:
    "owner certificate does not chain to the voucher's pinned-domain-cert (RFC 8572 §5.4)",
  PKI_ERR_CERT_EXPIRED: 'a certificate in the path is past its notAfter at the given time',
  PKI_ERR_CERT_NOT_YET_VALID: 'a certificate in the path is before its notBefore at the given time',
  PKI_ERR_NOT_A_CA: 'an issuing certificate lacks basicConstraints cA=true or exceeds its pathLenConstraint',
  PKI_ERR_KEY_USAGE: 'a certificate key usage does not permit this use (keyCertSign, digitalSignature)',
  PKI_ERR_NOT_A_VOUCHER_SIGNER:
    'the voucher signer is a device identity (serialNumber in the subject) or lacks the required voucher-signer EKU',
  PKI_ERR_UNKNOWN_CRITICAL_EXTENSION:
    'a certificate carries a critical extension this validator does not process',
  PKI_ERR_MALFORMED_VOUCHER: 'voucher JSON is not a valid RFC 8366 ietf-voucher:voucher',
  PKI_ERR_VOUCHER_EXPIRED: 'voucher expires-on is not after the given time (RFC 8572 §5.4)',
  PKI_ERR_VOUCHER_NOT_YET_VALID: 'voucher created-on is after the given time (RFC 8572 §5.4)',
  PKI_ERR_ASSERTION_REJECTED: 'voucher assertion is not accepted by policy',
  PKI_ERR_SERIAL_MISMATCH: "voucher serial-number is not the device's serial number",
  PKI_ERR_IDEVID_ISSUER_MISMATCH: "voucher idevid-issuer does not match the device's IDevID issuer",
  PKI_ERR_NONCE_MISMATCH: 'voucher nonce differs from (or is missing for) the nonce the device sent',
  PKI_ERR_REVOCATION_UNAVAILABLE: 'voucher demands domain-cert-revocation-checks, which cannot be satisfied',
  PKI_ERR_MISSING_ARTIFACT:
    'signed conveyed information without owner certificate, voucher, trust anchor or serial',
  PKI_ERR_BAD_CONVEYED_INFO: 'conveyed information is not valid ietf-sztp-conveyed-info JSON or XML',
  PKI_ERR_BAD_INPUT: 'an argument to a pki function is invalid (key algorithm, date, serial number, …)',
} as const;

/** Every stable error code `pki/` can raise. */
export type PkiErrorCode = keyof typeof PKI_ERROR_CATALOGUE;

/** The one error type of `pki/`: a stable {@link PkiErrorCode} plus a human-readable reason. */
export class PkiError extends Error {
  /** Stable code from {@link PKI_ERROR_CATALOGUE}. */
  readonly code: PkiErrorCode;
  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PkiError';
    this.code = code;
  }
}

/** True when `err` is a {@link PkiError} (optionally with the given code). */
export function isPkiError(err: unknown, code?: PkiErrorCode): err is PkiError {
  return err instanceof PkiError && (code === undefined || err.code === code);
}

/**
 * Runs `fn`, turning any non-PkiError exception (library parse errors, RangeError
 * from deep recursion, TypeError from odd shapes) into a PkiError with `code`.
 * This is how every parser keeps the "never an uncaught crash" promise.
 */
export function guard<T>(code: PkiErrorCode, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError(code, `${what}: ${describe(err)}`, { cause: err });
  }
}

/** Async twin of {@link guard}. */
export async function guardAsync<T>(code: PkiErrorCode, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError(code, `${what}: ${describe(err)}`, { cause: err });
  }
}

function describe(err: unknown): string {
  const m = (err as { message?: unknown })?.message;
  return (typeof m === 'string' && m ? m : String(err)).split('\n')[0]!.slice(0, 200);
}
