/**
 * The dashboard's data layer: every call to the operator API goes through
 * {@link Api}, which sends the token as a bearer header (never in a URL) and
 * turns every failure into an {@link ApiFailure} with a kind the page can
 * explain: `auth` (the token was refused), `unreachable` (the API went away),
 * or `problem` (the API said no, with its problem body's code and detail).
 *
 * The types below are the views the operator API documents (README "Operator
 * API"); when the generated client (`web/api/`, openapi-fetch) lands, `call`
 * swaps to it and these aliases to its schema types.
 */

/** Why a call failed, in the terms the page shows. */
export type FailureKind = 'auth' | 'forbidden' | 'unreachable' | 'problem';

/** A failed API call. */
export class ApiFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly status = 0,
    readonly code?: string,
  ) {
    super(message);
  }
}

export type Role = 'admin' | 'operator' | 'viewer';
export interface Session {
  name: string;
  role: Role;
  traceUiUrl: string | null;
}
export type DeviceState = 'registered' | 'pending' | 'bootstrapping' | 'provisioned' | 'failed';
export interface Device {
  serial: string;
  profile: string | null;
  state: DeviceState;
  hwModel: string | null;
  labels: Record<string, string>;
  bmc: string | null;
  lastProgress: { type: string; message: string | null; at: string } | null;
  createdAt: string;
  updatedAt: string;
}
export interface StepView {
  step: string;
  attempt: number;
  startedAt: string;
  finishedAt: string | null;
  result: string;
  detail: string | null;
  errorCode: string | null;
  bmcMessages: unknown[] | null;
}
export interface RunView {
  serial: string;
  state: string;
  step: string;
  attempt: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: { code: string; message: string; bmcMessages?: unknown[] } | null;
  traceId?: string | null;
  steps?: StepView[];
}
export interface JobHead {
  id: string;
  kind: string;
  state: string;
  params: Record<string, unknown>;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  counts: Record<string, number>;
}
export interface Job extends JobHead {
  devices: RunView[];
}
export interface BmcCheck {
  at: string;
  ok: boolean;
  report?: Record<string, unknown>;
  error?: { code: string; message: string };
}
export interface Bmc {
  id: string;
  address: string;
  username: string;
  insecure: boolean;
  auth: string;
  profile?: string;
  system?: string;
  labels: Record<string, string>;
  lastCheck?: BmcCheck;
  createdAt: string;
  updatedAt: string;
}
export interface Image {
  name: string;
  size: number;
  sha256: string;
  [k: string]: unknown;
}
export interface Profile {
  name: string;
  version?: number;
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}
export interface BootstrapEvent {
  id: string;
  kind: string;
  progressType: string | null;
  message: string | null;
  remoteAddress: string | null;
  at: string;
}
interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}

type Query = Record<string, string | number | boolean | string[] | undefined>;

function qs(query: Query | undefined): string {
  if (!query) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) p.append(k, String(x));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Reads an RFC 9457 problem body into a sentence, whatever the body is. */
async function problemOf(res: Response): Promise<{ code?: string; detail: string }> {
  const text = await res.text().catch(() => '');
  try {
    const p = JSON.parse(text) as { code?: string; detail?: string; title?: string };
    return { ...(p.code ? { code: p.code } : {}), detail: p.detail ?? p.title ?? `HTTP ${res.status}` };
  } catch {
    return { detail: text.slice(0, 200) || `HTTP ${res.status} ${res.statusText}` };
  }
}

/** A random Idempotency-Key, so a retried click never starts a job twice. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}

/** The operator API with one token. */
export class Api {
  constructor(
    readonly token: string,
    readonly base = '',
  ) {}

  /** One call; resolves with the parsed JSON body (undefined for 204), or throws {@link ApiFailure}. */
  async call<T>(
    method: string,
    path: string,
    opts: { query?: Query; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/api/v1${path}${qs(opts.query)}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...opts.headers,
        },
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
        ...(opts.signal ? { signal: opts.signal } : {}),
        cache: 'no-store',
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ApiFailure(
        'unreachable',
        'the dpu-ztp API did not answer (the service is down or unreachable)',
      );
    }
    if (res.ok) {
      if (res.status === 204) return undefined as T;
      const text = await res.text();
      return (text ? JSON.parse(text) : undefined) as T;
    }
    const p = await problemOf(res);
    if (res.status === 401) throw new ApiFailure('auth', p.detail, 401, p.code);
    if (res.status === 403) throw new ApiFailure('forbidden', p.detail, 403, p.code);
    if (res.status === 502 || res.status === 504 || (res.status === 503 && p.code !== 'API_ERR_UNAVAILABLE'))
      throw new ApiFailure('unreachable', `the API answered ${res.status}: ${p.detail}`, res.status, p.code);
    throw new ApiFailure('problem', p.detail, res.status, p.code);
  }

  /** Every item of a cursor-paged list (bounded: at most `max` items). */
  async all<T>(path: string, query: Query = {}, max = 20_000): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    do {
      const page: Page<T> = await this.call('GET', path, { query: { ...query, limit: 500, cursor } });
      out.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor && out.length < max);
    return out;
  }

  session = () => this.call<Session>('GET', '/session');
  devices = () => this.all<Device>('/devices');
  device = (serial: string) => this.call<Device>('GET', `/devices/${encodeURIComponent(serial)}`);
  deviceEvents = (serial: string) =>
    this.call<Page<BootstrapEvent>>('GET', `/devices/${encodeURIComponent(serial)}/events`, {
      query: { limit: 1000 },
    });
  jobs = (query: { state?: string; serial?: string; limit?: number } = {}) =>
    this.call<Page<JobHead>>('GET', '/jobs', { query: { limit: 50, ...query } });
  job = (id: string, steps = false) =>
    this.call<Job>('GET', `/jobs/${encodeURIComponent(id)}`, { query: steps ? { steps: true } : {} });
  provision = (devices: string[]) =>
    this.call<Job>('POST', '/jobs', {
      body: { kind: 'provision', devices },
      headers: { 'idempotency-key': idempotencyKey() },
    });
  cancelJob = (id: string) =>
    this.call<Job>('POST', `/jobs/${encodeURIComponent(id)}/cancel`, {
      headers: { 'idempotency-key': idempotencyKey() },
    });
  retryJob = (id: string) =>
    this.call<Job>('POST', `/jobs/${encodeURIComponent(id)}/retry`, {
      headers: { 'idempotency-key': idempotencyKey() },
    });
  bmcs = () => this.all<Bmc>('/bmcs');
  bmc = (id: string) => this.call<Bmc>('GET', `/bmcs/${encodeURIComponent(id)}`);
  putBmc = (id: string, body: Record<string, unknown>) =>
    this.call<Bmc>('PUT', `/bmcs/${encodeURIComponent(id)}`, { body });
  checkBmc = (id: string) =>
    this.call<BmcCheck>('POST', `/bmcs/${encodeURIComponent(id)}/check`, {
      headers: { 'idempotency-key': idempotencyKey() },
    });
  images = () => this.call<Page<Image>>('GET', '/images');
  profiles = () => this.call<Page<Profile>>('GET', '/profiles');
}
