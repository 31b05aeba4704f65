/**
 * Device-side errors: stable codes, each mapped once to an RFC 8040 §7
 * `ietf-restconf:errors` entry (error-type, error-tag) and HTTP status.
 */

/** Every device-side error code, with its RESTCONF mapping and meaning (README lists them; a test checks). */
export const SZTP_ERRORS = {
  SZTP_ERR_UNAUTHENTICATED: {
    status: 401,
    type: 'protocol',
    tag: 'access-denied',
    description: 'no usable client certificate or HTTP Basic credentials',
  },
  SZTP_ERR_UNTRUSTED_IDEVID: {
    status: 401,
    type: 'protocol',
    tag: 'access-denied',
    description:
      'the client certificate does not chain to a configured manufacturer trust anchor, or is expired/not yet valid',
  },
  SZTP_ERR_BAD_PASSWORD: {
    status: 401,
    type: 'protocol',
    tag: 'access-denied',
    description: 'HTTP Basic password wrong, or none set for the device',
  },
  SZTP_ERR_REVOKED_IDEVID: {
    status: 401,
    type: 'protocol',
    tag: 'access-denied',
    description: 'the client certificate is on the revoked-IDevID list',
  },
  SZTP_ERR_IDENTITY_MISMATCH: {
    status: 403,
    type: 'protocol',
    tag: 'access-denied',
    description: 'client certificate and HTTP Basic name different devices (RFC 8572 §5.3)',
  },
  SZTP_ERR_UNKNOWN_DEVICE: {
    status: 403,
    type: 'application',
    tag: 'access-denied',
    description: 'the device is not registered and the unknown-device policy is reject',
  },
  SZTP_ERR_DEVICE_PENDING: {
    status: 403,
    type: 'application',
    tag: 'access-denied',
    description: 'the device is held until an operator approves it',
  },
  SZTP_ERR_NO_PROFILE: {
    status: 409,
    type: 'application',
    tag: 'data-missing',
    description: 'the device has no profile, so there is no bootstrapping data for it',
  },
  SZTP_ERR_NO_VOUCHER: {
    status: 409,
    type: 'application',
    tag: 'data-missing',
    description: 'signed data needs an ownership voucher: none stored and no lab MASA configured',
  },
  SZTP_ERR_IMAGE_MISSING: {
    status: 409,
    type: 'application',
    tag: 'data-missing',
    description: "the profile's boot image is no longer held by the image service",
  },
  SZTP_ERR_PROFILE_INVALID: {
    status: 409,
    type: 'application',
    tag: 'data-missing',
    description:
      "the device's stored profile fails the profile schema or holds an artifact that cannot be used (the log names the field)",
  },
  SZTP_ERR_NONCE_UNSATISFIABLE: {
    status: 409,
    type: 'application',
    tag: 'data-missing',
    description: 'the device sent a nonce but only a stored voucher without that nonce exists',
  },
  SZTP_ERR_UNSIGNED_REFUSED: {
    status: 409,
    type: 'application',
    tag: 'data-missing',
    description:
      'the device asked for signed data but the profile is unsigned onboarding information (RFC 8572 §7.1)',
  },
  SZTP_ERR_MALFORMED: {
    status: 400,
    type: 'protocol',
    tag: 'malformed-message',
    description: 'the body is not well-formed JSON or XML',
  },
  SZTP_ERR_INVALID_VALUE: {
    status: 400,
    type: 'application',
    tag: 'invalid-value',
    description: 'the input does not match the YANG module (the message names the node)',
  },
  SZTP_ERR_TOO_BIG: {
    status: 413,
    type: 'transport',
    tag: 'too-big',
    description:
      'the request body exceeds the body limit, or its XML crosses a structural limit (elements, attributes, namespace declarations, depth)',
  },
  SZTP_ERR_INVALID_TEXT: {
    status: 400,
    type: 'application',
    tag: 'invalid-value',
    description:
      'a string (input leaf, HTTP Basic user name) holds U+0000 or a lone surrogate, which the database cannot store',
  },
  SZTP_ERR_TOO_MANY_ATTEMPTS: {
    status: 429,
    type: 'protocol',
    tag: 'resource-denied',
    description:
      'too many failed HTTP Basic attempts for this serial or from this address; retry after the Retry-After seconds',
  },
  SZTP_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    type: 'protocol',
    tag: 'invalid-value',
    description: 'the body is not application/yang-data+json or +xml',
  },
  SZTP_ERR_NOT_ACCEPTABLE: {
    status: 406,
    type: 'protocol',
    tag: 'invalid-value',
    description: 'the Accept header allows neither yang-data+json nor +xml',
  },
  SZTP_ERR_UNKNOWN_OPERATION: {
    status: 404,
    type: 'protocol',
    tag: 'invalid-value',
    description: 'no such RESTCONF resource or operation',
  },
  SZTP_ERR_INTERNAL: {
    status: 500,
    type: 'application',
    tag: 'operation-failed',
    description: 'the server failed; its log has the details',
  },
} as const;

/** A device-side error code. */
export type SztpErrorCode = keyof typeof SZTP_ERRORS;

/** An error answered to a device as `ietf-restconf:errors`. */
export class SztpError extends Error {
  readonly code: SztpErrorCode;
  /** Optional instance-identifier of the offending node (RFC 8040 `error-path`). */
  readonly path: string | undefined;
  /** Seconds a throttled client should wait (sent as Retry-After with a 429). */
  retryAfterSeconds: number | undefined;
  constructor(code: SztpErrorCode, message: string, path?: string) {
    super(message);
    this.name = 'SztpError';
    this.code = code;
    this.path = path;
  }
  get status(): number {
    return SZTP_ERRORS[this.code].status;
  }
}
