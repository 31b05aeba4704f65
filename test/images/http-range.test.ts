/** RFC 9110 range and precondition rules, as pure functions (the wire tests use curl and undici). */
import { describe, expect, it } from 'vitest';
import { evaluatePreconditions, ifRangeAllows, parseRange } from '../../sztp-server/http-range.js';
import { imageBaseResolver, imageDownloadUris, imageVerification } from '../../sztp-server/index.js';

const size = 2 ** 31 + 1000;
const v = { etag: '"abc"', lastModifiedMs: Date.UTC(2026, 10, 22, 0, 0, 0) };
const lm = new Date(v.lastModifiedMs).toUTCString();

describe('parseRange (RFC 9110 §14.1.2)', () => {
  it.each([
    ['bytes=0-0', { kind: 'partial', start: 0, end: 0 }],
    ['bytes=10-', { kind: 'partial', start: 10, end: size - 1 }],
    ['bytes=-5', { kind: 'partial', start: size - 5, end: size - 1 }],
    ['bytes=-99999999999', { kind: 'partial', start: 0, end: size - 1 }],
    ['bytes=2147483640-2147483660', { kind: 'partial', start: 2147483640, end: 2147483660 }],
    ['bytes=5-999999999999999', { kind: 'partial', start: 5, end: size - 1 }],
    ['BYTES = 1-2', { kind: 'partial', start: 1, end: 2 }],
    [`bytes=${size}-`, { kind: 'unsatisfiable' }],
    ['bytes=99999999999999999999-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=5-3', { kind: 'full' }],
    ['bytes=abc', { kind: 'full' }],
    ['items=0-1', { kind: 'full' }],
    [
      'bytes=5-6,0-1',
      {
        kind: 'multipart',
        ranges: [
          { start: 5, end: 6 },
          { start: 0, end: 1 },
        ],
      },
    ],
    // Overlapping or touching ranges are sorted and coalesced; unsatisfiable ones dropped.
    [
      'bytes=10-20,0-4,15-30',
      {
        kind: 'multipart',
        ranges: [
          { start: 0, end: 4 },
          { start: 10, end: 30 },
        ],
      },
    ],
    ['bytes=0-4,5-9', { kind: 'partial', start: 0, end: 9 }],
    ['bytes=0-0,0-0,0-0', { kind: 'partial', start: 0, end: 0 }],
    [`bytes=${size}-,0-1`, { kind: 'partial', start: 0, end: 1 }],
    [`bytes=${size}-,-0`, { kind: 'unsatisfiable' }],
    [
      'bytes=0-1,-2',
      {
        kind: 'multipart',
        ranges: [
          { start: 0, end: 1 },
          { start: size - 2, end: size - 1 },
        ],
      },
    ],
    ['bytes=0-1,5-3', { kind: 'full' }], // one invalid range-spec: the header is ignored
    ['bytes=0-1,', { kind: 'full' }],
    [`bytes=${Array.from({ length: 17 }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',')}`, { kind: 'full' }],
    ['bytes=', { kind: 'full' }],
  ])('%s', (header, want) => {
    expect(parseRange(header, size)).toEqual(want);
  });
  it('has nothing satisfiable in an empty representation', () => {
    expect(parseRange('bytes=-1', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
  });
});

describe('preconditions (RFC 9110 §13.2.2)', () => {
  it.each([
    [{}, 'proceed'],
    [{ 'if-none-match': '"abc"' }, 'not-modified'],
    [{ 'if-none-match': 'W/"abc"' }, 'not-modified'],
    [{ 'if-none-match': '"x", "abc"' }, 'not-modified'],
    [{ 'if-none-match': '*' }, 'not-modified'],
    [{ 'if-none-match': '"x"' }, 'proceed'],
    [{ 'if-modified-since': lm }, 'not-modified'],
    [{ 'if-modified-since': new Date(v.lastModifiedMs - 1000).toUTCString() }, 'proceed'],
    [{ 'if-modified-since': 'garbage' }, 'proceed'],
    // If-None-Match wins over If-Modified-Since.
    [{ 'if-none-match': '"x"', 'if-modified-since': lm }, 'proceed'],
    [{ 'if-match': '"abc"' }, 'proceed'],
    [{ 'if-match': 'W/"abc"' }, 'failed'],
    [{ 'if-match': '"x"' }, 'failed'],
    [{ 'if-match': '*' }, 'proceed'],
    [{ 'if-unmodified-since': new Date(v.lastModifiedMs - 1000).toUTCString() }, 'failed'],
    [{ 'if-unmodified-since': lm }, 'proceed'],
  ] as const)('%o -> %s', (headers, want) => {
    expect(evaluatePreconditions(headers, v)).toBe(want);
  });

  it('If-Range: strong ETag or exact date only', () => {
    expect(ifRangeAllows(undefined, v)).toBe(true);
    expect(ifRangeAllows('"abc"', v)).toBe(true);
    expect(ifRangeAllows('W/"abc"', v)).toBe(false);
    expect(ifRangeAllows('"other"', v)).toBe(false);
    expect(ifRangeAllows(lm, v)).toBe(true);
    expect(ifRangeAllows(new Date(v.lastModifiedMs + 1000).toUTCString(), v)).toBe(false);
    expect(ifRangeAllows('nonsense', v)).toBe(false);
  });
});

describe('URLs and hashes for conveyed information', () => {
  it('lists HTTPS first, then HTTP, ending in the image name', () => {
    const bases = imageBaseResolver({ ports: () => ({ http: 8081, https: 8443 }) });
    expect(imageDownloadUris({ name: 'u.iso' }, bases({ localAddress: '::ffff:10.0.0.5' }))).toEqual([
      'https://10.0.0.5:8443/images/u.iso',
      'http://10.0.0.5:8081/images/u.iso',
    ]);
    expect(bases({ host: 'ztp.lab:9999', localAddress: '10.0.0.5' }).http).toBe('http://ztp.lab:8081');
    expect(bases({ localAddress: 'fe80::1' }).https).toBe('https://[fe80::1]:8443');
    // A Host header that is not a plain host name is not trusted into a URL.
    expect(bases({ host: 'evil/x?y', localAddress: '10.0.0.5' }).http).toBe('http://10.0.0.5:8081');
    const adv = imageBaseResolver({
      httpAdvertise: 'http://images.lab:80/dpu/',
      httpsAdvertise: 'https://ztp.lab',
      ports: () => ({ http: 8081, https: 8443 }),
    });
    expect(imageDownloadUris({ name: 'u.iso' }, adv({ localAddress: '10.0.0.5' }))).toEqual([
      'https://ztp.lab/images/u.iso',
      'http://images.lab:80/dpu/images/u.iso',
    ]);
  });
  it('gives SHA-256 as colon-separated lowercase hex', () => {
    expect(imageVerification({ sha256: `AB01${'0'.repeat(60)}` })).toEqual([
      {
        'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256',
        'hash-value': `ab:01:${Array(30).fill('00').join(':')}`,
      },
    ]);
  });
});
