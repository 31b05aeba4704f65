/**
 * DNS discovery (RFC 8572 §4.2), unicast only:
 *
 * 1. device-specific: TXT `<serial>._sztp.<domain>` carrying bootstrapping data
 *    itself under the keys `ci` (conveyed information), `oc` (owner certificate)
 *    and `ov` (ownership voucher) — binary values; other keys are ignored;
 * 2. device-independent: SRV `_sztp._tcp.<domain>`, a list of bootstrap servers.
 *
 * RFC 8572 §4.2 asks for multicast DNS (`.local`) before unicast for each; mDNS is
 * out of scope here (node: has no mDNS client and the agent takes no
 * dependencies), so only the unicast queries are made. Like DHCP, DNS is an
 * untrusted source: what it yields must still be verified (RFC 8572 §5.3).
 */
import { Resolver } from 'node:dns/promises';
import type { SrvRecord } from 'node:dns';
import { DiscoveryError, type WarningSink } from './errors.js';
import { checkBootstrapServerUri } from './server-uri.js';

/** The two queries discovery makes; node:dns/promises `Resolver` fits, tests inject a fake. */
export interface DnsResolver {
  resolveTxt(name: string): Promise<string[][]>;
  resolveSrv(name: string): Promise<SrvRecord[]>;
}

/** Settings for DNS discovery. */
export interface DnsDiscoveryOptions {
  /** Domains to search, e.g. the DHCP domain-name / domain-search list. */
  readonly domains: readonly string[];
  /** Resolver to use; default: a node:dns `Resolver` with the system's servers. */
  readonly resolver?: DnsResolver;
  /** Time limit per query in ms (default 5000). */
  readonly timeoutMs?: number;
}

/** Bootstrapping data found in a `<serial>._sztp` TXT record (RFC 8572 §4.2). */
export interface DnsBootstrapData {
  /** The name queried. */
  readonly name: string;
  /** `ci`: conveyed information (CMS). */
  readonly conveyedInformation?: Uint8Array;
  /** `oc`: owner certificate (CMS). */
  readonly ownerCertificate?: Uint8Array;
  /** `ov`: ownership voucher (CMS). */
  readonly ownershipVoucher?: Uint8Array;
}

/** A bootstrap server from an `_sztp._tcp` SRV record. */
export interface DnsServer {
  readonly uri: string;
  /** The SRV owner name it came from. */
  readonly name: string;
  readonly priority: number;
  readonly weight: number;
}

/** What DNS discovery found, device-specific data first (RFC 8572 §4.2). */
export interface DnsDiscoveryResult {
  readonly bootstrapData: DnsBootstrapData[];
  readonly servers: DnsServer[];
}

const ABSENT = new Set(['ENOTFOUND', 'ENODATA', 'NOTFOUND', 'NODATA']);
const KEYS = { ci: 'conveyedInformation', oc: 'ownerCertificate', ov: 'ownershipVoucher' } as const;

/**
 * Checks that a serial number can be the first label of `<serial>._sztp.<domain>`.
 *
 * @throws DiscoveryError `SZTP_CLIENT_ERR_INVALID_SERIAL`
 */
export function sztpTxtName(serial: string, domain: string): string {
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(serial))
    throw new DiscoveryError(
      'SZTP_CLIENT_ERR_INVALID_SERIAL',
      `serial number ${JSON.stringify(serial)} is not a DNS label (1–63 of A–Z a–z 0–9 _ -)`,
    );
  return `${serial}._sztp.${domain.replace(/\.$/, '')}`;
}

/**
 * Reads one TXT record's strings. node:dns hands each character-string over as
 * a latin1 JS string (one char per byte), so binary values survive. RFC 6763
 * §6.3 makes each string one `key=value`; we also let a string that does not
 * start with a known key continue the previous value, so values longer than
 * 255 bytes can span strings. Keys are case-insensitive (RFC 6763 §6.4).
 */
export function parseSztpTxt(name: string, strings: readonly string[]): DnsBootstrapData | undefined {
  const parts: Partial<Record<keyof typeof KEYS, string>> = {};
  let current: keyof typeof KEYS | undefined;
  for (const s of strings) {
    const m = /^(ci|oc|ov)=/i.exec(s);
    if (m) {
      current = m[1]!.toLowerCase() as keyof typeof KEYS;
      if (parts[current] === undefined) parts[current] = s.slice(3);
      else current = undefined; // RFC 6763 §6.4: only the first occurrence of a key counts.
    } else if (current && !/^[^=]{1,9}=/.test(s)) parts[current] += s;
    else current = undefined;
  }
  const out: Record<string, unknown> = { name };
  for (const [k, field] of Object.entries(KEYS))
    if (parts[k as keyof typeof KEYS] !== undefined)
      out[field] = Uint8Array.from(Buffer.from(parts[k as keyof typeof KEYS]!, 'latin1'));
  return Object.keys(out).length > 1 ? (out as unknown as DnsBootstrapData) : undefined;
}

async function query<T>(
  what: () => Promise<T>,
  name: string,
  timeoutMs: number,
  warnings: WarningSink,
): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      what(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(Object.assign(new Error(`timed out after ${timeoutMs} ms`), { code: 'ETIMEOUT' })),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (!ABSENT.has(code))
      warnings.push({
        code: 'SZTP_CLIENT_WARN_DNS_FAILED',
        message: `DNS query for ${name} failed: ${(err as Error).message}`,
        source: name,
      });
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs DNS discovery for each domain: all device-specific TXT queries first
 * (only when `serial` is given), then the SRV queries. SRV targets are ordered
 * by priority, then by descending weight (RFC 2782), deterministically rather
 * than by weighted random choice; target "." means "no service" and is skipped.
 */
export async function discoverDns(
  options: DnsDiscoveryOptions & { readonly serial?: string },
  warnings: WarningSink = [],
): Promise<DnsDiscoveryResult> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const resolver: DnsResolver = options.resolver ?? new Resolver({ timeout: timeoutMs, tries: 2 });
  const bootstrapData: DnsBootstrapData[] = [];
  const servers: DnsServer[] = [];
  if (options.serial !== undefined) {
    for (const domain of options.domains) {
      const name = sztpTxtName(options.serial, domain);
      const records = await query(() => resolver.resolveTxt(name), name, timeoutMs, warnings);
      for (const r of records ?? []) {
        const data = parseSztpTxt(name, r);
        if (data) bootstrapData.push(data);
        else
          warnings.push({
            code: 'SZTP_CLIENT_WARN_DNS_TXT_IGNORED',
            message: `TXT record at ${name} has no ci, oc or ov key`,
            source: name,
          });
      }
    }
  }
  for (const domain of options.domains) {
    const name = `_sztp._tcp.${domain.replace(/\.$/, '')}`;
    const records = await query(() => resolver.resolveSrv(name), name, timeoutMs, warnings);
    const sorted = (records ?? []).slice().sort((a, b) => a.priority - b.priority || b.weight - a.weight);
    for (const r of sorted) {
      const target = r.name.replace(/\.$/, '');
      if (target === '') continue; // RFC 2782: "." = service decidedly not available.
      const check = checkBootstrapServerUri(`https://${target}:${r.port}`);
      if (check.ok) servers.push({ uri: check.uri, name, priority: r.priority, weight: r.weight });
      else
        warnings.push({
          code: 'SZTP_CLIENT_WARN_INVALID_URI',
          message: `ignoring SRV target ${r.name}:${r.port} at ${name}: ${check.reason}`,
          source: name,
        });
    }
  }
  return { bootstrapData, servers };
}
