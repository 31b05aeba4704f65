import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type DiscoveryWarning,
  detectLeaseFormat,
  encodeBootstrapServerList,
  parseLeaseText,
} from '../../sztp-client/discovery/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'latin1');
const VECTOR = ['https://sztp1.example.com:8443', 'https://[2001:db8::1]'];
/** dhclient's colon hex: no leading zeros. */
const dhHex = (uris: string[]) => [...encodeBootstrapServerList(uris)].map((b) => b.toString(16)).join(':');
const lease = (body: string) =>
  `lease {\n  interface "eth0";\n  fixed-address 10.0.0.9;\n${body}\n  expire 0 2026/01/01 00:00:00;\n}\n`;

function parse(text: string) {
  const warnings: DiscoveryWarning[] = [];
  const r = parseLeaseText(text, 'test', warnings);
  return { ...r, codes: warnings.map((w) => w.code) };
}

describe('ISC dhclient lease files (real output)', () => {
  it.each([
    ['dhclient4-string.leases', 4, 'rfc8572'],
    ['dhclient4-text.leases', 4, 'rfc8572'],
    ['dhclient4-unknown-143.leases', 4, 'rfc8572'],
    ['dhclient6-string.leases', 6, 'rfc8572'],
    ['dhclient6-unknown-136.leases', 6, 'rfc8572'],
  ] as const)('%s', (file, family, form) => {
    const r = parse(fixture(file));
    expect(r.format).toBe('dhclient');
    expect(r.uris).toEqual(VECTOR);
    expect(r.codes).toEqual([]);
    for (const l of r.leases) expect(l).toMatchObject({ family, form, uris: VECTOR });
  });

  it('a plain-text URL (printable, so dhclient quotes it) is accepted with a warning', () => {
    const r = parse(fixture('dhclient4-plain-text.leases'));
    expect(r.uris).toEqual([
      'https://10.199.8.1:8443/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data',
    ]);
    expect(r.codes).toEqual(['SZTP_CLIENT_WARN_PLAIN_TEXT_URL']);
  });

  it('framing that overruns its data is a coded error', () => {
    expect(() => parseLeaseText(fixture('dhclient4-truncated.leases'), 'f')).toThrow(
      expect.objectContaining({ code: 'SZTP_CLIENT_ERR_MALFORMED_OPTION', source: 'f:5' }),
    );
  });

  it('several leases: the newest (last) lease first, duplicates removed', () => {
    const text =
      lease(
        `  option sztp-redirect-urls ${dhHex(['https://old.example.com', 'https://both.example.com'])};`,
      ) +
      lease('  option subnet-mask 255.255.255.0;') +
      lease(`  option sztp-redirect-urls ${dhHex(['https://new.example.com', 'https://both.example.com'])};`);
    const r = parse(text);
    expect(r.leases.map((l) => l.uris)).toEqual([
      ['https://new.example.com', 'https://both.example.com'],
      ['https://old.example.com', 'https://both.example.com'],
    ]);
    expect(r.uris).toEqual([
      'https://new.example.com',
      'https://both.example.com',
      'https://old.example.com',
    ]);
  });

  it('joins repeated option lines within one lease (RFC 3396), any declared name containing "sztp"', () => {
    const whole = dhHex(VECTOR).split(':');
    const text = lease(
      `  option v4-sztp-redirect ${whole.slice(0, 9).join(':')};\n  option v4-sztp-redirect ${whole.slice(9).join(':')};`,
    );
    expect(parse(text).uris).toEqual(VECTOR);
  });

  it('octal escapes and backslash escapes in quoted strings', () => {
    // \000\036 = length 30; \" and \\ would be escaped by dhclient if present.
    const q = '"\\000\\036https://sztp1.example.com:8443\\000\\025https://[2001:db8::1]"';
    expect(parse(lease(`  option sztp-redirect-urls ${q};`)).uris).toEqual(VECTOR);
    // A length byte of 0x22 (") is written as \" by dhclient.
    const u = `https://${'a'.repeat(14)}.example.com`; // 34 = 0x22 bytes
    expect(u.length).toBe(0x22);
    expect(parse(lease(`  option sztp-redirect-urls "\\000\\"${u}";`)).uris).toEqual([u]);
  });

  it('ignores options of other names, in nested blocks and in comments', () => {
    const text = `# option sztp-redirect-urls 0:1;\n${lease('  option domain-name "sztp.example.com";')}`;
    expect(parse(text).uris).toEqual([]);
    const v6 = `lease6 {\n  ia-na 1:2:3:4 {\n    iaaddr fd00::1 {\n      option sztp-redirect-urls 0:1;\n    }\n  }\n}\n`;
    expect(parse(v6).uris).toEqual([]);
  });

  it.each([
    ['bad colon hex', 'option sztp-redirect-urls 0:1e:zz;'],
    ['three hex digits', 'option sztp-redirect-urls 0:1e:123;'],
    ['two values', 'option sztp-redirect-urls 0:1e 68;'],
    ['lone backslash', 'option unknown-143 "abc\\'],
  ])('malformed: %s', (_, body) => {
    expect(() => parseLeaseText(lease(`  ${body}`))).toThrow(
      expect.objectContaining({ code: 'SZTP_CLIENT_ERR_MALFORMED_OPTION' }),
    );
  });

  it('an empty (just created) lease file has no URIs', () => {
    expect(parse('')).toMatchObject({ format: 'empty', uris: [] });
  });
});

