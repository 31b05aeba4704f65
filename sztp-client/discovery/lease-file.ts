/**
 * Reads a DHCP lease file of any supported kind and returns the bootstrap
 * server URIs it carries (DHCPv4 option 143, DHCPv6 option 136; RFC 8572 §8),
 * newest lease first.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeBootstrapServerList, type OptionForm } from './bootstrap-server-list.js';
import { looksLikeDhclientLeases, parseDhclientLeases, type RawLeaseOption } from './dhclient-lease.js';
import { looksLikeEnvDump, parseEnvDump } from './env-dump.js';
import { DiscoveryError, type WarningSink } from './errors.js';
import { looksLikeNmcliDump, looksLikeNmInternalLease, parseNmcliDump } from './networkmanager.js';

/** The kinds of file {@link parseLeaseText} understands. */
export type LeaseFormat = 'dhclient' | 'env' | 'nmcli' | 'networkmanager-internal' | 'empty';

/** One lease's URIs. */
export interface LeaseUris {
  /** 4: DHCPv4 option 143; 6: DHCPv6 option 136. */
  readonly family: 4 | 6;
  /** Valid URIs of that lease, in option order. */
  readonly uris: string[];
  /** RFC 8572 framing or the lab plain-text form. */
  readonly form: OptionForm;
  /** Line of the option in the file. */
  readonly line: number;
}

/** What one lease file yields. */
export interface ParsedLeaseFile {
  readonly format: LeaseFormat;
  /** Leases that carried the option, newest first. */
  readonly leases: LeaseUris[];
  /** All URIs, newest lease first, duplicates removed. */
  readonly uris: string[];
}

/** Picks the format of a lease file from its content. */
export function detectLeaseFormat(text: string): LeaseFormat | undefined {
  if (text.trim() === '') return 'empty';
  if (looksLikeDhclientLeases(text)) return 'dhclient';
  if (looksLikeNmcliDump(text)) return 'nmcli';
  if (looksLikeNmInternalLease(text)) return 'networkmanager-internal';
  if (looksLikeEnvDump(text)) return 'env';
  return undefined;
}

/**
 * Parses lease file content. Warnings (invalid URIs, plain-text form, a format
 * that cannot hold the option) go to `warnings`.
 *
 * @throws DiscoveryError `SZTP_CLIENT_ERR_MALFORMED_OPTION` if an option value cannot
 *   be decoded, `SZTP_CLIENT_ERR_UNKNOWN_LEASE_FORMAT` if the format is not recognised.
 */
export function parseLeaseText(text: string, source?: string, warnings: WarningSink = []): ParsedLeaseFile {
  const format = detectLeaseFormat(text);
  let raw: RawLeaseOption[];
  switch (format) {
    case 'empty':
      raw = [];
      break;
    case 'dhclient':
      raw = parseDhclientLeases(text, source);
      break;
    case 'nmcli':
      raw = parseNmcliDump(text, source);
      break;
    case 'env':
      raw = parseEnvDump(text, source);
      break;
    case 'networkmanager-internal':
      raw = [];
      warnings.push({
        code: 'SZTP_CLIENT_WARN_NO_DHCP_OPTIONS',
        message:
          'NetworkManager internal-client lease files record only the address, never option 143/136; use NM with dhcp=dhclient',
        ...(source === undefined ? {} : { source }),
      });
      break;
    default:
      throw new DiscoveryError(
        'SZTP_CLIENT_ERR_UNKNOWN_LEASE_FORMAT',
        'not a dhclient lease file, NetworkManager lease, nmcli dump or DHCP hook environment dump',
        source === undefined ? undefined : { source },
      );
  }
  // Files accumulate leases; the last one written is the newest.
  const leases = raw
    .slice()
    .reverse()
    .map((o) => {
      const where = `${source ?? 'lease'}:${o.line}`;
      const decoded = decodeBootstrapServerList(o.value, warnings, where);
      return { family: o.family, uris: decoded.uris, form: decoded.form, line: o.line };
    });
  return { format: format ?? 'empty', leases, uris: [...new Set(leases.flatMap((l) => l.uris))] };
}

/**
 * Reads and parses one lease file.
 *
 * @throws DiscoveryError `SZTP_CLIENT_ERR_LEASE_UNREADABLE`, or any error of {@link parseLeaseText}
 */
export async function readLeaseFile(path: string, warnings: WarningSink = []): Promise<ParsedLeaseFile> {
  let text: string;
  try {
    // latin1 keeps every byte of a quoted value as one char (dhclient escapes them anyway).
    text = await readFile(path, 'latin1');
  } catch (err) {
    throw new DiscoveryError(
      'SZTP_CLIENT_ERR_LEASE_UNREADABLE',
      `cannot read lease file ${path}: ${(err as Error).message}`,
      { source: path, cause: err },
    );
  }
  return parseLeaseText(text, path, warnings);
}

/**
 * Where lease files are looked for when none are given (`--dhcp-lease-file`):
 * directory and file-name pattern.
 */
export const DEFAULT_LEASE_LOCATIONS: readonly { readonly dir: string; readonly pattern: RegExp }[] = [
  // Debian/Ubuntu ISC dhclient: dhclient.leases, dhclient.<iface>.leases, dhclient6.leases, …
  { dir: '/var/lib/dhcp', pattern: /^dhclient.*\.leases?$/ },
  // RHEL/Fedora ISC dhclient.
  { dir: '/var/lib/dhclient', pattern: /^dhclient.*\.leases?$/ },
  // NetworkManager: dhclient[6]-<uuid>-<iface>.lease (dhclient backend), internal-… (warns).
  { dir: '/var/lib/NetworkManager', pattern: /^(?:dhclient6?|internal6?)-.*\.lease$/ },
  // busybox udhcpc keeps no lease: its hook script dumps the environment here (README).
  { dir: '/run/sztp-client', pattern: /^udhcpc.*\.env$/ },
];

/**
 * Lists existing lease files at {@link DEFAULT_LEASE_LOCATIONS}, most recently
 * modified first. Missing directories are skipped.
 */
export async function findDefaultLeaseFiles(
  locations: readonly { readonly dir: string; readonly pattern: RegExp }[] = DEFAULT_LEASE_LOCATIONS,
): Promise<string[]> {
  const found: { path: string; mtime: number }[] = [];
  for (const { dir, pattern } of locations) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => pattern.test(n))) {
      const path = join(dir, name);
      try {
        const s = await stat(path);
        if (s.isFile()) found.push({ path, mtime: s.mtimeMs });
      } catch {
        // Vanished between readdir and stat: nothing to read.
      }
    }
  }
  return found.sort((a, b) => b.mtime - a.mtime).map((f) => f.path);
}
