/**
 * Byte encodings at the edges: PEM (RFC 7468), base64 as RESTCONF carries
 * `binary` leaves (RFC 7951 §6.6, RFC 4648 §4), and colon-hex (`yang:hex-string`).
 */
import { PkiError } from './errors.js';

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Encodes DER as PEM with the given label (RFC 7468 §2, 64-character lines). */
export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** Every PEM block in `text` as `{ label, der }`, in order. */
export function fromPemAll(text: string): { label: string; der: Uint8Array }[] {
  const out: { label: string; der: Uint8Array }[] = [];
  for (const m of text.matchAll(PEM_RE)) out.push({ label: m[1]!, der: decodeBase64(m[2]!, `PEM ${m[1]}`) });
  return out;
}

/**
 * Decodes strict base64 (whitespace ignored). Non-zero pad bits are tolerated,
 * as RFC 4648 §3.5 allows ("base64encodedvalue==" in RFC 8572's examples has them).
 */
export function decodeBase64(text: string, what = 'base64'): Uint8Array {
  const s = text.replace(/\s+/g, '');
  if (!B64_RE.test(s) || s.length % 4 !== 0)
    throw new PkiError('PKI_ERR_MALFORMED_DER', `${what}: not valid base64 (RFC 4648 §4)`);
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Encodes bytes as base64 (RFC 4648 §4), as RESTCONF JSON/XML carry `binary`. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

/**
 * Accepts an artifact as DER, PEM or base64 text (the forms it appears in on disk
 * and in RESTCONF JSON) and returns every DER object found. DER input yields one
 * object; PEM may hold several (a trust-anchor bundle).
 */
export function decodeArtifacts(input: Uint8Array | string): Uint8Array[] {
  if (typeof input !== 'string') {
    // DER always starts with a constructed SEQUENCE (0x30) here; anything else is text.
    if (input.length > 0 && input[0] === 0x30) return [input];
    input = Buffer.from(input).toString('latin1');
  }
  if (input.includes('-----BEGIN ')) {
    const blocks = fromPemAll(input);
    if (blocks.length === 0)
      throw new PkiError('PKI_ERR_MALFORMED_DER', 'PEM armour without a complete block');
    return blocks.map((b) => b.der);
  }
  const trimmed = input.trim().replace(/^"|"$/g, '');
  if (trimmed === '') throw new PkiError('PKI_ERR_MALFORMED_DER', 'empty input');
  return [decodeBase64(trimmed)];
}

/** Like {@link decodeArtifacts} but requires exactly one object. */
export function decodeArtifact(input: Uint8Array | string): Uint8Array {
  const all = decodeArtifacts(input);
  if (all.length !== 1)
    throw new PkiError('PKI_ERR_MALFORMED_DER', `expected one DER object, found ${all.length} PEM blocks`);
  return all[0]!;
}

/** Formats bytes as lowercase colon-separated hex, the `yang:hex-string` form (RFC 6991 §3). */
export function toColonHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Parses `yang:hex-string` (colon-separated, either case) to bytes. */
export function fromColonHex(text: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*)?$/.test(text))
    throw new PkiError('PKI_ERR_BAD_INPUT', 'not a yang:hex-string (colon-separated hex octets)');
  return text === '' ? new Uint8Array(0) : Uint8Array.from(text.split(':'), (h) => Number.parseInt(h, 16));
}
