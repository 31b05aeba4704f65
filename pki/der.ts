/**
 * A minimal, bounded DER reader and writer (ITU-T X.690 §8, §10) for the few
 * structures the ASN.1 libraries do not cover or where exact bytes matter
 * (RSASSA-PSS parameters, signed-attribute values, strictness checks).
 * Every read is bounds-checked and throws a coded {@link PkiError}.
 */
import { PkiError } from './errors.js';

/** One decoded TLV: `tag` is the identifier octet, `value` the contents. */
export interface Tlv {
  tag: number;
  /** Contents octets (a view into the input). */
  value: Uint8Array;
  /** Header + contents, as found in the input. */
  raw: Uint8Array;
}

function bad(msg: string): never {
  throw new PkiError('PKI_ERR_MALFORMED_DER', msg);
}

/** Reads one TLV at `offset` (DER: definite lengths only, single-octet tags only). */
export function readTlv(bytes: Uint8Array, offset = 0): Tlv {
  if (offset + 2 > bytes.length) bad('truncated DER header');
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) bad('multi-octet ASN.1 tags are not used here');
  let len = bytes[offset + 1]!;
  let hdr = 2;
  if (len === 0x80) bad('indefinite length is not DER (X.690 §10.1)');
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n > 4) bad('DER length too large');
    if (offset + 2 + n > bytes.length) bad('truncated DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[offset + 2 + i]!;
    // X.690 §10.1: the definite form uses the fewest octets — short form below 128,
    // and no leading zero octet in the long form (OpenSSL refuses both too).
    if (len < 0x80) bad('non-minimal DER length (short form required below 128)');
    if (bytes[offset + 2] === 0) bad('non-minimal DER length (leading zero octet)');
    hdr += n;
  }
  const end = offset + hdr + len;
  if (end > bytes.length) bad(`truncated DER: need ${end} bytes, have ${bytes.length}`);
  return { tag, value: bytes.subarray(offset + hdr, end), raw: bytes.subarray(offset, end) };
}

/** Reads all TLVs in `bytes` (the contents of a constructed value). */
export function readChildren(bytes: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let off = 0;
  while (off < bytes.length) {
    const t = readTlv(bytes, off);
    out.push(t);
    off += t.raw.length;
  }
  return out;
}

/**
 * Checks that `bytes` is exactly one TLV of `tag` with nothing after it.
 * Library decoders tolerate trailing garbage; a signed artifact must not.
 */
export function expectSingleTlv(bytes: Uint8Array, tag: number, what: string): Tlv {
  const t = readTlv(bytes, 0);
  if (t.tag !== tag) bad(`${what}: expected tag 0x${tag.toString(16)}, found 0x${t.tag.toString(16)}`);
  if (t.raw.length !== bytes.length) bad(`${what}: ${bytes.length - t.raw.length} trailing bytes after DER`);
  return t;
}

/** Encodes one TLV. */
export function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const len = contents.reduce((n, c) => n + c.length, 0);
  let header: number[];
  if (len < 0x80) header = [tag, len];
  else {
    const lb: number[] = [];
    for (let l = len; l > 0; l = Math.floor(l / 256)) lb.unshift(l & 0xff);
    header = [tag, 0x80 | lb.length, ...lb];
  }
  const out = new Uint8Array(header.length + len);
  out.set(header, 0);
  let off = header.length;
  for (const c of contents) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** DER SEQUENCE. */
export const seq = (...c: Uint8Array[]): Uint8Array => tlv(0x30, ...c);

/** DER SET OF, elements sorted by encoding as X.690 §11.6 requires. */
export function setOf(...c: Uint8Array[]): Uint8Array {
  return tlv(0x31, ...[...c].sort(compareBytes));
}

/** Lexicographic byte comparison (shorter first on equal prefix). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** True when both byte arrays hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/** DER OBJECT IDENTIFIER from dotted form. */
export function oid(dotted: string): Uint8Array {
  const parts = dotted.split('.').map((p) => Number.parseInt(p, 10));
  const body: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const b: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) b.unshift((v & 0x7f) | 0x80);
    body.push(...b);
  }
  return tlv(0x06, Uint8Array.from(body));
}

/** Decodes the contents of an OBJECT IDENTIFIER to dotted form. */
export function decodeOid(value: Uint8Array): string {
  if (value.length === 0) bad('empty OBJECT IDENTIFIER');
  const out: number[] = [];
  let acc = 0;
  for (let i = 0; i < value.length; i++) {
    const b = value[i]!;
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 256) bad('OBJECT IDENTIFIER arc too large');
    if (!(b & 0x80)) {
      if (out.length === 0) out.push(acc < 80 ? Math.floor(acc / 40) : 2, acc < 80 ? acc % 40 : acc - 80);
      else out.push(acc);
      acc = 0;
    } else if (i === value.length - 1) bad('truncated OBJECT IDENTIFIER');
  }
  return out.join('.');
}

/** DER INTEGER from a small non-negative number. */
export function int(n: number): Uint8Array {
  const b: number[] = [];
  for (let v = n; ; v = Math.floor(v / 256)) {
    b.unshift(v & 0xff);
    if (v < 256) break;
  }
  if (b[0]! & 0x80) b.unshift(0);
  return tlv(0x02, Uint8Array.from(b));
}

/** Decodes a small non-negative INTEGER's contents. */
export function decodeSmallInt(value: Uint8Array): number {
  if (value.length === 0 || value.length > 4 || value[0]! & 0x80) bad('INTEGER out of range');
  return value.reduce((n, b) => n * 256 + b, 0);
}

/** DER OCTET STRING. */
export const octets = (b: Uint8Array): Uint8Array => tlv(0x04, b);

/** DER NULL. */
export const nul = (): Uint8Array => Uint8Array.of(0x05, 0x00);

/**
 * DER Time for a date: UTCTime for 1950–2049, GeneralizedTime otherwise
 * (RFC 5280 §4.1.2.5, RFC 5652 §11.3).
 */
export function time(d: Date): Uint8Array {
  const y = d.getUTCFullYear();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, new TextEncoder().encode(`${p(y % 100)}${rest}`));
  return tlv(0x18, new TextEncoder().encode(`${p(y, 4)}${rest}`));
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Decodes a UTCTime (RFC 5280 §4.1.2.5.1: YY ≥ 50 is 19YY) or GeneralizedTime TLV, Zulu, whole seconds. */
export function decodeTime(t: Tlv): Date {
  let s = '';
  for (const b of t.value) s += String.fromCharCode(b);
  const m =
    t.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : t.tag === 0x18
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
        : null;
  if (!m) bad('Time is not UTCTime/GeneralizedTime YYMMDDHHMMSSZ');
  let y = Number(m![1]);
  if (t.tag === 0x17) y += y < 50 ? 2000 : 1900;
  const [mo, da, h, mi, se] = [2, 3, 4, 5, 6].map((i) => Number(m![i]));
  // Date.UTC would roll month 13 or day 45 over into a later date: check every field
  // against the calendar, as OpenSSL's ASN1_TIME checks do.
  const daysInMonth = new Date(Date.UTC(y, mo!, 0)).getUTCDate();
  if (mo! < 1 || mo! > 12) bad(`Time has month ${mo}`);
  if (da! < 1 || da! > daysInMonth) bad(`Time has day ${da} in a month of ${daysInMonth} days`);
  if (h! > 23 || mi! > 59 || se! > 59) bad(`Time has ${h}:${mi}:${se}`);
  const d = new Date(Date.UTC(y, mo! - 1, da!, h!, mi!, se!));
  if (Number.isNaN(d.getTime())) bad('Time out of range');
  return d;
}
