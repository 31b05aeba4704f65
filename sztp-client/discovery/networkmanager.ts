/**
 * What NetworkManager leaves behind, per DHCP backend:
 *
 * - `dhcp=dhclient`: /var/lib/NetworkManager/dhclient[6]-<uuid>-<iface>.lease,
 *   ordinary dhclient lease files (see dhclient-lease.ts). Option 143 is there
 *   when NM's generated dhclient config requests it (add
 *   `also request sztp-redirect-urls;` to /etc/dhcp/dhclient.conf, which NM merges).
 * - `dhcp=internal` (the default): /var/lib/NetworkManager/internal-<uuid>-<iface>.lease
 *   holds only `ADDRESS=…` under "# This is private data. Do not parse."
 *   (NM src/core/dhcp/nm-dhcp-nettools.c `lease_save`). NM's option table skips
 *   from 160 to 209 and only keeps private options 224–254 raw, so option 143 is
 *   neither requested nor recorded: we recognise the file and warn.
 * - `nmcli -t -f DHCP4,DHCP6 device show IFACE` output saved to a file:
 *   `DHCP4.OPTION[7]:sztp_redirect_urls = 0:1e:68:…` (dhclient backend names).
 */
import { decodeOptionText } from './option-value.js';
import type { RawLeaseOption } from './dhclient-lease.js';

/** True for NM's internal-client lease file. */
export function looksLikeNmInternalLease(text: string): boolean {
  const lines = text.split('\n').filter((l) => l.trim());
  return (
    lines.length > 0 &&
    lines.every((l) => l.startsWith('#') || /^[A-Z0-9_]+=/.test(l)) &&
    lines.some((l) => /^ADDRESS=/.test(l)) &&
    !lines.some((l) => /^(?:OPTION_143|OPT143)=/i.test(l))
  );
}

const NMCLI = /^DHCP([46])\.OPTION\[\d+\]:\s*([A-Za-z0-9_]+)\s*=\s*(.*)$/;

/** True for `nmcli … device show` output with DHCP options. */
export function looksLikeNmcliDump(text: string): boolean {
  return text.split('\n').some((l) => NMCLI.test(l.trim()));
}

/**
 * Extracts option 143/136 values from `nmcli` output, in file order.
 *
 * @throws DiscoveryError `SZTP_CLIENT_ERR_MALFORMED_OPTION` on an undecodable value
 */
export function parseNmcliDump(text: string, source?: string): RawLeaseOption[] {
  const out: RawLeaseOption[] = [];
  text.split('\n').forEach((line, idx) => {
    const m = NMCLI.exec(line.trim());
    if (!m) return;
    const [, fam, name = '', raw = ''] = m;
    const n = name.toLowerCase();
    if (!(n.includes('sztp') || n === 'unknown_143' || n === 'dhcp6_unknown_136')) return;
    const value = decodeOptionText(raw, `${source ?? 'nmcli'}:${idx + 1}`);
    out.push({ family: fam === '6' ? 6 : 4, name, value, line: idx + 1 });
  });
  return out;
}
