/**
 * Operator API errors: stable codes mapped once to RFC 9457 problem bodies
 * (`application/problem+json` with a `code` member). STYLE.md lesson 6.
 */

/** Every operator-API error code with its HTTP status and meaning (the README lists them; a test checks). */
export const API_ERRORS = {
  API_ERR_UNAUTHENTICATED: { status: 401, description: 'no, malformed or unknown bearer token' },
  API_ERR_FORBIDDEN: { status: 403, description: "the token's role may not do this" },
  API_ERR_VALIDATION: {
    status: 400,
    description: 'the request does not match the schema (the detail names the field)',
  },
  API_ERR_BAD_REQUEST: { status: 400, description: 'the request is well-formed but its content is invalid' },
  API_ERR_INVALID_TEXT: {
    status: 400,
    description:
      'a string (body field, label, query or path parameter) holds U+0000 or a lone surrogate, which the database cannot store',
  },
  API_ERR_NOT_FOUND: { status: 404, description: 'no such resource' },
  API_ERR_CONFLICT: {
    status: 409,
    description: 'the change conflicts with the current state (e.g. resource in use)',
  },
  API_ERR_BMC_IN_USE: {
    status: 409,
    description: 'the BMC cannot be deleted while devices name it (the problem lists them in `devices`)',
  },
  API_ERR_UNKNOWN_BMC: {
    status: 400,
    description: 'a device (or an import row) names a BMC that does not exist',
  },
  API_ERR_IDEMPOTENCY_MISMATCH: {
    status: 409,
    description: 'the Idempotency-Key was already used with a different request',
  },
  API_ERR_IDEMPOTENCY_IN_PROGRESS: {
    status: 409,
    description: 'the first request with this Idempotency-Key is still being processed',
  },
  API_ERR_PRECONDITION_FAILED: {
    status: 412,
    description:
      'If-Match names a version that is no longer current (someone changed the resource since), or ' +
      'If-None-Match: * and the resource already exists; nothing was changed',
  },
  API_ERR_BODY_TOO_LARGE: { status: 413, description: 'the request body exceeds the limit' },
  API_ERR_URI_TOO_LONG: {
    status: 414,
    description: 'a path segment (resource name) is longer than the 256-character limit',
  },
  API_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    description: 'the request body has an unsupported content type',
  },
  API_ERR_HASH_MISMATCH: {
    status: 422,
    description: 'an uploaded image does not match its X-Expected-Sha256/384/512 header; nothing was stored',
  },
  API_ERR_INSUFFICIENT_STORAGE: {
    status: 507,
    description: 'the image store ran out of space during an upload; nothing was stored',
  },
  API_ERR_RATE_LIMITED: { status: 429, description: 'too many requests' },
  API_ERR_UNAVAILABLE: { status: 503, description: 'the service is overloaded or not ready' },
  API_ERR_TOO_MANY_STREAMS: {
    status: 503,
    description: 'this replica serves its maximum of event streams; retry later (or use webhooks)',
  },
  API_ERR_INTERNAL: { status: 500, description: 'an unexpected error; the log has the details' },
} as const;

/** An operator-API error code. */
export type ApiErrorCode = keyof typeof API_ERRORS;

/** An error the operator API turns into a problem body with its code and status. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ApiErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = API_ERRORS[code].status;
    this.details = details;
  }
}

/** The problem body (RFC 9457) the operator API returns for an error. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  [extra: string]: unknown;
}

/**
 * The problem body as a shared schema (`#/components/schemas/Problem` in the OpenAPI
 * document): `code` is the enum of {@link API_ERRORS}, so generated clients can switch on it.
 */
export const ProblemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'An RFC 9457 problem: every error answer of the operator API (`application/problem+json`)',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: {
      type: 'string',
      description: '`urn:dpu-ztp:error:<code>`',
      example: 'urn:dpu-ztp:error:API_ERR_NOT_FOUND',
    },
    title: { type: 'string', description: 'what the code means' },
    status: { type: 'integer', description: 'the HTTP status', example: 404 },
    code: {
      type: 'string',
      enum: Object.keys(API_ERRORS),
      description: 'the stable error code (README "Operator API" error table)',
    },
    detail: { type: 'string', description: 'what went wrong with this request', example: 'no device SN-1' },
  },
  additionalProperties: true,
} as const;

/** Builds the problem body for a code and detail message. */
export function problem(code: ApiErrorCode, detail: string, extra?: Record<string, unknown>): Problem {
  const { status } = API_ERRORS[code];
  return {
    type: `urn:dpu-ztp:error:${code}`,
    title: API_ERRORS[code].description,
    status,
    code,
    detail,
    ...(extra ?? {}),
  };
}
