/**
 * ISC dhclient lease files (dhclient.leases(5)): `lease { … }` blocks for DHCPv4
 * and `lease6 { … }` blocks for DHCPv6, appended as leases are obtained, so the
 * last block is the newest. NetworkManager's dhclient backend writes the same
 * format to /var/lib/NetworkManager/dhclient[6]-<uuid>-<iface>.lease.
 *
 * What dhclient 4.4 writes for option 143/136 (seen in our netns test):
 *   option sztp-redirect-urls 0:1e:68:74:…;           declared `string`
 *   option sztp-redirect-urls "\000\036https://…";    declared `text`
 *   option unknown-143 0:1e:68:74:…;                  not declared
 *   option dhcp6.sztp-redirect-urls 0:1e:68:74:…;     in a lease6 block
 */
import { DiscoveryError } from './errors.js';
import { concatenateOptionInstances } from './rfc3396.js';
import { decodeOptionText } from './option-value.js';

/** One lease's raw option 143 (v4) or 136 (v6) value, in file order. */
export interface RawLeaseOption {
  /** 4 for a `lease` block (option 143), 6 for a `lease6` block (option 136). */
  readonly family: 4 | 6;
  /** Option name as written, e.g. `sztp-redirect-urls` or `dhcp6.unknown-136`. */
  readonly name: string;
  /** The value's bytes; several lines of the same option joined per RFC 3396. */
  readonly value: Uint8Array;
  /** 1-based line of the option in the file. */
  readonly line: number;
}

type Token = { kind: 'word' | 'string' | '{' | '}' | ';'; text: string; line: number };

function tokenize(text: string, source?: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '{' || c === '}' || c === ';') {
      tokens.push({ kind: c, text: c, line });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length)
        throw new DiscoveryError(
          'SZTP_CLIENT_ERR_MALFORMED_OPTION',
          `unterminated quoted string at line ${line}`,
          source === undefined ? undefined : { source },
        );
      tokens.push({ kind: 'string', text: text.slice(i, j + 1), line });
      for (let k = i; k < j; k++) if (text[k] === '\n') line++;
      i = j + 1;
    } else {
      let j = i;
      while (j < text.length && !/[\s{};"#]/.test(text[j]!)) j++;
      tokens.push({ kind: 'word', text: text.slice(i, j), line });
      i = j;
    }
  }
  return tokens;
}

/**
 * True for dhclient's text; used to pick the format of a lease file. Linear: a
 * leading `^\s*` under the `m` flag would rescan every following blank line from
 * every line start (200 KB of newlines took 21 s), so only blanks on the line count.
 */
export function looksLikeDhclientLeases(text: string): boolean {
  return /^[ \t]*lease6?\s*\{/m.test(text);
}

// Which option names carry sZTP redirects. The name is whatever the local
// dhclient.conf declared, so match any name with "sztp" in it, and the
// undeclared `unknown-143` / `dhcp6.unknown-136`.
const V4_NAME = /^(?:unknown-143|[a-z0-9_-]*sztp[a-z0-9_-]*)$/i;
const V6_NAME = /^dhcp6\.(?:unknown-136|[a-z0-9_-]*sztp[a-z0-9_-]*)$/i;

/**
 * Extracts the option 143/136 values of every lease in a dhclient lease file,
 * oldest first (file order). Leases without the option are skipped.
 *
 * @throws DiscoveryError `SZTP_CLIENT_ERR_MALFORMED_OPTION` on an undecodable value
 */
export function parseDhclientLeases(text: string, source?: string): RawLeaseOption[] {
  const tokens = tokenize(text, source);
  const out: RawLeaseOption[] = [];
  let depth = 0;
  // The innermost open lease block, and the depth at which its own statements sit.
  let lease:
    | { family: 4 | 6; depth: number; found: Map<string, { parts: Uint8Array[]; line: number }> }
    | undefined;
  let stmt: Token[] = [];
  const flush = () => {
    if (lease && depth === lease.depth) {
      const [kw, name, ...rest] = stmt;
      const wanted = lease.family === 4 ? V4_NAME : V6_NAME;
      if (kw?.text === 'option' && name && wanted.test(name.text)) {
        const where = `${source ?? 'lease file'}:${name.line}`;
        if (rest.length !== 1)
          throw new DiscoveryError(
            'SZTP_CLIENT_ERR_MALFORMED_OPTION',
            `option ${name.text} at line ${name.line} should have exactly one value`,
            { source: where },
          );
        const value = decodeOptionText(rest[0]!.text, where);
        const entry = lease.found.get(name.text) ?? { parts: [], line: name.line };
        entry.parts.push(value);
        lease.found.set(name.text, entry);
      }
    }
    stmt = [];
  };
  for (const t of tokens) {
    if (t.kind === ';') flush();
    else if (t.kind === '{') {
      const kw = stmt[0]?.text;
      if (depth === 0 && (kw === 'lease' || kw === 'lease6') && stmt.length === 1)
        lease = { family: kw === 'lease' ? 4 : 6, depth: 1, found: new Map() };
      stmt = [];
      depth++;
    } else if (t.kind === '}') {
      stmt = [];
      depth = Math.max(0, depth - 1);
      if (lease && depth === 0) {
        // RFC 3396: several instances of one option are one value, joined in order.
        for (const [name, { parts, line }] of lease.found)
          out.push({ family: lease.family, name, value: concatenateOptionInstances(parts), line });
        lease = undefined;
      }
    } else stmt.push(t);
  }
  return out;
}
