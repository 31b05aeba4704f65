/**
 * Runs `dpu-ztp serve` (the built CLI) as a child process on ephemeral
 * loopback ports, through the same spawner the benchmarks use.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { type ServeChild, spawnServe } from '../../bench/serve-process.js';

/** Repository root (tests run from source; the CLI from dist/). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built operator CLI. */
export const dpuZtpBin = join(repoRoot, 'dist', 'cli', 'dpu-ztp.js');

/** A running serve process (the benchmarks' {@link ServeChild} with the child as `proc`). */
export interface ServeProcess extends Omit<ServeChild, 'child' | 'readyMs'> {
  proc: ChildProcess;
}

/** Environment for child CLIs: without the parent's DATABASE_URL unless given. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  for (const k of Object.keys(env)) if (k.startsWith('DPU_ZTP_')) delete env[k];
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/**
 * How long to wait for something that takes `ms` on an idle machine: scaled by the
 * load per core, so a busy machine (CI, parallel test files) does not fail a
 * test that is only slow.
 */
export function scaledTimeout(ms: number): number {
  const perCore = loadavg()[0]! / Math.max(1, availableParallelism());
  return Math.round(ms * Math.min(8, Math.max(1, perCore)));
}

/**
 * Gives a new `--data-dir` the run's migrated embedded database (test/global-setup.ts) before
 * serve or a CLI opens it, as `dpu-ztp migrate` would have left it, minus the seconds of initdb
 * and migrating each child would spend. Returns `dataDir`. Only for tests that do not care how
 * the database came to be: first start, migration on start and disk-full checks start from nothing.
 */
export function seedDataDir(dataDir: string): string {
  const pgdata = join(dataDir, 'pgdata');
  if (existsSync(pgdata)) throw new Error(`${pgdata} exists: seed only a new data directory`);
  cpSync(inject('dbTemplate').pgdata, pgdata, { recursive: true });
  return dataDir;
}

/** Starts serve (through the benchmarks' one spawner) and waits until it logs `dpu-ztp ready`. */
export async function startServe(
  args: string[],
  env: NodeJS.ProcessEnv = childEnv(),
  timeoutMs = 30_000,
): Promise<ServeProcess> {
  const {
    child,
    readyMs: _,
    ...rest
  } = await spawnServe(args, env, {
    timeoutMs: scaledTimeout(timeoutMs),
    bin: dpuZtpBin,
    stderr: 'collect',
  });
  return { proc: child, ...rest };
}

/** Runs the operator CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = childEnv(), timeoutMs = 60_000) {
  const r = spawnSync(process.execPath, [dpuZtpBin, ...args], { env, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
