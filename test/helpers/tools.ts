/**
 * External tools that interop tests need (openssl, yanglint, dnsmasq, …).
 * Locally a test may skip when a tool is missing; under `CI=true` a missing
 * tool fails the run (house rule), so `.ci/run` must install it.
 */
import { execFileSync } from 'node:child_process';

/** True when running under CI (`CI=true`). */
export const inCI = process.env.CI === 'true' || process.env.CI === '1';

/** Absolute path of `name` on PATH, or undefined. */
export function which(name: string): string | undefined {
  try {
    const out = execFileSync('sh', ['-c', `command -v ${JSON.stringify(name)}`], { encoding: 'utf8' }).trim();
    return out || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns whether `name` is usable. Under CI a missing tool throws, so the
 * suite fails instead of silently skipping. Use as
 * `describe.skipIf(!haveTool('openssl'))(…)`.
 */
export function haveTool(name: string): boolean {
  const path = which(name);
  if (!path && inCI)
    throw new Error(`required tool '${name}' is missing under CI=true: install it in .ci/run`);
  return path !== undefined;
}

/** True when the process runs as root (network-namespace tests need it). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
