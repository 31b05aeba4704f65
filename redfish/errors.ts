/**
 * Typed Redfish errors (STYLE.md lesson 6). Every failure leaving `redfish/`
 * is a {@link RedfishError} with a stable `code` from {@link REDFISH_ERROR_CODES};
 * BMC error bodies (DSP0266 §"Error responses") are parsed once, here, into
 * {@link RedfishMessage}s so callers can show the BMC's own words.
 */

/** The error catalogue: code → one-line meaning (README lists every key; a test checks). */
export const REDFISH_ERROR_CODES = {
  REDFISH_ERR_HTTP: 'The BMC answered with an HTTP error status (see status and BMC messages).',
  REDFISH_ERR_TIMEOUT: 'A request to the BMC did not complete within the configured timeout.',
  REDFISH_ERR_CONNECTION: 'The connection to the BMC failed or was reset.',
  REDFISH_ERR_TLS: 'The BMC TLS certificate could not be verified (use --ca or --insecure).',
  REDFISH_ERR_AUTH: 'The BMC rejected the credentials (401, or session login failed).',
  REDFISH_ERR_PASSWORD_CHANGE_REQUIRED:
    'The BMC account must change its password before use (403 PasswordChangeRequired).',
  REDFISH_ERR_PRECONDITION: 'The resource changed under us: 412 on If-Match persisted after re-reading.',
  REDFISH_ERR_BAD_RESPONSE: 'The BMC answered with a body that is not the Redfish JSON expected.',
  REDFISH_ERR_NO_SYSTEM: 'No (or no matching) ComputerSystem was found on the BMC.',
  REDFISH_ERR_NO_MEDIA_SLOT: 'No virtual media slot that can hold a CD/DVD image was found.',
  REDFISH_ERR_MEDIA_NOT_INSERTED:
    'The BMC accepted the insert but the slot never reported the image inserted.',
  REDFISH_ERR_MEDIA_STUCK: 'The slot still reports media inserted after eject.',
  REDFISH_ERR_UNSUPPORTED: 'The BMC does not offer a value or action this step needs (see AllowableValues).',
  REDFISH_ERR_TASK_FAILED: 'A BMC task ended in Exception, Killed or Cancelled.',
  REDFISH_ERR_WAIT_TIMEOUT:
    'A bounded wait (power state, task, media, OS running) ended before the BMC reached the state.',
  REDFISH_ERR_DEADLINE:
    'The overall deadline of a provisioning run (--timeout) passed, or its caller stopped it; the message names the step it was in.',
  REDFISH_ERR_NO_STRATEGY: 'No provisioning strategy is usable on this BMC (or the requested one is not).',
  REDFISH_ERR_ALL_STRATEGIES_FAILED:
    'With --strategy auto, every usable strategy was tried and each failed; the message lists each attempt, its step and error.',
  REDFISH_ERR_UNKNOWN_PROFILE: 'The requested vendor profile id does not exist.',
  REDFISH_ERR_CONFIG: 'Invalid options were passed to the Redfish client, emulator or strategy.',
} as const;

/** A stable Redfish error code. */
export type RedfishErrorCode = keyof typeof REDFISH_ERROR_CODES;

/** One entry of `@Message.ExtendedInfo` (Message.v1 schema), as the BMC sent it. */
export interface RedfishMessage {
  readonly MessageId: string;
  readonly Message?: string;
  readonly Resolution?: string;
  readonly Severity?: string;
  readonly MessageArgs?: readonly unknown[];
  readonly RelatedProperties?: readonly string[];
}

/** Extra context carried by a {@link RedfishError}. */
export interface RedfishErrorDetails {
  /** HTTP status when the BMC answered. */
  readonly status?: number;
  /** HTTP method and path of the request that failed. */
  readonly method?: string;
  readonly path?: string;
  /** `@Message.ExtendedInfo` (plus the top-level `error.code` as a message) from the body. */
  readonly messages?: readonly RedfishMessage[];
  /** Seconds from a `Retry-After` header, when present. */
  readonly retryAfterSeconds?: number;
  readonly cause?: unknown;
}

