/**
 * The real DHCP exchange (issue 6): dnsmasq serves option 143 (DHCPv4) and 136
 * (DHCPv6) in one network namespace; ISC dhclient and busybox udhcpc in another
 * write their real lease output; the agent's discovery parses it.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DiscoveryWarning, parseLeaseText } from '../../sztp-client/discovery/index.js';
import { haveTool, inCI, isRoot, which } from '../helpers/tools.js';
import { type Daemon, NetnsPair, waitUntil } from './netns.js';

// Evaluate every tool (under CI a missing one throws) before deciding to skip.
const tools = ['ip', 'dnsmasq', 'dhclient', 'busybox'].map(haveTool).every(Boolean);
if (inCI && !isRoot()) throw new Error('the DHCP exchange test needs root under CI (network namespaces)');

const V4 = '10.199.77';
const V6 = 'fd99:199:77::';
const VECTOR = ['https://sztp1.example.com:8443', 'https://[2001:db8::1]'];
// RFC 8572 §8.3 encoding of VECTOR (notes/sztp.md test vector).
const VECTOR_HEX =
  '001e68747470733a2f2f737a7470312e6578616d706c652e636f6d3a38343433001568747470733a2f2f5b323030313a6462383a3a315d';
const colon = (hex: string) => hex.match(/../g)!.join(':');
const frame = (uri: string) =>
  Buffer.concat([Buffer.from([0, uri.length]), Buffer.from(uri)]).toString('hex');
const CLI = join(process.cwd(), 'dist/cli/sztp-client.js');

describe.skipIf(!tools || !isRoot())(
  'real DHCP exchange: dnsmasq → dhclient / udhcpc → lease parsing',
  () => {
    const net = new NetnsPair();
    let dir = '';
    let dhclient = '';

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'sztp-dhcp-'));
      // dnsmasq drops to user nobody after start-up and must still read its dhcp-optsfile.
      chmodSync(dir, 0o755);
      // A copy of dhclient runs unconfined where AppArmor confines /usr/sbin/dhclient
      // to /etc/dhcp and /var/lib/dhcp (notes/dhcp.md).
      dhclient = join(dir, 'dhclient');
      copyFileSync(which('dhclient')!, dhclient);
      chmodSync(dhclient, 0o755);
      writeFileSync(join(dir, 'hook.sh'), `#!/bin/sh\nenv >> ${dir}/dhclient-hook.env\n`, { mode: 0o755 });
      // The udhcpc hook the README documents: dump the environment on bound/renew.
      writeFileSync(
        join(dir, 'udhcpc.sh'),
        `#!/bin/sh\ncase "$1" in bound|renew) env >> ${dir}/udhcpc.env ;; esac\n`,
        { mode: 0o755 },
      );
      net.create(`${V4}.1/24`, `${V6}1/64`);
    });

    afterAll(async () => {
      await net.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** Starts dnsmasq; with a dhcp-optsfile, waits until it has been read (after start-up). */
    async function dnsmasq(name: string, lines: string[], optsFile?: string): Promise<Daemon> {
      const conf = join(dir, `${name}.conf`);
      writeFileSync(
        conf,
        [
          'port=0', // DHCP only, no DNS
          `interface=${net.serverIf}`,
          'bind-interfaces',
          'no-ping', // else ~3 s address probe per first lease
          'no-resolv',
          'leasefile-ro',
          'log-dhcp',
          'log-facility=-',
          `dhcp-range=${V4}.10,${V4}.50,255.255.255.0,1h`,
          `dhcp-range=${V6}10,${V6}50,64,1h`,
          ...lines,
          ...(optsFile ? [`dhcp-optsfile=${optsFile}`] : []),
          '',
        ].join('\n'),
      );
      const d = net.spawn(net.server, 'dnsmasq', ['-k', `--conf-file=${conf}`]);
      const ready = () =>
        /DHCP, IP range/.test(d.output) && (!optsFile || d.output.includes(`read ${optsFile}`));
      const failed = () => d.exitCode !== undefined || d.output.includes('cannot read');
      await waitUntil(() => ready() || failed(), 'dnsmasq start', 5000);
      if (failed()) throw new Error(`dnsmasq failed: ${d.output}`);
      return d;
    }

    /** Runs dhclient until the lease file holds `leases` complete leases, then kills it. */
    async function runDhclient(family: 4 | 6, conf: string, leaseFile: string, leases = 1): Promise<string> {
      const cf = join(dir, `dhclient-${Math.random().toString(36).slice(2)}.conf`);
      writeFileSync(cf, conf);
      if (!existsSync(leaseFile)) writeFileSync(leaseFile, ''); // dhclient wants it to exist
      const d = net.spawn(net.client, dhclient, [
        `-${family}`,
        '-1',
        '-d',
        '-cf',
        cf,
        '-lf',
        leaseFile,
        '-pf',
        join(dir, `dhclient${family}.pid`),
        '-sf',
        join(dir, 'hook.sh'),
        net.clientIf,
      ]);
      try {
        // A complete block ends with "}" in column 0; dhclient -6 waits up to 1 s before soliciting.
        await waitUntil(
          () =>
            (readFileSync(leaseFile, 'utf8').match(/^}/gm) ?? []).length >= leases ||
            d.exitCode !== undefined,
          `dhclient -${family} lease`,
          15_000,
        );
        if (d.exitCode !== undefined) throw new Error(`dhclient exited: ${d.output}`);
      } finally {
        await d.stop();
      }
      return readFileSync(leaseFile, 'utf8');
    }

    function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
      return new Promise((resolve) => {
        execFile('node', [CLI, ...args], { timeout: 15_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    }

    const DECLARED_V4 =
      'option sztp-redirect-urls code 143 = string;\nrequest subnet-mask, sztp-redirect-urls;\n';

    it('dhclient (option declared) writes colon hex; two leases read newest first; udhcpc writes opt143', async () => {
      const opts = join(dir, 'opts');
      writeFileSync(opts, `143,${colon(VECTOR_HEX)}\n`);
      const d = await dnsmasq('v4', [], opts);
      try {
        const leaseFile = join(dir, 'dhclient.leases');
        const first = await runDhclient(4, DECLARED_V4, leaseFile);
        expect(first).toContain('option sztp-redirect-urls 0:1e:68:74:74:70:73:3a');

        // dnsmasq re-reads dhcp-optsfile on SIGHUP: the renewed lease carries another list.
        const second = `https://${V4}.1:8443`;
        writeFileSync(opts, `143,${colon(frame(second))}\n`);
        process.kill(d.proc.pid!, 'SIGHUP');
        await waitUntil(() => (d.output.match(/read .*opts/g) ?? []).length >= 2, 'dnsmasq reload', 5000);
        const text = await runDhclient(4, DECLARED_V4, leaseFile, 2);

        const parsed = parseLeaseText(text, leaseFile);
        expect(parsed.format).toBe('dhclient');
        expect(parsed.leases.map((l) => l.uris)).toEqual([[second], VECTOR]);
        expect(parsed.uris).toEqual([second, ...VECTOR]);
        expect(parsed.leases.every((l) => l.family === 4 && l.form === 'rfc8572')).toBe(true);

        // The dhclient hook environment (new_sztp_redirect_urls=0:18:…), last dump newest.
        const hookEnv = readFileSync(join(dir, 'dhclient-hook.env'), 'utf8');
        expect(hookEnv).toContain(
          `\nnew_sztp_redirect_urls=0:${second.length.toString(16)}:68:74:74:70:73:3a`,
        );
        expect(parseLeaseText(hookEnv).uris).toEqual([second, ...VECTOR]);

        // The CLI on the same real file.
        const out = await cli('parse-lease', leaseFile);
        expect(out.code).toBe(0);
        expect(JSON.parse(out.stdout)).toEqual([second, ...VECTOR]);

        // busybox udhcpc -O 143: plain hex in the script environment.
        const u = net.spawn(net.client, 'busybox', [
          'udhcpc',
          '-f',
          '-q', // exit once bound
          '-n', // exit if no lease
          '-t',
          '5',
          '-T',
          '1',
          '-i',
          net.clientIf,
          '-O',
          '143',
          '-s',
          join(dir, 'udhcpc.sh'),
        ]);
        await u.waitExit(15_000);
        const env = readFileSync(join(dir, 'udhcpc.env'), 'utf8');
        expect(env).toContain(`opt143=${frame(second)}`);
        const fromUdhcpc = parseLeaseText(env, 'udhcpc.env');
        expect(fromUdhcpc.format).toBe('env');
        expect(fromUdhcpc.uris).toEqual([second]);
      } finally {
        await d.stop();
      }
    });

    it('dhclient -6 (option 136 declared) writes it in a lease6 block', async () => {
      const d = await dnsmasq('v6', [`dhcp-option=option6:136,${colon(VECTOR_HEX)}`]);
      try {
        const leaseFile = join(dir, 'dhclient6.leases');
        const text = await runDhclient(
          6,
          'option dhcp6.sztp-redirect-urls code 136 = string;\nalso request dhcp6.sztp-redirect-urls;\n',
          leaseFile,
        );
        expect(text).toMatch(/lease6 \{[\s\S]*option dhcp6\.sztp-redirect-urls 0:1e:68:74/);
        const parsed = parseLeaseText(text, leaseFile);
        expect(parsed.leases).toEqual([
          { family: 6, uris: VECTOR, form: 'rfc8572', line: expect.any(Number) },
        ]);
      } finally {
        await d.stop();
      }
    });

    it('undeclared options: unknown-143, dhcp6.unknown-136; `text` declaration: quoted octal escapes', async () => {
      // dnsmasq sends 143 only when asked; a client that has not declared it cannot ask, so force it.
      const d = await dnsmasq('force', [
        `dhcp-option-force=143,${colon(VECTOR_HEX)}`,
        `dhcp-option-force=option6:136,${colon(VECTOR_HEX)}`,
      ]);
      try {
        const v4 = await runDhclient(4, 'request subnet-mask;\n', join(dir, 'unknown.leases'));
        expect(v4).toContain('option unknown-143 0:1e:68:74');
        expect(parseLeaseText(v4).uris).toEqual(VECTOR);

        const text = await runDhclient(
          4,
          'option sztp-redirect-urls code 143 = text;\nrequest subnet-mask, sztp-redirect-urls;\n',
          join(dir, 'text.leases'),
        );
        expect(text).toContain(
          'option sztp-redirect-urls "\\000\\036https://sztp1.example.com:8443\\000\\025https://',
        );
        expect(parseLeaseText(text).uris).toEqual(VECTOR);

        const v6 = await runDhclient(6, 'request;\n', join(dir, 'unknown6.leases'));
        expect(v6).toContain('option dhcp6.unknown-136 0:1e:68:74');
        expect(parseLeaseText(v6).leases.map((l) => [l.family, l.uris])).toEqual([[6, VECTOR]]);
      } finally {
        await d.stop();
      }
    });

    it('a plain-text URL is accepted with a warning; a truncated list is a coded error, also from the CLI', async () => {
      const opts = join(dir, 'opts-odd');
      const plain = `https://${V4}.1:8443/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data`;
      writeFileSync(opts, `143,"${plain}"\n`);
      const d = await dnsmasq('odd', [], opts);
      try {
        const plainFile = join(dir, 'plain.leases');
        const text = await runDhclient(4, DECLARED_V4, plainFile);
        // dhclient prints a printable `string` option as a quoted string.
        expect(text).toContain(`option sztp-redirect-urls "${plain}";`);
        const warnings: DiscoveryWarning[] = [];
        expect(parseLeaseText(text, plainFile, warnings).uris).toEqual([plain]);
        expect(warnings.map((w) => w.code)).toEqual(['SZTP_CLIENT_WARN_PLAIN_TEXT_URL']);

        // uint16 length 0x0030 but only 5 bytes follow.
        writeFileSync(opts, '143,00:30:68:74:74:70:73\n');
        process.kill(d.proc.pid!, 'SIGHUP');
        await waitUntil(() => (d.output.match(/read .*opts-odd/g) ?? []).length >= 2, 'dnsmasq reload', 5000);
        const badFile = join(dir, 'bad.leases');
        const bad = await runDhclient(4, DECLARED_V4, badFile);
        expect(bad).toContain('option sztp-redirect-urls 0:30:68:74:74:70:73;');
        expect(() => parseLeaseText(bad, badFile)).toThrow(
          expect.objectContaining({ code: 'SZTP_CLIENT_ERR_MALFORMED_OPTION' }),
        );
        const out = await cli('parse-lease', badFile);
        expect(out.code).toBe(1);
        expect(out.stdout).toBe('');
        expect(out.stderr.trim().split('\n')).toHaveLength(1);
        expect(out.stderr).toMatch(/^error: SZTP_CLIENT_ERR_MALFORMED_OPTION: /);
      } finally {
        await d.stop();
      }
    });
  },
);
