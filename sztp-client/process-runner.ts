/**
 * Runs conveyed scripts and operator hooks: each in its own process group
 * with a time limit (SIGTERM, then SIGKILL after a grace period, so a script's
 * children go too), with the tail of its combined output kept for the
 * progress message. Nothing is run through a shell unless the operator's hook
 * command asks for one.
 */
import { spawn } from 'node:child_process';

/**
 * Exit status by which a pre-/post-configuration script signals a *warning*
 * (RFC 8572 `typedef script`: a soft error that "will not affect
 * manageability"). 0 is success; any other status is a hard error. For the
 * install hook, the same status means "installed, the device will reboot".
 */
export const SCRIPT_WARNING_EXIT = 100;

/** How a process ended. */
export interface ProcessResult {
  /** Exit status, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last {@link ProcessOptions.maxOutput} bytes of stdout and stderr, interleaved. */
  output: string;
  durationMs: number;
}

/** Settings of {@link runProcess}. */
export interface ProcessOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Time limit in ms (the whole process group is killed after it). */
  timeoutMs: number;
  /** Grace period between SIGTERM and SIGKILL, ms (default 2000). */
  killGraceMs?: number;
  /** Bytes of output kept (default 8 KiB). */
  maxOutput?: number;
  /** Called with every chunk of output (for live logs). */
  onOutput?: (chunk: Buffer) => void;
  /** Ends the process group at once (the agent's SIGTERM): SIGTERM, then SIGKILL after 1 s. */
  signal?: AbortSignal;
}

/** Runs `file args…` to completion; never throws for a failing process (only for one that cannot start). */
export function runProcess(file: string, args: readonly string[], o: ProcessOptions): Promise<ProcessResult> {
  const started = Date.now();
  const max = o.maxOutput ?? 8192;
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      env: o.env ?? process.env,
      ...(o.cwd ? { cwd: o.cwd } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: a timeout kills the children too
    });
    let tail = Buffer.alloc(0);
    const keep = (c: Buffer) => {
      o.onOutput?.(c);
      tail = Buffer.concat([tail, c]);
      if (tail.length > max) tail = tail.subarray(tail.length - max);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), o.killGraceMs ?? 2000);
    }, o.timeoutMs);
    const abort = () => {
      killGroup('SIGTERM');
      clearTimeout(killTimer);
      killTimer = setTimeout(() => killGroup('SIGKILL'), 1000);
    };
    o.signal?.addEventListener('abort', abort, { once: true });
    if (o.signal?.aborted) abort();
    child.once('error', (err) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      o.signal?.removeEventListener('abort', abort);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      o.signal?.removeEventListener('abort', abort);
      // Leftover children of a script that exited on its own are not ours to keep.
      if (timedOut || o.signal?.aborted) killGroup('SIGKILL');
      resolve({
        code,
        signal,
        timedOut,
        output: tail.toString('utf8'),
        durationMs: Date.now() - started,
      });
    });
  });
}

/** Runs an operator hook command (`--install-hook`, `--config-hook`) with `args` appended, via /bin/sh. */
export function runHook(command: string, args: readonly string[], o: ProcessOptions): Promise<ProcessResult> {
  return runProcess('/bin/sh', ['-c', `${command} "$@"`, 'sztp-hook', ...args], o);
}

/** One-line summary of a result for logs and progress messages. */
export function describeResult(r: ProcessResult, timeoutMs: number): string {
  const last = r.output.trim().split('\n').slice(-3).join(' | ').slice(0, 400);
  const how = r.timedOut
    ? `timed out after ${Math.round(timeoutMs / 1000)} s`
    : r.code !== null
      ? `exit ${r.code}`
      : `killed by ${r.signal}`;
  return last ? `${how}: ${last}` : how;
}
