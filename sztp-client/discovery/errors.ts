/**
 * Discovery errors and warnings, each with a stable code (STYLE.md lesson 6).
 * Errors stop the current operation; warnings are recorded and discovery goes
 * on, as RFC 8572 §8.3 asks ("ignore invalid entries", "discard the option").
 */

/** Stable codes of the errors discovery can raise, with what each means. */
export const DISCOVERY_ERROR_CODES = {
  SZTP_CLIENT_ERR_MALFORMED_OPTION:
    'A DHCP option 143/136 value could not be decoded: bad hex or escapes, or a bootstrap-server-list whose 2-byte lengths overrun the data (RFC 8572 §8.3), and it is not a plain-text URL either.',
  SZTP_CLIENT_ERR_UNKNOWN_LEASE_FORMAT:
    'A lease file is neither an ISC dhclient lease file, a NetworkManager lease file, an nmcli dump nor a udhcpc/dhclient environment dump.',
  SZTP_CLIENT_ERR_LEASE_UNREADABLE: 'A lease file named explicitly could not be read.',
  SZTP_CLIENT_ERR_INVALID_STATIC_URL:
    'A configured bootstrap server URL is not an https:// URL with a host (static URLs are the operator’s own configuration, so this is fatal).',
  SZTP_CLIENT_ERR_INVALID_SERIAL:
    'The serial number cannot be used as a DNS label for `<serial>._sztp.<domain>` (RFC 8572 §4.2).',
} as const;

/** Stable codes of the warnings discovery records, with what each means. */
export const DISCOVERY_WARNING_CODES = {
  SZTP_CLIENT_WARN_INVALID_URI:
    'A bootstrap-server-list entry is not `https://<host>[:<port>]`; it was ignored (RFC 8572 §8.3).',
  SZTP_CLIENT_WARN_OPTION_DISCARDED:
    'A bootstrap-server-list held no valid URI, so the whole option was discarded (RFC 8572 §8.3).',
  SZTP_CLIENT_WARN_PLAIN_TEXT_URL:
    'Option 143/136 held a plain-text URL instead of the RFC 8572 §8.3 framing (a common lab setup); it was accepted.',
  SZTP_CLIENT_WARN_NO_DHCP_OPTIONS:
    'The lease file format cannot hold option 143/136 (NetworkManager’s internal client records only the address).',
  SZTP_CLIENT_WARN_LEASE_SKIPPED:
    'A lease file could not be read or parsed during discovery and was skipped.',
  SZTP_CLIENT_WARN_DNS_FAILED:
    'A DNS query failed for a reason other than "no such name/record" (RFC 8572 §4.2).',
  SZTP_CLIENT_WARN_DNS_TXT_IGNORED:
    'A `_sztp` TXT record held no usable `ci`, `oc` or `ov` key (RFC 8572 §4.2).',
} as const;

/** A discovery error code. */
export type DiscoveryErrorCode = keyof typeof DISCOVERY_ERROR_CODES;
/** A discovery warning code. */
export type DiscoveryWarningCode = keyof typeof DISCOVERY_WARNING_CODES;

/** An error raised by discovery; `code` is stable, the message is for humans. */
export class DiscoveryError extends Error {
  /** Stable error code, one of {@link DISCOVERY_ERROR_CODES}. */
  readonly code: DiscoveryErrorCode;
  /** Where the bad input came from (a file path, an option name), when known. */
  readonly source: string | undefined;
  constructor(code: DiscoveryErrorCode, message: string, options?: { source?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DiscoveryError';
    this.code = code;
    this.source = options?.source;
  }
}

/** A non-fatal finding, kept so that the agent can log it and `status` can show it. */
export interface DiscoveryWarning {
  /** Stable warning code, one of {@link DISCOVERY_WARNING_CODES}. */
  readonly code: DiscoveryWarningCode | DiscoveryErrorCode;
  /** Human-readable detail. */
  readonly message: string;
  /** Where it came from (file path, DNS name), when known. */
  readonly source?: string;
}

/** Where warnings go: an array that the callee appends to. */
export type WarningSink = DiscoveryWarning[];
