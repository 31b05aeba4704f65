/**
 * Environment dumps written by DHCP client hook scripts — the only place busybox
 * udhcpc puts option 143, since it keeps no lease file.
 *
 * - busybox udhcpc `-O 143 -s SCRIPT`: the script's environment has
 *   `opt143=001e6874…` (plain hex, networking/udhcp/dhcpc.c for options it has
 *   no name for). A script as small as `env >> /run/sztp-client/udhcpc.env`
 *   (see README) is enough; each event appends, so the last dump is the newest.
 * - ISC dhclient `-sf SCRIPT`: `new_sztp_redirect_urls=0:1e:68:…` (or
 *   `new_unknown_143=…`, `new_dhcp6_sztp_redirect_urls=…` for DHCPv6).
 *
 * `env`, `set` and `export -p` output are all accepted (`export`/`declare -x`
 * prefixes, single or double quotes).
 */
import { decodePlainHex, decodeQuotedString, decodeColonHex } from './option-value.js';
import type { RawLeaseOption } from './dhclient-lease.js';

const LINE = /^(?:export\s+|declare\s+-\S+\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

/**
 * True for shell environment syntax: every meaningful line `NAME=value`, or at
 * least one line naming option 143/136 (a real `env` dump may hold multi-line
 * values from the surrounding environment).
 */
export function looksLikeEnvDump(text: string): boolean {
  const lines = text.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  const named = (l: string) => familyOf(LINE.exec(l.trim())?.[1] ?? '') !== undefined;
  return (
    lines.length > 0 &&
    (lines.some(named) ||
      (lines.some((l) => LINE.test(l)) && lines.every((l) => LINE.test(l) || /^\s/.test(l))))
  );
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && ((t.startsWith("'") && t.endsWith("'")) || (t.startsWith('"') && t.endsWith('"'))))
    return t.slice(1, -1);
  return t;
}

/** Which variable names hold option 143/136, and for which family. */
function familyOf(name: string): 4 | 6 | undefined {
  if (name === 'opt143') return 4;
  if (name === 'opt136') return 6;
  const m = /^new_(.+)$/.exec(name);
  if (!m) return undefined;
  const opt = m[1]!.toLowerCase();
  if (opt === 'unknown_143') return 4;
  if (opt === 'dhcp6_unknown_136') return 6;
  if (opt.includes('sztp')) return opt.startsWith('dhcp6_') ? 6 : 4;
  return undefined;
}

/**
 * Extracts option 143/136 values from an environment dump, in file order
 * (oldest first).
 *
 * @throws DiscoveryError `SZTP_CLIENT_ERR_MALFORMED_OPTION` on an undecodable value
 */
export function parseEnvDump(text: string, source?: string): RawLeaseOption[] {
  const out: RawLeaseOption[] = [];
  text.split('\n').forEach((line, idx) => {
    const m = LINE.exec(line.trim());
    if (!m) return;
    const [, name = '', raw = ''] = m;
    const family = familyOf(name);
    if (!family) return;
    const where = `${source ?? 'environment'}:${idx + 1}`;
    const v = unquote(raw);
    const value = name.startsWith('opt')
      ? decodePlainHex(v, where)
      : /^[0-9a-f]{1,2}(?::[0-9a-f]{1,2})*$/i.test(v)
        ? decodeColonHex(v, where)
        : // dhclient passes text options unquoted but still escaped (\ooo).
          decodeQuotedString(v, where);
    out.push({ family, name, value, line: idx + 1 });
  });
  return out;
}
