/**
 * Validation of the bootstrap server URIs that DHCP and DNS hand out.
 *
 * RFC 8572 §8.3: each URI "MUST be of the form `https://<ip-address-or-hostname>[:<port>]`"
 * — no user-info, path, query or fragment. We check that with a strict grammar
 * instead of the WHATWG `URL` parser, which happily accepts and rewrites much more.
 */
import { isIPv4, isIPv6 } from 'node:net';

// RFC 1123 §2.1 host names: letters, digits and inner hyphens, labels ≤ 63,
// name ≤ 253 (a trailing root dot is tolerated and dropped).
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** The result of checking one URI: the normalised form, or why it was refused. */
export type UriCheck = { ok: true; uri: string } | { ok: false; reason: string };

function checkHost(host: string): string | undefined {
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) return 'unterminated IPv6 literal';
    // RFC 3986 §3.2.2 IP-literal; zone ids (RFC 6874) make no sense for a server list
    // (and Node's isIPv6 accepts `fe80::1%eth0`, which the URL parser then refuses).
    if (host.includes('%')) return 'IPv6 zone identifiers are not accepted';
    return isIPv6(host.slice(1, -1)) ? undefined : 'invalid IPv6 literal';
  }
  if (/^[0-9.]+$/.test(host)) return isIPv4(host) ? undefined : 'invalid IPv4 address';
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return 'invalid host name length';
  return name.split('.').every((l) => LABEL.test(l)) ? undefined : 'invalid host name';
}

/** The host as the WHATWG URL parser reads it, or undefined when it refuses it. */
function parsedHost(host: string): string | undefined {
  try {
    return new URL(`https://${host}/`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * Checks a URI against RFC 8572 §8.3 (`https://<ip-address-or-hostname>[:<port>]`)
 * and normalises it so that equal servers compare equal: scheme and host in lower
 * case, a root dot and the default port 443 dropped, a lone trailing `/` (an empty
 * path) dropped.
 */
export function checkBootstrapServerUri(text: string): UriCheck {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(\[[^\]]*\]|[^:/?#[\]@]*)(?::(\d*))?(\/?)$/i.exec(text);
  if (!m) {
    if (/^https:\/\/[^/?#]*[/?#]./i.test(text)) return { ok: false, reason: 'has a path, query or fragment' };
    if (/^https:\/\/[^/]*@/i.test(text)) return { ok: false, reason: 'has user information' };
    return { ok: false, reason: 'not of the form https://<host>[:<port>]' };
  }
  const [, scheme = '', rawHost = '', port] = m;
  if (scheme.toLowerCase() !== 'https') return { ok: false, reason: `scheme is "${scheme}", not https` };
  const hostProblem = checkHost(rawHost);
  if (hostProblem) return { ok: false, reason: hostProblem };
  let host = rawHost.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  // The HTTPS transport parses with WHATWG URL, which refuses some names this grammar
  // allows (`xn--a`: bad punycode; `0xffffffffff`: a hex IPv4 out of range) and rewrites
  // others (`0x7f000001` is 127.0.0.1): refuse both here, so such an entry is one warning
  // and never the reason a whole list is lost.
  const parsed = parsedHost(host);
  if (parsed === undefined) return { ok: false, reason: 'host refused by the URL parser' };
  if (!host.startsWith('[') && parsed !== host)
    return { ok: false, reason: `host is read as ${parsed} by the URL parser` };
  if (port !== undefined) {
    const n = Number(port);
    if (port === '' || port.length > 5 || n < 1 || n > 65535) return { ok: false, reason: 'invalid port' };
    if (n !== 443) return { ok: true, uri: `https://${host}:${n}` };
  }
  return { ok: true, uri: `https://${host}` };
}

/**
 * Checks a looser https URL: an operator's static `--bootstrap-url`, or the
 * plain-text URL some labs put into option 143 (e.g. the full
 * get-bootstrapping-data URL of OPI's sztp lab). It must be https with a valid
 * host and no user information; a path is allowed and kept.
 */
export function checkHttpsUrl(text: string): UriCheck {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: 'not a URL' };
  }
  if (url.protocol !== 'https:')
    return { ok: false, reason: `scheme is "${url.protocol.slice(0, -1)}", not https` };
  if (url.username || url.password) return { ok: false, reason: 'has user information' };
  if (checkHost(url.hostname)) return { ok: false, reason: 'invalid host' };
  if (parsedHost(url.hostname) !== url.hostname) return { ok: false, reason: 'invalid host' };
  // WHATWG already lower-cases the host and drops :443; drop a bare "/" path too.
  return { ok: true, uri: url.pathname === '/' && !url.search && !url.hash ? url.origin : url.href };
}
