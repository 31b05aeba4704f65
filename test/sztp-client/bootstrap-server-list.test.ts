import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkBootstrapServerUri,
  concatenateOptionInstances,
  type DiscoveryWarning,
  decodeBootstrapServerList,
  encodeBootstrapServerList,
  extractDhcpv4Option,
} from '../../sztp-client/discovery/index.js';

const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const VECTOR = ['https://sztp1.example.com:8443', 'https://[2001:db8::1]'];
// notes/sztp.md §1.5, matching github.com/jeremycohoe/sztp scripts/encode_sztp_url.py.
const VECTOR_HEX =
  '001e68747470733a2f2f737a7470312e6578616d706c652e636f6d3a38343433001568747470733a2f2f5b323030313a6462383a3a315d';

function decode(bytes: Uint8Array) {
  const warnings: DiscoveryWarning[] = [];
  return { ...decodeBootstrapServerList(bytes, warnings), codes: warnings.map((w) => w.code) };
}

describe('RFC 8572 §8.3 bootstrap-server-list', () => {
  it('decodes the test vector', () => {
    expect(decode(hex(VECTOR_HEX))).toEqual({ uris: VECTOR, form: 'rfc8572', codes: [] });
  });

  it('encodes the test vector', () => {
    expect(Buffer.from(encodeBootstrapServerList(VECTOR)).toString('hex')).toBe(VECTOR_HEX);
  });

  it('ignores invalid entries with a warning and keeps the valid ones in order', () => {
    const list = encodeBootstrapServerList([
      'http://plain.example.com',
      'https://a.example.com/path',
      'https://a.example.com',
      'https://user@b.example.com',
      'https://b.example.com:99999',
      'https://[2001:db8::2]:8443',
      'https://10.0.0.1',
    ]);
    const r = decode(list);
    expect(r.uris).toEqual(['https://a.example.com', 'https://[2001:db8::2]:8443', 'https://10.0.0.1']);
    expect(r.codes).toEqual(Array(4).fill('SZTP_CLIENT_WARN_INVALID_URI'));
  });

  it('discards the option when no entry is valid', () => {
    const r = decode(encodeBootstrapServerList(['ftp://x', '']));
    expect(r.uris).toEqual([]);
    expect(r.codes).toEqual([
      'SZTP_CLIENT_WARN_INVALID_URI',
      'SZTP_CLIENT_WARN_INVALID_URI',
      'SZTP_CLIENT_WARN_OPTION_DISCARDED',
    ]);
  });

  it('accepts the plain-text single-URL lab form, with a warning, keeping the path', () => {
    const url = 'https://10.0.0.5:8443/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
    const r = decode(Buffer.from(`${url}\0`));
    expect(r).toEqual({ uris: [url], form: 'plain-text', codes: ['SZTP_CLIENT_WARN_PLAIN_TEXT_URL'] });
    expect(decode(Buffer.from('http://insecure.example.com')).codes).toEqual([
      'SZTP_CLIENT_WARN_INVALID_URI',
      'SZTP_CLIENT_WARN_OPTION_DISCARDED',
    ]);
  });

  it.each([
    ['truncated length', '00'],
    ['length overruns the data', '0030687474707333'],
    ['second entry overruns', `${VECTOR_HEX}00ff41`],
    ['empty value', ''],
    ['binary garbage', 'ff00ff00'],
  ])('throws SZTP_CLIENT_ERR_MALFORMED_OPTION on %s', (_, h) => {
    expect(() => decodeBootstrapServerList(hex(h))).toThrow(
      expect.objectContaining({ name: 'DiscoveryError', code: 'SZTP_CLIENT_ERR_MALFORMED_OPTION' }),
    );
  });

  it('normalises URIs so that equal servers compare equal', () => {
    expect(checkBootstrapServerUri('HTTPS://Example.COM.:443/')).toEqual({
      ok: true,
      uri: 'https://example.com',
    });
    expect(checkBootstrapServerUri('https://[2001:DB8::1]:0')).toMatchObject({ ok: false });
    expect(checkBootstrapServerUri('https://exa_mple.com')).toMatchObject({ ok: false });
    expect(checkBootstrapServerUri('https://a.example.com?x=1')).toMatchObject({ ok: false });
    expect(checkBootstrapServerUri('https://256.1.1.1')).toMatchObject({ ok: false });
  });

  // Hosts and ports that RFC 8572 §8.3 allows, in the normal form the decoder returns.
  const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
  const host = fc.oneof(
    fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => `${l.join('.')}.example`),
    fc.ipV4(),
    fc.ipV6().map((a) => `[${a}]`),
  );
  const uri = fc
    .tuple(host, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }))
    .map(([h, p]) => `https://${h}${p === undefined ? '' : `:${p}`}`);

  it('property: encode → decode returns every valid URI, in order', () => {
    fc.assert(
      fc.property(fc.array(uri, { minLength: 1, maxLength: 6 }), (uris) => {
        const expected = uris.map((u) => {
          const c = checkBootstrapServerUri(u);
          if (!c.ok) throw new Error(`generator made an invalid URI ${u}: ${c.reason}`);
          return c.uri;
        });
        expect(decodeBootstrapServerList(encodeBootstrapServerList(uris)).uris).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('property: arbitrary bytes either decode or throw a coded DiscoveryError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          const r = decodeBootstrapServerList(bytes);
          for (const u of r.uris) expect(u).toMatch(/^https:\/\//);
        } catch (err) {
          expect(err).toMatchObject({ code: 'SZTP_CLIENT_ERR_MALFORMED_OPTION' });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: any split of the encoded list into option instances joins back (RFC 3396)', () => {
    fc.assert(
      fc.property(
        fc.array(uri, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (uris, cuts) => {
          const whole = encodeBootstrapServerList(uris);
          const at = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
          const parts = [0, ...at].map((s, i) => whole.subarray(s, [...at, whole.length][i]));
          expect(concatenateOptionInstances(parts)).toEqual(whole);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('RFC 3396 long options in a raw DHCPv4 options field', () => {
  it('joins split instances of option 143 across other options, pads and the end marker', () => {
    const whole = hex(VECTOR_HEX);
    const a = whole.subarray(0, 20);
    const b = whole.subarray(20);
    const field = Uint8Array.from([
      53,
      1,
      5, // message type
      143,
      a.length,
      ...a,
      0,
      0, // pads
      1,
      4,
      255,
      255,
      255,
      0, // subnet mask
      143,
      b.length,
      ...b,
      255, // end
      143,
      1,
      0x41, // after End: not an option
    ]);
    const joined = extractDhcpv4Option(field, 143);
    expect(joined).toEqual(whole);
    expect(decodeBootstrapServerList(joined!).uris).toEqual(VECTOR);
  });

  it('joins instances across the options, file and sname fields in the order given', () => {
    const whole = encodeBootstrapServerList(['https://overload.example.com']);
    const fields = [whole.subarray(0, 7), whole.subarray(7, 20), whole.subarray(20)].map((p) =>
      Uint8Array.from([143, p.length, ...p, 255]),
    );
    expect(extractDhcpv4Option(fields, 143)).toEqual(whole);
  });

  it('returns undefined when absent, throws when a length runs past the field', () => {
    expect(extractDhcpv4Option(Uint8Array.from([53, 1, 5, 255]), 143)).toBeUndefined();
    expect(() => extractDhcpv4Option(Uint8Array.from([143, 10, 0, 1]), 143)).toThrow(
      expect.objectContaining({ code: 'SZTP_CLIENT_ERR_MALFORMED_OPTION' }),
    );
  });
});