describe('environment dumps (udhcpc, dhclient hooks)', () => {
  it('busybox udhcpc opt143 (real output)', () => {
    expect(parse(fixture('udhcpc-bound.env'))).toMatchObject({ format: 'env', uris: VECTOR, codes: [] });
  });

  it('dhclient -6 hook environment (real output)', () => {
    const r = parse(fixture('dhclient6-hook.env'));
    expect(r.uris).toEqual(VECTOR);
    expect(r.leases.map((l) => l.family)).toEqual([6, 6]);
  });

  it('several dumps appended: the last is the newest; set/export -p quoting', () => {
    const a = Buffer.from(encodeBootstrapServerList(['https://a.example'])).toString('hex');
    const b = Buffer.from(encodeBootstrapServerList(['https://b.example'])).toString('hex');
    const text = `opt143=${a}\ninterface='eth0'\nexport opt143='${b}'\ndeclare -x unrelated="x"\n`;
    expect(parse(text).uris).toEqual(['https://b.example', 'https://a.example']);
  });

  it('an odd-length or non-hex opt143 is a coded error', () => {
    expect(() => parseLeaseText('interface=eth0\nopt143=001\n')).toThrow(
      expect.objectContaining({ code: 'SZTP_CLIENT_ERR_MALFORMED_OPTION' }),
    );
  });
});

describe('NetworkManager', () => {
  it('an internal-client lease file is recognised, and warns that it cannot hold option 143', () => {
    const r = parse('# This is private data. Do not parse.\nADDRESS=192.168.56.120\n');
    expect(r).toMatchObject({ format: 'networkmanager-internal', uris: [] });
    expect(r.codes).toEqual(['SZTP_CLIENT_WARN_NO_DHCP_OPTIONS']);
  });

  it('a dhclient-backend lease file is a dhclient lease file', () => {
    expect(detectLeaseFormat(fixture('dhclient4-string.leases'))).toBe('dhclient');
  });

  it('nmcli device show output (dhclient backend option names)', () => {
    const text = [
      'GENERAL.DEVICE:                         eth0',
      'DHCP4.OPTION[1]:                        dhcp_lease_time = 3600',
      `DHCP4.OPTION[2]:                        sztp_redirect_urls = ${dhHex(['https://nm.example'])}`,
      `DHCP6.OPTION[1]:dhcp6_unknown_136 = ${dhHex(VECTOR)}`,
    ].join('\n');
    const r = parse(text);
    expect(r.format).toBe('nmcli');
    expect(r.leases.map((l) => [l.family, l.uris])).toEqual([
      [6, VECTOR],
      [4, ['https://nm.example']],
    ]);
  });
});

it('an unrecognised file is SZTP_CLIENT_ERR_UNKNOWN_LEASE_FORMAT', () => {
  expect(() => parseLeaseText('<html>not a lease</html>\n')).toThrow(
    expect.objectContaining({ code: 'SZTP_CLIENT_ERR_UNKNOWN_LEASE_FORMAT' }),
  );
});

it('an env dump with multi-line values from the surrounding environment is still an env dump', () => {
  const hex = Buffer.from(encodeBootstrapServerList(['https://ml.example'])).toString('hex');
  const text = `BASH_FUNC_x%%=() {  echo\n}\nMOTD=line one\nline two\nopt143=${hex}\n`;
  expect(parseLeaseText(text)).toMatchObject({ format: 'env', uris: ['https://ml.example'] });
});
