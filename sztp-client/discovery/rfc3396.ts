/**
 * RFC 3396 "Encoding Long Options in DHCPv4": a DHCPv4 option longer than 255
 * bytes is sent as several instances of the same code, which the client joins
 * in the order they appear. RFC 8572 §8.1 requires a DHCPv4 client to implement
 * it for option 143.
 */
import { DiscoveryError } from './errors.js';

/** DHCPv4 option code of OPTION_V4_SZTP_REDIRECT (RFC 8572 §8.1). */
export const DHCPV4_SZTP_REDIRECT = 143;
/** DHCPv6 option code of OPTION_V6_SZTP_REDIRECT (RFC 8572 §8.2). */
export const DHCPV6_SZTP_REDIRECT = 136;

/**
 * Joins the instances of one option into a single value (RFC 3396 §6: "the
 * concatenation of the values of all instances, in the order they appear").
 */
export function concatenateOptionInstances(instances: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(instances.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of instances) {
    out.set(p, i);
    i += p.length;
  }
  return out;
}

/**
 * Collects every instance of option `code` from a raw DHCPv4 options field
 * (RFC 2132 §2: code, length, data; Pad 0 and End 255 carry no length) and joins
 * them per RFC 3396. Returns undefined when the option is absent. Option
 * overload (RFC 2132 §9.3, sname/file) is the caller's business: pass those
 * fields after the options field, in the order RFC 3396 §7 gives.
 *
 * @throws DiscoveryError `SZTP_CLIENT_ERR_MALFORMED_OPTION` if an option's length runs past the field.
 */
export function extractDhcpv4Option(
  fields: Uint8Array | readonly Uint8Array[],
  code: number,
): Uint8Array | undefined {
  const parts: Uint8Array[] = [];
  for (const field of fields instanceof Uint8Array ? [fields] : fields) {
    let i = 0;
    while (i < field.length) {
      const c = field[i]!;
      if (c === 0) {
        i += 1;
        continue;
      }
      if (c === 255) break;
      if (i + 1 >= field.length) throw malformed(code, i);
      const len = field[i + 1]!;
      if (i + 2 + len > field.length) throw malformed(code, i);
      if (c === code) parts.push(field.subarray(i + 2, i + 2 + len));
      i += 2 + len;
    }
  }
  return parts.length > 0 ? concatenateOptionInstances(parts) : undefined;
}

function malformed(code: number, at: number): DiscoveryError {
  return new DiscoveryError(
    'SZTP_CLIENT_ERR_MALFORMED_OPTION',
    `DHCPv4 options field truncated at byte ${at} while looking for option ${code}`,
  );
}
