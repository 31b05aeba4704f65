/**
 * RFC 9110 conditional requests and byte ranges for immutable files, as pure
 * functions over header values (no I/O), so every rule is unit-testable.
 *
 * - §13.2.2: preconditions are evaluated in the order If-Match,
 *   If-Unmodified-Since, If-None-Match, If-Modified-Since, If-Range.
 * - §14.2: a Range header that cannot be parsed is ignored (200, whole body).
 * - §14.1.2: a suffix range longer than the representation selects all of it;
 *   a last-pos past the end is clamped.
 * - §15.5.17: when no range is satisfiable: 416 with `Content-Range: bytes *\/size`.
 * - §14.6: several satisfiable ranges are answered as `multipart/byteranges`, in
 *   the order asked, without the unsatisfiable ones; when any of them overlap or
 *   touch, all are sorted and coalesced (a server MAY, "regardless of the order",
 *   §14.3), so overlapping ranges can never make a response larger than the file.
 *   More than MAX_RANGES ranges are ignored (200, whole body), as §14.2 allows for
 *   "many small ranges".
 */

/** The validators of one representation. */
export interface Validators {
  /** Strong entity tag including quotes, e.g. `"9f86…"`. */
  etag: string;
  /** Last modification, in whole seconds since the epoch times 1000 (HTTP dates have 1 s resolution). */
  lastModifiedMs: number;
}

/** What the preconditions decide. */
export type Precondition = 'proceed' | 'not-modified' | 'failed';

/** The outcome of a Range header against a representation of `size` bytes. */
export type RangeOutcome =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'multipart'; ranges: ByteRange[] }
  | { kind: 'unsatisfiable' };

/** One satisfiable byte range, first and last byte inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Ranges in one Range header beyond which the header is ignored. */
export const MAX_RANGES = 16;

const ENTITY_TAG = /(W\/)?"[\x21\x23-\x7e\x80-\xff]*"/g;

/** Parses an entity-tag list (`If-Match`, `If-None-Match`); `*` gives `['*']`. */
export function parseEntityTags(value: string): string[] {
  if (value.trim() === '*') return ['*'];
  return value.match(ENTITY_TAG) ?? [];
}

/** Strong comparison (§8.8.3.2): both strong and identical. */
export function strongMatch(a: string, b: string): boolean {
  return !a.startsWith('W/') && !b.startsWith('W/') && a === b;
}

/** Weak comparison (§8.8.3.2): identical opaque-tags, weakness ignored. */
export function weakMatch(a: string, b: string): boolean {
  return a.replace(/^W\//, '') === b.replace(/^W\//, '');
}

/** Parses an HTTP-date (IMF-fixdate, and the obsolete forms Date.parse accepts); NaN when invalid. */
export function parseHttpDate(value: string): number {
  if (!/^[A-Za-z]{3},? /.test(value.trim())) return Number.NaN;
  return Date.parse(value);
}

/**
 * Evaluates If-Match, If-Unmodified-Since, If-None-Match and
 * If-Modified-Since (RFC 9110 §13.2.2) for a GET or HEAD of an existing
 * representation.
 */
export function evaluatePreconditions(
  headers: {
    'if-match'?: string | undefined;
    'if-unmodified-since'?: string | undefined;
    'if-none-match'?: string | undefined;
    'if-modified-since'?: string | undefined;
  },
  v: Validators,
): Precondition {
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    const tags = parseEntityTags(ifMatch);
    if (!(tags[0] === '*' || tags.some((t) => strongMatch(t, v.etag)))) return 'failed';
  } else if (headers['if-unmodified-since'] !== undefined) {
    const since = parseHttpDate(headers['if-unmodified-since']);
    if (!Number.isNaN(since) && v.lastModifiedMs > since) return 'failed';
  }
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    const tags = parseEntityTags(ifNoneMatch);
    // §13.1.2: for GET/HEAD a match means 304 Not Modified.
    if (tags[0] === '*' || tags.some((t) => weakMatch(t, v.etag))) return 'not-modified';
  } else if (headers['if-modified-since'] !== undefined) {
    const since = parseHttpDate(headers['if-modified-since']);
    if (!Number.isNaN(since) && v.lastModifiedMs <= since) return 'not-modified';
  }
  return 'proceed';
}

/**
 * True when an `If-Range` value lets the Range apply (§13.1.5): a strong
 * match of the entity tag, or a date exactly equal to Last-Modified. A weak
 * tag never matches, so the whole representation is sent.
 */
export function ifRangeAllows(ifRange: string | undefined, v: Validators): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return strongMatch(value, v.etag);
  const date = parseHttpDate(value);
  return !Number.isNaN(date) && date === v.lastModifiedMs;
}

const MAX_DIGITS = 15; // < 2^53: offsets stay exact JavaScript numbers.

/** One range-spec against `size`: a range, unsatisfiable (null), or invalid (undefined). */
function rangeSpec(spec: string, size: number): ByteRange | null | undefined {
  const int = /^(\d+)-(\d*)$/.exec(spec);
  if (int) {
    // More digits than a safe integer holds: past the end of any file we store.
    const first = (int[1] as string).length > MAX_DIGITS ? Number.POSITIVE_INFINITY : Number(int[1]);
    const last =
      int[2] === '' || (int[2] as string).length > MAX_DIGITS ? Number.POSITIVE_INFINITY : Number(int[2]);
    if (last < first) return undefined; // invalid range-spec
    if (first >= size) return null;
    return { start: first, end: Math.min(last, size - 1) };
  }
  const suffix = /^-(\d+)$/.exec(spec);
  if (suffix) {
    const length = (suffix[1] as string).length > MAX_DIGITS ? Number.POSITIVE_INFINITY : Number(suffix[1]);
    if (length === 0 || size === 0) return null;
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  return undefined;
}

/** Parses a `Range` header for a representation of `size` bytes (RFC 9110 §14.1.2, §14.6). */
export function parseRange(header: string | undefined, size: number): RangeOutcome {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return { kind: 'full' };
  const specs = (m[1] as string).split(',').map((s) => s.trim());
  if (specs.length > MAX_RANGES || specs.some((s) => s === '')) return { kind: 'full' };
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const r = rangeSpec(spec, size);
    if (r === undefined) return { kind: 'full' }; // one invalid range-spec: ignore the header
    if (r) ranges.push(r);
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  if (ranges.length === 1) return { kind: 'partial', ...(ranges[0] as ByteRange) };
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const touching = sorted.some((r, i) => i > 0 && r.start <= (sorted[i - 1] as ByteRange).end + 1);
  let parts = ranges;
  if (touching) {
    parts = [];
    for (const r of sorted) {
      const last = parts[parts.length - 1];
      if (last && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
      else parts.push({ ...r });
    }
  }
  if (parts.length === 1) return { kind: 'partial', ...(parts[0] as ByteRange) };
  return { kind: 'multipart', ranges: parts };
}
