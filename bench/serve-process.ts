/**
 * Runs the built `dpu-ztp serve` as a child on ephemeral loopback ports and
 * finds its listeners from its JSON log lines: the one way benchmarks and
 * tests (test/helpers/serve.ts wraps it) start the service.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built operator CLI next to the compiled benchmarks. */
export const dpuZtpBin = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'dpu-ztp.js');

/** A running serve child. */
export interface ServeChild {
  child: ChildProcess;
  /** Listener name -> base URL, e.g. `operator API` -> http://127.0.0.1:41234 */
  urls: Record<string, string>;
  api: string;
  device: string;
  images: string;
  /** Every stdout line and stderr chunk so far. */
  logs: string[];
  /** ms from spawn until it logged `dpu-ztp ready`. */
  readyMs: number;
  /** Sends `signal` (SIGTERM) unless it already exited; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Options of {@link spawnServe}. */
export interface SpawnServeOptions {
  /** Give up (and SIGKILL it) when not ready after this long (default 60 s). */
  timeoutMs?: number;
  /** The CLI to run (default: the built one beside this file). */
  bin?: string;
  /** Pass stderr through to this process (default) or only collect it in `logs`. */
  stderr?: 'inherit' | 'collect';
}

/** Starts serve with `args` (after the loopback/ephemeral-port defaults) and waits until it is ready. */
export function spawnServe(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: SpawnServeOptions | number = {},
): Promise<ServeChild> {
  const o = typeof options === 'number' ? { timeoutMs: options } : options;
  const timeoutMs = o.timeoutMs ?? 60_000;
  const t0 = performance.now();
  const logs: string[] = [];
  // BENCH_SERVE_NODE_ARGS: extra node flags for the serve process only (e.g. `--cpu-prof`).
  const nodeArgs = (process.env.BENCH_SERVE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      o.bin ?? dpuZtpBin,
      'serve',
      '--host',
      '127.0.0.1',
      '--api-port',
      '0',
      '--device-port',
      '0',
      '--images-port',
      '0',
      '--log-format',
      'json',
      ...args,
    ],
    { env, stdio: ['ignore', 'pipe', o.stderr === 'collect' ? 'pipe' : 'inherit'] },
  );
  child.stderr?.on('data', (c: Buffer) => logs.push(c.toString('utf8')));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const urls: Record<string, string> = {};
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start in ${timeoutMs} ms:\n${logs.join('\n')}`));
    }, timeoutMs);
    let buf = '';
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        logs.push(line);
        let rec: { msg?: string; name?: string; url?: string };
        try {
          rec = JSON.parse(line);
        } catch {
          continue; // not a JSON line
        }
        if (rec.url && rec.name && rec.msg?.endsWith('listening')) urls[rec.name] = rec.url;
        if (rec.msg === 'dpu-ztp ready') {
          clearTimeout(timer);
          resolve({
            child,
            urls,
            api: urls['operator API'] as string,
            device: urls['device RESTCONF'] as string,
            images: urls.images as string,
            logs,
            readyMs: performance.now() - t0,
            async stop(signal: NodeJS.Signals = 'SIGTERM') {
              if (child.exitCode === null && child.signalCode === null) child.kill(signal);
              return exited;
            },
          });
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${code} before it was ready:\n${logs.join('\n')}`));
    });
  });
}
