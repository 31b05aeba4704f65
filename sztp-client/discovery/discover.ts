/**
 * Merges every discovery source into one ordered, de-duplicated list of
 * bootstrap servers, remembering where each URL came from.
 *
 * Order. RFC 8572 §5.2 has the device try each source of bootstrapping data it
 * supports, leaving the order to the implementation; we use:
 *   1. static URLs — the preconfigured list of RFC 8572 §5.1 (Figure 1), the only
 *      source that can come with trust anchors;
 *   2. DHCP (RFC 8572 §4.3, §8): each lease file in the order given, within a file
 *      the newest lease first, within an option the order it lists (§8.3);
 *   3. DNS (RFC 8572 §4.2): `_sztp._tcp` SRV targets. The device-specific TXT
 *      record carries bootstrapping data, not a URL, so it is returned apart
 *      (`dnsBootstrapData`), device-specific before device-independent.
 * A URL found by several sources keeps its first position and lists every source.
 */
import { discoverDns, type DnsBootstrapData, type DnsDiscoveryOptions } from './dns.js';
import { type DiscoveryWarning, DiscoveryError, type WarningSink } from './errors.js';
import { findDefaultLeaseFiles, readLeaseFile } from './lease-file.js';
import type { OptionForm } from './bootstrap-server-list.js';
import { parseStaticUrls } from './static-urls.js';

/** Where a bootstrap server URL was found. */
export type DiscoverySource =
  | { readonly kind: 'static' }
  | {
      readonly kind: 'dhcpv4' | 'dhcpv6';
      readonly file: string;
      readonly line: number;
      readonly form: OptionForm;
    }
  | { readonly kind: 'dns-srv'; readonly name: string; readonly priority: number; readonly weight: number };

/** One bootstrap server to try, with every source that named it. */
export interface DiscoveredServer {
  /** Normalised URL (`https://host[:port]`, or with a path for static and plain-text forms). */
  readonly url: string;
  /** Sources in the order they were consulted; the first decided the position. */
  readonly sources: DiscoverySource[];
}

/** Input of {@link discoverBootstrapServers}. Every source is optional. */
export interface DiscoveryOptions {
  /** `--bootstrap-url` values. */
  readonly staticUrls?: readonly string[];
  /**
   * Lease files to read (`--dhcp-lease-file`). Omitted: the usual dhclient,
   * NetworkManager and udhcpc-hook locations ({@link findDefaultLeaseFiles}).
   * An empty array turns DHCP discovery off.
   */
  readonly leaseFiles?: readonly string[];
  /** DNS discovery settings; omitted: no DNS queries. */
  readonly dns?: DnsDiscoveryOptions;
  /** The device's serial number, for the `<serial>._sztp` TXT query. */
  readonly serial?: string;
}

/** Result of {@link discoverBootstrapServers}. */
export interface DiscoveryResult {
  /** Servers in the order to try them. */
  readonly servers: DiscoveredServer[];
  /** Bootstrapping data from `<serial>._sztp` TXT records (untrusted, verify per §5.3). */
  readonly dnsBootstrapData: DnsBootstrapData[];
  /** Everything that was skipped or tolerated, for logs and `status`. */
  readonly warnings: DiscoveryWarning[];
}

/**
 * Runs all configured discovery sources. A lease file that cannot be read or
 * parsed, or a failing DNS query, becomes a warning so that the other sources
 * still count; only a bad static URL or serial number throws.
 *
 * @throws DiscoveryError `SZTP_CLIENT_ERR_INVALID_STATIC_URL`, `SZTP_CLIENT_ERR_INVALID_SERIAL`
 */
export async function discoverBootstrapServers(options: DiscoveryOptions): Promise<DiscoveryResult> {
  const warnings: WarningSink = [];
  const byUrl = new Map<string, DiscoveredServer>();
  const add = (url: string, source: DiscoverySource) => {
    const existing = byUrl.get(url);
    if (existing) existing.sources.push(source);
    else byUrl.set(url, { url, sources: [source] });
  };

  for (const url of parseStaticUrls(options.staticUrls ?? [])) add(url, { kind: 'static' });

  const explicit = options.leaseFiles !== undefined;
  const files = options.leaseFiles ?? (await findDefaultLeaseFiles());
  for (const file of files) {
    try {
      const parsed = await readLeaseFile(file, warnings);
      for (const lease of parsed.leases)
        for (const url of lease.uris)
          add(url, {
            kind: lease.family === 4 ? 'dhcpv4' : 'dhcpv6',
            file,
            line: lease.line,
            form: lease.form,
          });
    } catch (err) {
      if (!(err instanceof DiscoveryError)) throw err;
      // A default location that vanished is not worth a warning; a named file is.
      if (err.code === 'SZTP_CLIENT_ERR_LEASE_UNREADABLE' && !explicit) continue;
      warnings.push({
        code: 'SZTP_CLIENT_WARN_LEASE_SKIPPED',
        message: `${err.code}: ${err.message}`,
        source: err.source ?? file,
      });
    }
  }

  let dnsBootstrapData: DnsBootstrapData[] = [];
  if (options.dns) {
    const dns = await discoverDns(
      options.serial === undefined ? options.dns : { ...options.dns, serial: options.serial },
      warnings,
    );
    dnsBootstrapData = dns.bootstrapData;
    for (const s of dns.servers)
      add(s.uri, { kind: 'dns-srv', name: s.name, priority: s.priority, weight: s.weight });
  }

  return { servers: [...byUrl.values()], dnsBootstrapData, warnings };
}
