/**
 * How CLI commands reach a running service's operator API: base URL from
 * `--api` / `DPU_ZTP_API` (default http://127.0.0.1:8080), token from
 * `--token` / `DPU_ZTP_TOKEN` / `--token-file`, else `<data-dir>/admin-token`.
 * Problem bodies come back as one coded error line.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
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
    .option('--api <URL>', 'operator API base URL (env DPU_ZTP_API) [default: http://127.0.0.1:8080]')
    .option('--token <TOKEN>', 'bearer token (env DPU_ZTP_TOKEN)')
    .option('--token-file <FILE>', 'file holding the bearer token')
    .option(
      '--data-dir <DIR>',
      'data directory whose admin-token to use when no token is given [default: ./data]',
    );
}

/** A connection to the operator API. */
export interface ApiClient {
  base: string;
  /** Sends a JSON request; returns the parsed body (undefined for 204); throws the API's coded error. */
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** Headers with the bearer token, for custom requests (streams). */
  headers(): Record<string, string>;
}

/** Resolves flags and environment into an API client. */
export function apiClient(flags: ApiFlags, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const base = (flags.api ?? env.DPU_ZTP_API ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  try {
    const u = new URL(base);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new CliError('CLI_ERR_USAGE', `--api ${base}: not an http(s) URL`);
  }
  let token = flags.token ?? env.DPU_ZTP_TOKEN;
  if (!token) {
    const file =
      flags.tokenFile ?? join(resolve(flags.dataDir ?? env.DPU_ZTP_DATA_DIR ?? './data'), 'admin-token');
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new CliError(
        'CLI_ERR_NO_TOKEN',
        `no API token: give --token, DPU_ZTP_TOKEN or --token-file (cannot read ${file}: ${(err as NodeJS.ErrnoException).code})`,
      );
    }
  }
  const headers = () => ({ authorization: `Bearer ${token}` });
  return {
    base,
    headers,
    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: { ...headers(), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
      } catch (err) {
        throw new CliError(
          'CLI_ERR_API_UNREACHABLE',
          `${base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`,
        );
      }
      const text = await res.text();
      if (!res.ok) {
        let problem: { code?: string; detail?: string } = {};
        try {
          problem = JSON.parse(text);
        } catch {
          // not a problem body
        }
        throw new CliError(
          problem.code ?? `HTTP_${res.status}`,
          problem.detail ?? (text.slice(0, 200) || res.statusText),
        );
      }
      return (text ? JSON.parse(text) : undefined) as T;
    },
  };
}
