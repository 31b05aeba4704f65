/**
 * How CLI commands reach a running service's operator API: base URL from
 * `--api` / `DPU_ZTP_API_URL` (default http://127.0.0.1:8080), token from
 * `--token`, `--token-file`, `DPU_ZTP_TOKEN`, else `<data-dir>/admin-token`.
 * Requests go through the generated typed client (`web/api/`); problem bodies come back
 * as one coded error line.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Agent, fetch as undiciFetch, Request as UndiciRequest } from 'undici';
import {
  type ApiClient as TypedApiClient,
  ApiProblemError,
  ApiUnreachableError,
  createApiClient,
  ok,
} from '../web/api/index.js';
import { CliError } from './exit.js';

const noTimeouts = new Agent({ headersTimeout: 0, bodyTimeout: 0 });

/** Tries of a repeatable request the service answered 503. */
const BUSY_RETRIES = 5;

/**
 * undici's fetch, sending a request again (up to {@link BUSY_RETRIES} tries, a second apart) when the
 * service answers 503 — its "under pressure, retry later" load guard — and the request is safe to
 * repeat: no body, or a JSON body (never a streamed upload), and a POST only under an Idempotency-Key.
 */
async function fetchRetryingBusy(req: Request): Promise<Response> {
  const send = (r: Request) =>
    undiciFetch(r as never, { dispatcher: noTimeouts }) as unknown as Promise<Response>;
  const json = (req.headers.get('content-type') ?? '').startsWith('application/json');
  const repeatable =
    (req.body === null || json) && (req.method !== 'POST' || req.headers.has('idempotency-key'));
  if (!repeatable) return send(req);
  for (let tries = 1; ; tries++) {
    const res = await send(tries < BUSY_RETRIES ? req.clone() : req);
    if (res.status !== 503 || tries >= BUSY_RETRIES) return res;
    await res.body?.cancel();
    await new Promise((r) => setTimeout(r, 1000));
  }
}

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

/** A connection to the operator API: the typed client (web/api) and the base URL it talks to. */
export interface ApiClient {
  base: string;
  /** The generated, typed client: `api.http.GET('/api/v1/devices', …)`. */
  http: TypedApiClient;
}

/**
 * Awaits a typed-client request and returns its data; an error answer throws a CliError
 * with the problem's stable code, a request that got no answer CLI_ERR_API_UNREACHABLE.
 */
export async function call<T>(
  pending: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<Exclude<T, undefined>> {
  try {
    return (await ok(pending)) as Exclude<T, undefined>;
  } catch (err) {
    if (err instanceof ApiProblemError) throw new CliError(err.code, err.detail);
    if (err instanceof ApiUnreachableError) throw new CliError('CLI_ERR_API_UNREACHABLE', err.message);
    throw err;
  }
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
    http: createApiClient({
      baseUrl: base,
      token,
      // undici's fetch with no header/body timeouts: a large upload waits while the server
      // hashes and syncs its last bytes.
      fetch: (req) => fetchRetryingBusy(req),
      Request: UndiciRequest as unknown as typeof Request,
    }),
  };
}
