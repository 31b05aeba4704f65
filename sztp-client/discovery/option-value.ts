/**
 * Turns the text that DHCP clients write for an option back into its bytes.
 *
 * - ISC dhclient (common/tables.c `pretty_print_option`): binary strings as colon
 *   hex *without* leading zeros (`0:1e:68:…`); printable ones, and options declared
 *   `text`, as a quoted string with `\ooo` octal escapes for other bytes
 *   (`"\000\036https://…"`) and a backslash before `"`, `\`, `$` and the like.
 * - busybox udhcpc (`-O 143`, networking/udhcp/dhcpc.c): plain lower-case hex
 *   (`001e6874…`).
 */
import { DiscoveryError } from './errors.js';

function malformed(message: string, source?: string): DiscoveryError {
  return new DiscoveryError(
    'SZTP_CLIENT_ERR_MALFORMED_OPTION',
    message,
    source === undefined ? undefined : { source },
  );
}

/** Decodes dhclient colon hex (`0:1e:68`, one or two digits per byte). */
export function decodeColonHex(text: string, source?: string): Uint8Array {
  if (!/^[0-9a-f]{1,2}(?::[0-9a-f]{1,2})*$/i.test(text))
    throw malformed(`not colon-separated hex bytes: ${JSON.stringify(text.slice(0, 40))}`, source);
  return Uint8Array.from(text.split(':'), (b) => Number.parseInt(b, 16));
}

/** Decodes plain hex (`001e6874…`), as udhcpc writes it. */
export function decodePlainHex(text: string, source?: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/i.test(text))
    throw malformed(`not an even number of hex digits: ${JSON.stringify(text.slice(0, 40))}`, source);
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

/**
 * Decodes the inside of a dhclient quoted string (without the quotes): `\ooo`
 * is one byte in octal, `\` before any other character stands for that
 * character; everything else is taken byte for byte (latin1).
 */
export function decodeQuotedString(inner: string, source?: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < inner.length; i++) {
    const ch = inner.charCodeAt(i);
    if (ch > 0xff) throw malformed('quoted option value holds a non-latin1 character', source);
    if (ch !== 0x5c) {
      out.push(ch);
      continue;
    }
    const oct = /^[0-7]{3}/.exec(inner.slice(i + 1, i + 4));
    if (oct) {
      const v = Number.parseInt(oct[0], 8);
      if (v > 0xff) throw malformed(`octal escape \\${oct[0]} is larger than a byte`, source);
      out.push(v);
      i += 3;
    } else if (i + 1 < inner.length) {
      out.push(inner.charCodeAt(i + 1));
      i += 1;
    } else {
      throw malformed('quoted option value ends in a lone backslash', source);
    }
  }
  return Uint8Array.from(out);
}

/**
 * Decodes an option value as a client wrote it, whichever of the forms above it
 * is: `"…"` quoted, colon hex, plain hex, or else (unquoted text in a hook
 * environment) the text itself.
 */
export function decodeOptionText(text: string, source?: string): Uint8Array {
  const t = text.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"'))
    return decodeQuotedString(t.slice(1, -1), source);
  if (/^[0-9a-f]{1,2}(?::[0-9a-f]{1,2})+$/i.test(t)) return decodeColonHex(t, source);
  if (/^(?:[0-9a-f]{2})+$/i.test(t)) return decodePlainHex(t, source);
  if (/^[0-9a-f:]+$/i.test(t))
    throw malformed(`malformed hex option value ${JSON.stringify(t.slice(0, 40))}`, source);
  return Uint8Array.from(Buffer.from(t, 'latin1'));
}
