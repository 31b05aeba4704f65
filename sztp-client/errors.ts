/**
 * The agent's error catalogue (STYLE.md lesson 6): every failure of the RFC 8572
 * §5 procedure is an {@link AgentError} with one of these stable codes. The
 * README's sztp-client section lists exactly these codes (and discovery's); a
 * test keeps them in step.
 */

/** Code → what it means. */
export const AGENT_ERROR_CODES = {
  SZTP_CLIENT_ERR_BAD_CONFIG:
    'The agent configuration is unusable: a missing or unreadable IDevID, trust anchor or state directory, or a bad flag value.',
  SZTP_CLIENT_ERR_NO_SOURCES:
    'Discovery found no bootstrap server and no bootstrapping data to try (no --bootstrap-url, no DHCP option 143/136, no DNS record, no --bootstrap-dir).',
  SZTP_CLIENT_ERR_BAD_SOURCE:
    'A discovered source or redirect entry is unusable (a URL the HTTPS transport cannot parse, an address that is not a host name or IP address, a bad port); it is skipped and the others are still tried.',
  SZTP_CLIENT_ERR_CONNECT:
    'A bootstrap server could not be reached: DNS, TCP or TLS failure, or a timeout (RFC 8572 §5.3: move on to the next source).',
  SZTP_CLIENT_ERR_HTTP:
    'A bootstrap server answered with an unexpected HTTP status or a RESTCONF error (ietf-restconf:errors), e.g. an unknown device.',
  SZTP_CLIENT_ERR_BAD_RESPONSE:
    'A get-bootstrapping-data reply is not the RFC 8572 §7.1 output: bad JSON, missing conveyed-information, or invalid base64.',
  SZTP_CLIENT_ERR_VERIFICATION:
    'Signed bootstrapping data failed RFC 8572 §5.4 verification (voucher, owner certificate or signature); the PKI code is in the message.',
  SZTP_CLIENT_ERR_UNTRUSTED_UNSIGNED:
    'Unsigned onboarding information came from an untrusted source; RFC 8572 §5.3 forbids acting on it.',
  SZTP_CLIENT_ERR_REDIRECT_LOOP:
    'Redirect information nested deeper than 10 hops (RFC 8572 §5.3 asks for a limit), or a pass followed more redirect hops than --max-redirect-hops.',
  SZTP_CLIENT_ERR_REDIRECT_FAILED:
    'No bootstrap server listed in redirect information could bootstrap the device.',
  SZTP_CLIENT_ERR_PROGRESS_REJECTED:
    'A trusted bootstrap server did not answer 204 to bootstrap-initiated or bootstrap-complete (RFC 8572 §5.6 treats this as an error).',
  SZTP_CLIENT_ERR_IMAGE_DOWNLOAD: 'The boot image could not be downloaded from any listed download-uri.',
  SZTP_CLIENT_ERR_IMAGE_HASH:
    'The downloaded boot image does not match image-verification (sha-256), or no supported hash was conveyed.',
  SZTP_CLIENT_ERR_INSTALL_HOOK:
    'The boot image needs installing but no --install-hook is configured, or the hook failed or timed out.',
  SZTP_CLIENT_ERR_SCRIPT:
    'The pre- or post-configuration script failed (non-zero exit other than the warning code, killed, or timed out).',
  SZTP_CLIENT_ERR_CONFIG:
    'The configuration could not be committed: no --config-path, the atomic write failed, or --config-hook failed (the previous file is restored).',
  SZTP_CLIENT_ERR_GAVE_UP:
    'Every source failed, with --once or after --max-attempts passes over the sources.',
  SZTP_CLIENT_ERR_STATE: 'The state file in --state-dir cannot be read or written.',
  SZTP_CLIENT_ERR_STOPPED:
    'The agent was stopped (SIGTERM or SIGINT) before a source bootstrapped the device; the state was saved and the next start tries again.',
} as const;

/** A stable agent error code. */
export type AgentErrorCode = keyof typeof AGENT_ERROR_CODES;

/** The agent's error: a stable {@link AgentErrorCode} and a reason for humans. */
export class AgentError extends Error {
  /** Stable code from {@link AGENT_ERROR_CODES}. */
  readonly code: AgentErrorCode;
  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentError';
    this.code = code;
  }
}

/** True when `err` is an {@link AgentError} (optionally with `code`). */
export function isAgentError(err: unknown, code?: AgentErrorCode): err is AgentError {
  return err instanceof AgentError && (code === undefined || err.code === code);
}

/** `CODE: message` of any error, for logs, state and progress messages. */
export function describeError(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'ERR_UNEXPECTED',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}