/** The only error type `redfish/` throws. */
export class RedfishError extends Error {
  readonly code: RedfishErrorCode;
  readonly status: number | undefined;
  readonly method: string | undefined;
  readonly path: string | undefined;
  readonly messages: readonly RedfishMessage[];
  readonly retryAfterSeconds: number | undefined;

  constructor(code: RedfishErrorCode, message: string, details: RedfishErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'RedfishError';
    this.code = code;
    this.status = details.status;
    this.method = details.method;
    this.path = details.path;
    this.messages = details.messages ?? [];
    this.retryAfterSeconds = details.retryAfterSeconds;
  }

  /** True when any BMC message id ends with `suffix` (registry-version independent, as sushy matches). */
  hasMessage(suffix: string): boolean {
    return this.messages.some((m) => messageIdMatches(m.MessageId, suffix));
  }

  /** All BMC-provided text (messages, resolutions, related properties) for fuzzy dialect detection. */
  bmcText(): string {
    return this.messages
      .flatMap((m) => [m.MessageId, m.Message ?? '', m.Resolution ?? '', ...(m.RelatedProperties ?? [])])
      .join(' ');
  }
}

/**
 * `Base.1.12.PropertyMissing` matches `PropertyMissing`; `IDRAC.2.8.RAC0218` matches `RAC0218`.
 * Registry versions differ between BMCs, so only the last segment is compared.
 */
export function messageIdMatches(messageId: string, suffix: string): boolean {
  const last = messageId.split('.').pop() ?? messageId;
  return last === suffix || messageId === suffix;
}

/** Type guard for {@link RedfishError}. */
export function isRedfishError(err: unknown, code?: RedfishErrorCode): err is RedfishError {
  return err instanceof RedfishError && (code === undefined || err.code === code);
}

/**
 * Parses a Redfish error body (`{"error": {"code", "message", "@Message.ExtendedInfo": [...]}}`) or a
 * resource-level `@Message.ExtendedInfo` array into messages. Tolerates anything (never throws).
 */
export function parseRedfishMessages(body: unknown): RedfishMessage[] {
  const out: RedfishMessage[] = [];
  if (!body || typeof body !== 'object') return out;
  const rec = body as Record<string, unknown>;
  const err = rec.error as Record<string, unknown> | undefined;
  const pushAll = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const item of list) {
      if (!item || typeof item !== 'object') continue;
      const m = item as Record<string, unknown>;
      if (typeof m.MessageId !== 'string') continue;
      out.push({
        MessageId: m.MessageId,
        ...(typeof m.Message === 'string' ? { Message: m.Message } : {}),
        ...(typeof m.Resolution === 'string' ? { Resolution: m.Resolution } : {}),
        ...(typeof (m.Severity ?? m.MessageSeverity) === 'string'
          ? { Severity: (m.Severity ?? m.MessageSeverity) as string }
          : {}),
        ...(Array.isArray(m.MessageArgs) ? { MessageArgs: m.MessageArgs } : {}),
        ...(Array.isArray(m.RelatedProperties)
          ? { RelatedProperties: m.RelatedProperties.filter((p): p is string => typeof p === 'string') }
          : {}),
      });
    }
  };
  if (err && typeof err === 'object') {
    pushAll(err['@Message.ExtendedInfo']);
    if (typeof err.code === 'string' && !out.some((m) => m.MessageId === err.code)) {
      out.push({ MessageId: err.code, ...(typeof err.message === 'string' ? { Message: err.message } : {}) });
    }
  }
  pushAll(rec['@Message.ExtendedInfo']);
  return out;
}

/** One line describing BMC messages, most specific first: `RAC0904: The remote file … (Resolution: …)`. */
export function describeMessages(messages: readonly RedfishMessage[]): string {
  return messages
    .map((m) => {
      const text = m.Message ? `${m.MessageId}: ${m.Message}` : m.MessageId;
      // Registries say "None." where there is nothing to do (Base Success, TaskEvent): not worth a word.
      return m.Resolution && !/^none\.?$/i.test(m.Resolution.trim())
        ? `${text} (Resolution: ${m.Resolution})`
        : text;
    })
    .join('; ');
}
