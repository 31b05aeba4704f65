/**
 * The payload of DHCPv4 option 143 and DHCPv6 option 136 (RFC 8572 §8.1, §8.2):
 * a `bootstrap-server-list`, i.e. repeated `uri-length` (uint16, network order)
 * followed by that many bytes of URI (RFC 8572 §8.3, RFC 7227 §5.7).
 */
import { type DiscoveryWarning, DiscoveryError, type WarningSink } from './errors.js';
import { checkBootstrapServerUri, checkHttpsUrl } from './server-uri.js';

/** How an option value was written: RFC 8572 framing, or one plain-text URL. */
export type OptionForm = 'rfc8572' | 'plain-text';

/** The URIs found in one option value. */
export interface DecodedServerList {
  /** Valid, normalised URIs in the order the option lists them (RFC 8572 §8.3). */
  readonly uris: string[];
  /** Which encoding the value used. */
  readonly form: OptionForm;
}

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Splits RFC 8572 framing into raw entries, or returns undefined if it does not parse exactly. */
function splitFraming(bytes: Uint8Array): Uint8Array[] | undefined {
  const entries: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.length) {
    if (i + 2 > bytes.length) return undefined;
    const len = (bytes[i]! << 8) | bytes[i + 1]!;
    i += 2;
    if (i + len > bytes.length) return undefined;
    entries.push(bytes.subarray(i, i + len));
    i += len;
  }
  return entries.length > 0 ? entries : undefined;
}

/** True when the value is printable ASCII that starts like a URL (the lab plain-text form). */
function looksLikePlainText(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text) && /^[\x21-\x7e\s]*$/.test(text);
}

/**
 * Decodes an option 143/136 value.
 *
 * - RFC 8572 §8.3 framing: invalid entries are ignored with a
 *   `SZTP_CLIENT_WARN_INVALID_URI` warning, and if none is valid the whole option
 *   is discarded (`SZTP_CLIENT_WARN_OPTION_DISCARDED`, empty `uris`).
 * - A plain-text URL (or several, separated by white space or commas), as labs
 *   configure with ISC dhcpd `code 143 = text`: accepted with a
 *   `SZTP_CLIENT_WARN_PLAIN_TEXT_URL` warning; a path is kept.
 * - Anything else, including framing whose lengths overrun the data, throws
 *   `DiscoveryError` `SZTP_CLIENT_ERR_MALFORMED_OPTION`.
 *
 * @param bytes the option payload (already joined per RFC 3396 if it was split)
 * @param warnings where warnings are appended
 * @param source names the origin in messages (file path, option name)
 */
export function decodeBootstrapServerList(
  bytes: Uint8Array,
  warnings: WarningSink = [],
  source?: string,
): DecodedServerList {
  const warn = (w: Omit<DiscoveryWarning, 'source'>) =>
    warnings.push(source === undefined ? w : { ...w, source });
  const entries = splitFraming(bytes);
  if (entries) {
    const uris: string[] = [];
    for (const entry of entries) {
      const text = latin1(entry);
      const check = /^[\x21-\x7e]*$/.test(text)
        ? checkBootstrapServerUri(text)
        : ({ ok: false, reason: 'not printable ASCII' } as const);
      if (check.ok) uris.push(check.uri);
      else
        warn({
          code: 'SZTP_CLIENT_WARN_INVALID_URI',
          message: `ignoring bootstrap server URI ${JSON.stringify(text)}: ${check.reason} (RFC 8572 §8.3)`,
        });
    }
    if (uris.length === 0)
      warn({
        code: 'SZTP_CLIENT_WARN_OPTION_DISCARDED',
        message: 'no valid URI in the bootstrap-server-list: option discarded (RFC 8572 §8.3)',
      });
    return { uris, form: 'rfc8572' };
  }
  // Trailing NULs are common when a text option is written by C tools.
  const text = latin1(bytes).replace(/\0+$/, '').trim();
  if (looksLikePlainText(text)) {
    const uris: string[] = [];
    for (const part of text.split(/[\s,]+/).filter(Boolean)) {
      const check = checkHttpsUrl(part);
      if (check.ok) uris.push(check.uri);
      else
        warn({
          code: 'SZTP_CLIENT_WARN_INVALID_URI',
          message: `ignoring plain-text URL ${JSON.stringify(part)}: ${check.reason}`,
        });
    }
    if (uris.length > 0)
      warn({
        code: 'SZTP_CLIENT_WARN_PLAIN_TEXT_URL',
        message: `option holds plain text ${JSON.stringify(text)} instead of the RFC 8572 §8.3 bootstrap-server-list; accepted`,
      });
    else
      warn({
        code: 'SZTP_CLIENT_WARN_OPTION_DISCARDED',
        message: 'no valid URL in the plain-text option: option discarded',
      });
    return { uris, form: 'plain-text' };
  }
  throw new DiscoveryError(
    'SZTP_CLIENT_ERR_MALFORMED_OPTION',
    bytes.length === 0
      ? 'empty bootstrap-server-list (RFC 8572 §8.3 needs at least one entry)'
      : `bootstrap-server-list does not parse: its uint16 lengths overrun the ${bytes.length}-byte value, and it is not a plain-text URL (RFC 8572 §8.3)`,
    source === undefined ? undefined : { source },
  );
}

/**
 * Encodes URIs as an RFC 8572 §8.3 bootstrap-server-list. Used by tests and by
 * tooling that prints the bytes to give a DHCP server. Each URI must fit in
 * 65535 bytes.
 */
export function encodeBootstrapServerList(uris: readonly string[]): Uint8Array {
  const parts = uris.map((u) => Buffer.from(u, 'utf8'));
  const out = Buffer.alloc(parts.reduce((n, p) => n + 2 + p.length, 0));
  let i = 0;
  for (const p of parts) {
    if (p.length > 0xffff) throw new RangeError('URI longer than 65535 bytes');
    out.writeUInt16BE(p.length, i);
    p.copy(out, i + 2);
    i += 2 + p.length;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
