/**
 * What the device knows about itself: the running OS (`/etc/os-release`, for
 * the os-name/os-version the RFC 8572 §7.1 input carries and the §5.6 boot
 * image comparison) and its SSH host keys (for `bootstrap-complete`, §7.2).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SshHostKey } from './ports.js';

/** The running OS as `/etc/os-release` names it (os-release(5)). */
export interface OsRelease {
  /** `ID` (e.g. `ubuntu`), else `NAME`. */
  name?: string;
  /** `VERSION_ID` (e.g. `24.04`), else `VERSION`. */
  version?: string;
}

/** Parses os-release(5) text. */
export function parseOsRelease(text: string): OsRelease {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = (m[2] as string).trim();
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1).replace(/\\(["'$`\\])/g, '$1');
    vars[m[1] as string] = v;
  }
  const name = vars.ID ?? vars.NAME;
  const version = vars.VERSION_ID ?? vars.VERSION;
  return { ...(name ? { name } : {}), ...(version ? { version } : {}) };
}

/** Reads `/etc/os-release` (then `/usr/lib/os-release`); empty when neither exists. */
export async function readOsRelease(paths = ['/etc/os-release', '/usr/lib/os-release']): Promise<OsRelease> {
  for (const p of paths) {
    try {
      return parseOsRelease(await readFile(p, 'utf8'));
    } catch {
      // next
    }
  }
  return {};
}

/** Parses one OpenSSH `.pub` line: `<algorithm> <base64 blob> [comment]`. */
export function parseSshPublicKey(line: string): SshHostKey | undefined {
  const m = /^\s*([A-Za-z0-9@._-]+)\s+([A-Za-z0-9+/]+={0,2})(\s|$)/.exec(line);
  if (!m) return undefined;
  const algorithm = m[1] as string;
  const blob = Buffer.from(m[2] as string, 'base64');
  // RFC 4253 §6.6: the blob starts with the algorithm name as an SSH string.
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (blob.length < 4 + n || blob.subarray(4, 4 + n).toString('latin1') !== algorithm) return undefined;
  return { algorithm, keyData: m[2] as string };
}

/** Reads `ssh_host_*_key.pub` in `dir` (sorted by name); unreadable or malformed files are skipped. */
export async function readSshHostKeys(dir = '/etc/ssh'): Promise<SshHostKey[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^ssh_host_.*_key\.pub$/.test(n)).sort();
  } catch {
    return [];
  }
  const keys: SshHostKey[] = [];
  for (const n of names) {
    try {
      const k = parseSshPublicKey(await readFile(join(dir, n), 'utf8'));
      if (k) keys.push(k);
    } catch {
      // skip
    }
  }
  return keys;
}
