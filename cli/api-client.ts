/**
 * How CLI commands reach a running service's operator API: base URL from
 * `--api` / `DPU_ZTP_API_URL` (default http://127.0.0.1:8080), token from
 * `--token`, `--token-file`, `DPU_ZTP_TOKEN`, else `<data-dir>/admin-token`.
 * Problem bodies come back as one coded error line.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { request } from 'undici';
import { CliError } from './exit.js';

/** Flags every API-calling command takes. */
export interface ApiFlags {
  api?: string;
  token?: string;
  tokenFile?: string;
  dataDir?: string;
}

/** Adds the `--api`, `--token`, `--token-file` and `--data-dir` flags. */
export function addApiOptions(cmd: Command): Command {
  return cmd
    .option('--api <URL>', 'operator API base URL (env DPU_ZTP_API_URL) [default: http://127.0.0.1:8080]')
    .option('--token <TOKEN>', 'bearer token (env DPU_ZTP_TOKEN) [default: <data-dir>/admin-token]')
    .option('--token-file <FILE>', 'read the bearer token from a file')
    .option(
      '--data-dir <DIR>',
      'data directory holding admin-token (env DPU_ZTP_DATA_DIR) [default: ./data]',
    );
}

/** One request's body: JSON, or a stream sent as it is (uploads). */
export interface CallOptions {
  json?: unknown;
  body?: Readable;
  headers?: Record<string, string>;
}

/** A connection to the operator API. */
export interface ApiClient {
  base: string;
  /** Sends a request; returns status and parsed body (undefined when empty); a problem body throws its code. */
  call<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    opts?: CallOptions,
  ): Promise<{ status: number; json: T }>;
}

async function resolveToken(flags: ApiFlags, env: NodeJS.ProcessEnv): Promise<string> {
  if (flags.token && flags.tokenFile)
    throw new CliError('CLI_ERR_USAGE', 'give --token or --token-file, not both');
  if (flags.token) return flags.token;
  if (!flags.tokenFile && env.DPU_ZTP_TOKEN) return env.DPU_ZTP_TOKEN;
  const file =
    flags.tokenFile ?? join(resolve(flags.dataDir ?? env.DPU_ZTP_DATA_DIR ?? './data'), 'admin-token');
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (!token) throw new Error('empty file');
    return token;
  } catch (err) {
    throw new CliError(
      'CLI_ERR_NO_TOKEN',
      `no API token: give --token, --token-file or DPU_ZTP_TOKEN (cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** Resolves flags and environment into an API client. */
export async function apiClient(flags: ApiFlags, env: NodeJS.ProcessEnv = process.env): Promise<ApiClient> {
  const base = (flags.api ?? env.DPU_ZTP_API_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(base))
    throw new CliError('CLI_ERR_USAGE', `--api must be an http(s) URL, got ${base}`);
  const token = await resolveToken(flags, env);
  return {
    base,
    async call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: CallOptions = {}) {
      // 503 is the service's "under pressure, retry later" (its event-loop guard trips on a loaded
      // machine): a request that is safe to repeat — not a stream body, and a POST only under an
      // Idempotency-Key — is sent again a few times, a second apart.
      const repeatable =
        opts.body === undefined && (method !== 'POST' || opts.headers?.['idempotency-key'] !== undefined);
      for (let tries = 1; ; tries++) {
        const res = await send();
        if (res.statusCode !== 503 || !repeatable || tries >= BUSY_RETRIES) return answer<T>(res);
        await res.body.dump();
        await new Promise((r) => setTimeout(r, 1000));
      }

      async function send(): Promise<Awaited<ReturnType<typeof request>>> {
        try {
          return await request(`${base}${path}`, {
            method,
            headers: {
              authorization: `Bearer ${token}`,
              ...(opts.json !== undefined ? { 'content-type': 'application/json' } : {}),
              ...(opts.headers ?? {}),
            },
            ...(opts.json !== undefined
              ? { body: JSON.stringify(opts.json) }
              : opts.body
                ? { body: opts.body }
                : {}),
            // Large uploads: no timeout while the server hashes and syncs the last bytes.
            headersTimeout: 0,
            bodyTimeout: 0,
          });
        } catch (err) {
          const e = err as Error & { code?: string };
          throw new CliError(
            'CLI_ERR_API_UNREACHABLE',
            `${method} ${base}: ${e.code ?? ''} ${e.message}`.trim(),
          );
        }
      }
    },
  };
}

/** Tries of a repeatable request the service answered 503. */
const BUSY_RETRIES = 5;

/** A response as the caller sees it: parsed JSON, or a problem body thrown as its code. */
async function answer<T>(res: Awaited<ReturnType<typeof request>>): Promise<{ status: number; json: T }> {
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.statusCode >= 400) {
    const p = json as { code?: string; detail?: string } | undefined;
    throw new CliError(
      p?.code ?? `HTTP_${res.statusCode}`,
      p?.detail ?? (text.trim().slice(0, 200) || `HTTP ${res.statusCode}`),
    );
  }
  return { status: res.statusCode, json: json as T };
}
