/**
 * Runs the built `dpu-ztp serve` as a child on ephemeral loopback ports for
 * the benchmarks, and finds its listeners from its JSON log lines. (Tests
 * have the same helper with assertions in test/helpers/serve.ts.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built operator CLI next to the compiled benchmarks. */
export const dpuZtpBin = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'dpu-ztp.js');

/** A running serve child. */
export interface ServeChild {
  child: ChildProcess;
  api: string;
  device: string;
  images: string;
  /** ms from spawn until it logged `dpu-ztp ready`. */
  readyMs: number;
  /** SIGTERM, resolves on exit. */
  stop(): Promise<void>;
}

/** Starts serve with `args` (after the loopback/ephemeral-port defaults) and waits until it is ready. */
export function spawnServe(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<ServeChild> {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      dpuZtpBin,
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
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    const urls: Record<string, string> = {};
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start in ${timeoutMs} ms`));
    }, timeoutMs);
    let buf = '';
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
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
            api: urls['operator API'] as string,
            device: urls['device RESTCONF'] as string,
            images: urls.images as string,
            readyMs: performance.now() - t0,
            async stop() {
              if (child.exitCode === null) child.kill('SIGTERM');
              await exited;
            },
          });
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${code} before it was ready`));
    });
  });
}
