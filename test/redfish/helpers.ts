/**
 * Shared test fixtures for redfish/: a small image server with Range support
 * (what BMCs fetch from), fast emulator and client options so the suite stays
 * fast, and the location of the DMTF mockups in ../shared.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { vi } from 'vitest';
import { registerBmcCommands } from '../../cli/commands/bmc.js';
import type { BmcEmulatorOptions, RedfishClientOptions, StrategyWaits } from '../../redfish/index.js';

/** Repo root (two levels up from this file). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** DMTF mockups live beside the repo (../shared), never copied in. */
export const mockupsDir = join(repoRoot, '..', 'shared', 'redfish-mockups');

/** Emulator options that keep power transitions and tasks short. */
export const FAST_EMULATOR: BmcEmulatorOptions = {
  powerTransitionMs: 30,
  taskDurationMs: 30,
  osBootMs: 50,
  username: 'admin',
  password: 'secret',
};

/** Client options with short timeouts and retry delays. */
export function fastClient(url: string, extra: Partial<RedfishClientOptions> = {}): RedfishClientOptions {
  return {
    url,
    username: 'admin',
    password: 'secret',
    timeouts: { connectMs: 2_000, requestMs: 2_000 },
    retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 1_500 },
    taskPoll: { timeoutMs: 5_000, intervalMs: 10, maxIntervalMs: 50 },
    ...extra,
  };
}

/** Fast waits for strategies. */
export const FAST_WAITS: StrategyWaits = {
  power: { timeoutMs: 3_000, intervalMs: 10, maxIntervalMs: 40 },
  media: { timeoutMs: 1_000, intervalMs: 10, maxIntervalMs: 40 },
  task: { timeoutMs: 5_000, intervalMs: 10, maxIntervalMs: 40 },
  os: { timeoutMs: 3_000, intervalMs: 10, maxIntervalMs: 40 },
};

/** An image server: serves `size` bytes at any path, answers HEAD and Range with 206. */
export interface ImageServer {
  readonly url: string;
  readonly hits: { method: string; path: string; range: string | undefined }[];
  close(): Promise<void>;
}

/** Starts a Range-capable image server on 127.0.0.1. */
export async function startImageServer(size = 64 * 1024): Promise<ImageServer> {
  const data = Buffer.alloc(size, 7);
  const hits: ImageServer['hits'] = [];
  const server: Server = createServer((req, res) => {
    const range = req.headers.range;
    hits.push({ method: req.method ?? 'GET', path: req.url ?? '/', range });
    if ((req.url ?? '').includes('missing')) {
      res.writeHead(404).end();
      return;
    }
    const m = range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
    if (m) {
      const start = Number(m[1]);
      const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      res.writeHead(206, {
        'Content-Range': `bytes ${start}-${end}/${size}`,
        'Content-Length': String(end - start + 1),
        'Accept-Ranges': 'bytes',
      });
      res.end(req.method === 'HEAD' ? undefined : data.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { 'Content-Length': String(size), 'Accept-Ranges': 'bytes' });
    res.end(req.method === 'HEAD' ? undefined : data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Runs `dpu-ztp bmc …` in-process; returns stdout, stderr and the exit code it set. */
export async function cli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  const program = new Command('dpu-ztp').exitOverride();
  registerBmcCommands(program);
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'dpu-ztp', ...args]);
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, err, code };
}
