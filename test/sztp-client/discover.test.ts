import type { SrvRecord } from 'node:dns';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_ERROR_CODES } from '../../sztp-client/index.js';
import {
  DISCOVERY_ERROR_CODES,
  DISCOVERY_WARNING_CODES,
  type DnsResolver,
  discoverBootstrapServers,
  discoverDns,
  encodeBootstrapServerList,
  findDefaultLeaseFiles,
  parseSztpTxt,
} from '../../sztp-client/discovery/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sztp-discover-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dhHex = (uris: string[]) => [...encodeBootstrapServerList(uris)].map((b) => b.toString(16)).join(':');
function leaseFile(name: string, v4: string[], v6?: string[]): string {
  const path = join(dir, name);
  let text = `lease {\n  interface "eth0";\n  option sztp-redirect-urls ${dhHex(v4)};\n}\n`;
  if (v6) text += `lease6 {\n  interface "eth0";\n  option dhcp6.sztp-redirect-urls ${dhHex(v6)};\n}\n`;
  writeFileSync(path, text);
  return path;
}

/** A resolver answering from tables; anything else is NXDOMAIN, as node:dns reports it. */
function fakeResolver(
  txt: Record<string, string[][]>,
  srv: Record<string, SrvRecord[]>,
  calls: string[] = [],
): DnsResolver {
  const nx = (name: string) => Object.assign(new Error(`queryX ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return {
    resolveTxt: async (name) => {
      calls.push(`TXT ${name}`);
      if (txt[name]) return txt[name];
      throw nx(name);
    },
    resolveSrv: async (name) => {
      calls.push(`SRV ${name}`);
      if (srv[name]) return srv[name];
      throw nx(name);
    },
  };
}

describe('DNS discovery (RFC 8572 §4.2)', () => {
  it('queries device-specific TXT before device-independent SRV, per domain', async () => {
    const calls: string[] = [];
    const resolver = fakeResolver(
      { 'SN123._sztp.lab.example': [['ci=\x30\x82\x01\xff', 'ov=voucher', 'txtvers=1']] },
      {
        '_sztp._tcp.lab.example': [
          { name: 'b.lab.example', port: 443, priority: 10, weight: 5 },
          { name: 'a.lab.example.', port: 8443, priority: 0, weight: 1 },
          { name: 'c.lab.example', port: 9443, priority: 10, weight: 50 },
          { name: '.', port: 0, priority: 20, weight: 0 },
        ],
      },
      calls,
    );
    const r = await discoverDns({ domains: ['lab.example', 'other.example'], resolver, serial: 'SN123' });
    expect(calls).toEqual([
      'TXT SN123._sztp.lab.example',
      'TXT SN123._sztp.other.example',
      'SRV _sztp._tcp.lab.example',
      'SRV _sztp._tcp.other.example',
    ]);
    expect(r.servers.map((s) => s.uri)).toEqual([
      'https://a.lab.example:8443',
      'https://c.lab.example:9443',
      'https://b.lab.example',
    ]);
    expect(r.bootstrapData).toHaveLength(1);
    // Binary values survive: node:dns gives TXT strings one char per byte.
    expect([...r.bootstrapData[0]!.conveyedInformation!]).toEqual([0x30, 0x82, 0x01, 0xff]);
    expect(Buffer.from(r.bootstrapData[0]!.ownershipVoucher!).toString()).toBe('voucher');
    expect(r.bootstrapData[0]!.ownerCertificate).toBeUndefined();
  });

  it('TXT values longer than one string continue in the next; other keys are ignored', () => {
    const d = parseSztpTxt('n', ['OC=part1', 'part2', 'foo=bar', 'notakey']);
    expect(Buffer.from(d!.ownerCertificate!).toString()).toBe('part1part2');
    expect(parseSztpTxt('n', ['foo=bar'])).toBeUndefined();
  });

  it('failures other than "not found" become warnings; a hung resolver is cut off by the timeout', async () => {
    const resolver: DnsResolver = {
      resolveTxt: () => Promise.reject(Object.assign(new Error('SERVFAIL'), { code: 'ESERVFAIL' })),
      resolveSrv: () => new Promise(() => {}),
    };
    const warnings: { code: string }[] = [];
    const r = await discoverDns(
      { domains: ['x.example'], resolver, serial: 'S1', timeoutMs: 50 },
      warnings as never,
    );
    expect(r).toEqual({ bootstrapData: [], servers: [] });
    expect(warnings.map((w) => w.code)).toEqual([
      'SZTP_CLIENT_WARN_DNS_FAILED',
      'SZTP_CLIENT_WARN_DNS_FAILED',
    ]);
  });

  it('a serial that is not a DNS label is refused', async () => {
    await expect(
      discoverDns({ domains: ['x'], resolver: fakeResolver({}, {}), serial: 'a.b' }),
    ).rejects.toMatchObject({
      code: 'SZTP_CLIENT_ERR_INVALID_SERIAL',
    });
  });
});

describe('discoverBootstrapServers', () => {
  it('merges static, DHCP (newest lease first, v4 and v6) and DNS in order, de-duplicated, with sources', async () => {
    const a = leaseFile(
      'a.leases',
      ['https://dhcp1.example', 'https://STATIC.example:443'],
      ['https://[2001:db8::7]'],
    );
    const b = leaseFile('b.leases', ['https://dhcp1.example', 'https://dhcp2.example:8443']);
    const resolver = fakeResolver(
      {},
      { '_sztp._tcp.lab.example': [{ name: 'dhcp2.example', port: 8443, priority: 0, weight: 0 }] },
    );
    const r = await discoverBootstrapServers({
      staticUrls: ['https://static.example', 'https://static.example/custom/root'],
      leaseFiles: [a, b],
      dns: { domains: ['lab.example'], resolver },
      serial: 'SN1',
    });
    expect(r.servers.map((s) => s.url)).toEqual([
      'https://static.example',
      'https://static.example/custom/root',
      // a.leases: the lease6 block is newer (later) than the lease block.
      'https://[2001:db8::7]',
      'https://dhcp1.example',
      'https://dhcp2.example:8443',
    ]);
    expect(r.servers[0]!.sources).toEqual([
      { kind: 'static' },
      { kind: 'dhcpv4', file: a, line: 3, form: 'rfc8572' },
    ]);
    expect(r.servers[2]!.sources).toEqual([{ kind: 'dhcpv6', file: a, line: 7, form: 'rfc8572' }]);
    expect(r.servers[4]!.sources.map((s) => s.kind)).toEqual(['dhcpv4', 'dns-srv']);
    expect(r.warnings).toEqual([]);
    expect(r.dnsBootstrapData).toEqual([]);
  });

  it('a malformed or missing named lease file is a warning, not a failure', async () => {
    const bad = join(dir, 'bad.leases');
    writeFileSync(bad, 'lease {\n  option sztp-redirect-urls 0:30:68;\n}\n');
    const good = leaseFile('good.leases', ['https://good.example']);
    const r = await discoverBootstrapServers({ leaseFiles: [bad, join(dir, 'missing.leases'), good] });
    expect(r.servers.map((s) => s.url)).toEqual(['https://good.example']);
    expect(r.warnings.map((w) => [w.code, w.message.split(':')[0]])).toEqual([
      ['SZTP_CLIENT_WARN_LEASE_SKIPPED', 'SZTP_CLIENT_ERR_MALFORMED_OPTION'],
      ['SZTP_CLIENT_WARN_LEASE_SKIPPED', 'SZTP_CLIENT_ERR_LEASE_UNREADABLE'],
    ]);
  });

  it('a bad static URL is an error (operator configuration)', async () => {
    await expect(
      discoverBootstrapServers({ staticUrls: ['http://x.example'], leaseFiles: [] }),
    ).rejects.toMatchObject({
      code: 'SZTP_CLIENT_ERR_INVALID_STATIC_URL',
    });
  });

  it('default lease locations: matching files, most recently modified first', async () => {
    const d = join(dir, 'var-lib-dhcp');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(d);
    for (const [n, t] of [
      ['dhclient.eth0.leases', 1000],
      ['dhclient6.eth0.leases', 3000],
      ['other.txt', 2000],
    ] as const) {
      writeFileSync(join(d, n), '');
      utimesSync(join(d, n), t, t);
    }
    const files = await findDefaultLeaseFiles([
      { dir: d, pattern: /^dhclient.*\.leases$/ },
      { dir: join(dir, 'nope'), pattern: /.*/ },
    ]);
    expect(files).toEqual([join(d, 'dhclient6.eth0.leases'), join(d, 'dhclient.eth0.leases')]);
  });
});

describe('error catalogue', () => {
  const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
  const section = readme.slice(
    readme.indexOf('<!-- section:sztp-client -->'),
    readme.indexOf('<!-- /section:sztp-client -->'),
  );

  it('every code is documented in the README sztp-client section, and nothing else is', () => {
    const codes = [
      ...Object.keys(DISCOVERY_ERROR_CODES),
      ...Object.keys(DISCOVERY_WARNING_CODES),
      ...Object.keys(AGENT_ERROR_CODES),
    ];
    for (const code of codes) expect(section, code).toContain(`\`${code}\``);
    const documented = [...new Set(section.match(/SZTP_CLIENT_(?:ERR|WARN)_[A-Z0-9_]+/g) ?? [])];
    expect(documented.sort()).toEqual(codes.sort());
  });

  it('codes follow the house pattern and have descriptions', () => {
    for (const [code, text] of Object.entries({ ...DISCOVERY_ERROR_CODES, ...AGENT_ERROR_CODES })) {
      expect(code).toMatch(/^SZTP_CLIENT_ERR_[A-Z_]+$/);
      expect(text.length).toBeGreaterThan(20);
    }
    for (const code of Object.keys(DISCOVERY_WARNING_CODES))
      expect(code).toMatch(/^SZTP_CLIENT_WARN_[A-Z_]+$/);
  });
});
