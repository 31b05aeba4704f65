/**
 * Runs `dpu-ztp serve` (the built CLI) as a child process on ephemeral
 * loopback ports, and finds its listeners from its JSON log lines.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from source; the CLI from dist/). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built operator CLI. */
export const dpuZtpBin = join(repoRoot, 'dist', 'cli', 'dpu-ztp.js');

/** A running serve process. */
export interface ServeProcess {
  proc: ChildProcess;
  /** Listener name -> base URL, e.g. `operator API` -> http://127.0.0.1:41234 */
  urls: Record<string, string>;
  api: string;
  device: string;
  images: string;
  /** Every log line so far. */
  logs: string[];
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Environment for child CLIs: without the parent's DATABASE_URL unless given. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  for (const k of Object.keys(env)) if (k.startsWith('DPU_ZTP_')) delete env[k];
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Starts serve and waits until it logs `dpu-ztp ready` (or exits / times out). */
export function startServe(
  args: string[],
  env: NodeJS.ProcessEnv = childEnv(),
  timeoutMs = 30_000,
): Promise<ServeProcess> {
  const proc = spawn(
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
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: string[] = [];
  const urls: Record<string, string> = {};
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`serve did not become ready in ${timeoutMs} ms:\n${logs.join('\n')}`));
    }, timeoutMs);
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        logs.push(line);
        let rec: { msg?: string; name?: string; url?: string } | undefined;
        try {
          rec = JSON.parse(line);
        } catch {
          continue;
        }
        if (rec?.url && rec.name && rec.msg?.endsWith('listening')) urls[rec.name] = rec.url;
        if (rec?.msg === 'dpu-ztp ready') {
          clearTimeout(timer);
          resolve({
            proc,
            urls,
            api: urls['operator API'] as string,
            device: urls['device RESTCONF'] as string,
            images: urls.images as string,
            logs,
            async stop(signal: NodeJS.Signals = 'SIGTERM') {
              if (proc.exitCode !== null) return proc.exitCode;
              proc.kill(signal);
              return exited;
            },
          });
        }
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (c: Buffer) => logs.push(c.toString('utf8')));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before ready:\n${logs.join('\n')}`));
    });
  });
}

/** Runs the operator CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = childEnv(), timeoutMs = 60_000) {
  const r = spawnSync(process.execPath, [dpuZtpBin, ...args], { env, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
