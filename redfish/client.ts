/**
 * A thin Redfish client on undici (DSP0266): service-root discovery, session
 * login with Basic fallback, per-BMC TLS, timeouts, classified retries that
 * honour `Retry-After`, a per-BMC concurrency limit, `ETag`/`If-Match` on PATCH
 * and 202 + task polling. Every call runs in an OTEL span.
 */
import {
  Attr,
  type Instruments,
  instruments,
  redfishErrorAttrs,
  redfishRequestAttrs,
  redfishRetryAttrs,
  UNKNOWN_LABEL,
  withSpan,
} from '../otel/index.js';
import { Pool } from 'undici';
import { describeMessages, parseRedfishMessages, RedfishError, type RedfishMessage } from './errors.js';
import type { BmcMessageLog } from './message-log.js';
import { SessionCache } from './session-cache.js';
import { taskStateFromRedfish } from './vocabulary.js';
import { abortError, backoffDelay, type PollOptions, parseRetryAfter, pollUntil, sleep } from './wait.js';

/** A JSON object as the BMC returned it. */
export type RedfishJson = Record<string, unknown>;

/** How to authenticate: session (X-Auth-Token), Basic, or session with Basic fallback (sushy's default). */
export type AuthMode = 'auto' | 'session' | 'basic';

/** TLS settings for one BMC: a custom CA (PEM), or an explicit opt-in to skip verification. */
export interface BmcTlsOptions {
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  readonly insecure?: boolean;
}

/** Retry policy for transient failures (connection errors, timeouts, 5xx, 429, transient message ids). */
export interface RetryOptions {
  /** Total tries per request, including the first. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A BMC's `Retry-After` is honoured up to this long. */
  readonly maxRetryAfterMs: number;
}

/** Options of a {@link RedfishClient}. Only `url`, `username` and `password` are required. */
export interface RedfishClientOptions {
  /** BMC base URL, e.g. `https://10.0.0.5` (a trailing `/redfish/v1` is ignored). */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly auth?: AuthMode;
  readonly tls?: BmcTlsOptions;
  /** Connect / whole-request timeouts (Ironic defaults: 30 s / 60 s). */
  readonly timeouts?: { readonly connectMs?: number; readonly requestMs?: number };
  readonly retry?: Partial<RetryOptions>;
  /** Most requests in flight to this BMC at once. */
  readonly maxConcurrency?: number;
  /** How tasks are polled (default: 30 min bound, 1 s → 15 s backoff). */
  readonly taskPoll?: Partial<PollOptions>;
  /** Share sessions between clients; without one, the client keeps a private cache and logs out on close. */
  readonly sessionCache?: SessionCache;
  /** MessageId suffixes that mean "busy, try again" on 400/409 (extended later by the vendor profile). */
  readonly transientMessageIds?: readonly string[];
  /** Keep connections alive between requests (sushy sends `Connection: close`; off helps such BMCs). */
  readonly keepAlive?: boolean;
}

/** A successful Redfish response. */
export interface RedfishResponse<T = RedfishJson> {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: T;
  /** `ETag` header, else `@odata.etag` from the body. */
  readonly etag: string | undefined;
  /** `Location` header as a path (task monitor, new session, …). */
  readonly location: string | undefined;
}

/** Per-request options. */
export interface RequestOptions {
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Send without authentication (service root). */
  readonly anonymous?: boolean;
  /** Statuses returned instead of thrown (e.g. 412 for the ETag loop). */
  readonly passStatuses?: readonly number[];
}

/** Documented defaults (frozen); the CLI and bootstrap override per operator settings. */
export const DEFAULT_CLIENT_OPTIONS = Object.freeze({
  auth: 'auto' as AuthMode,
  connectMs: 30_000,
  requestMs: 60_000,
  retry: Object.freeze({ attempts: 5, baseDelayMs: 1_000, maxDelayMs: 15_000, maxRetryAfterMs: 60_000 }),
  maxConcurrency: 4,
  taskPoll: Object.freeze({ timeoutMs: 30 * 60_000, intervalMs: 1_000, maxIntervalMs: 15_000 }),
  keepAlive: true,
});

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A counting semaphore: the per-BMC concurrency limit. */
class Semaphore {
  #free: number;
  readonly #queue: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#queue.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** Per-BMC state shared by a client and its {@link RedfishClient.withSignal} views. */
interface ClientState {
  readonly opts: RedfishClientOptions;
  readonly pool: Pool;
  readonly sem: Semaphore;
  readonly cache: SessionCache;
  readonly ownsCache: boolean;
  readonly cacheKey: string;
  readonly retry: RetryOptions;
  readonly requestMs: number;
  readonly transient: Set<string>;
  authMode: 'session' | 'basic' | undefined;
  login: Promise<void> | undefined;
  root: RedfishJson | undefined;
  /** The Task collection found through the root (see `tasksCollection`). */
  tasks: string | undefined;
  requests: number;
  /** The vendor profile (metric label) once the BMC was probed; `unknown` before. */
  vendorProfile: string;
  readonly metrics: Instruments;
}

/** Normalises a Redfish reference (absolute URL, `redfish/v1/…` without slash) to an absolute path. */
export function toPath(ref: string): string {
  if (/^https?:\/\//i.test(ref)) {
    const u = new URL(ref);
    return u.pathname + u.search;
  }
  return ref.startsWith('/') ? ref : `/${ref}`;
}

/** `@odata.id` of a JSON reference object (`{"@odata.id": "…"}`), if any. */
export function odataId(ref: unknown): string | undefined {
  const id = (ref as RedfishJson | undefined)?.['@odata.id'];
  return typeof id === 'string' ? id : undefined;
}

/** Network-level failure → typed error. */
function mapTransportError(err: unknown, method: string, path: string, requestMs: number): RedfishError {
  const e = err as { code?: string; name?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? '';
  const details = { method, path, cause: err };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || /TIMEOUT/.test(code))
    return new RedfishError(
      'REDFISH_ERR_TIMEOUT',
      `${method} ${path}: no complete answer within ${requestMs} ms`,
      details,
    );
  if (TLS_CODES.has(code) || /certificate/i.test(e?.message ?? ''))
    return new RedfishError(
      'REDFISH_ERR_TLS',
      `${method} ${path}: TLS verification failed (${code || e?.message}); pass a CA or opt in to insecure`,
      details,
    );
  return new RedfishError(
    'REDFISH_ERR_CONNECTION',
    `${method} ${path}: ${code || e?.name || 'connection failed'}: ${e?.message ?? String(err)}`,
    details,
  );
}

/**
 * Redfish client for one BMC. Create with {@link RedfishClient.create}-style constructor, call
 * {@link RedfishClient.close} when done (logs out of a privately cached session).
 */
export class RedfishClient {
  /** Origin of the BMC (`https://host:port`). */
  readonly origin: string;
  readonly #s: ClientState;
  /** Set on views made by {@link withSignal}: every request and wait of the view stops when it aborts. */
  readonly #signal: AbortSignal | undefined;
  /** A view ({@link withSignal}, {@link withSpanAttributes}): shares its client's connections, never closes them. */
  readonly #view: boolean;
  /** Added to every `redfish.request` span of this view (vendor profile, strategy). */
  readonly #spanAttrs: Readonly<Record<string, string>>;
  /** Where a {@link withMessageLog} view records the BMC's messages of every response. */
  readonly #log: BmcMessageLog | undefined;
  /**
   * Hand-off from a view maker to the constructor (set and consumed synchronously): a view shares
   * the pool, sessions and limits of its client instead of building its own.
   */
  static #viewOf:
    | {
        readonly state: ClientState;
        readonly origin: string;
        readonly signal: AbortSignal | undefined;
        readonly spanAttrs: Readonly<Record<string, string>>;
        readonly log: BmcMessageLog | undefined;
      }
    | undefined;

  constructor(options: RedfishClientOptions) {
    const view = RedfishClient.#viewOf;
    if (view) {
      RedfishClient.#viewOf = undefined;
      this.origin = view.origin;
      this.#s = view.state;
      this.#signal = view.signal;
      this.#view = true;
      this.#spanAttrs = view.spanAttrs;
      this.#log = view.log;
      return;
    }
    this.#signal = undefined;
    this.#view = false;
    this.#spanAttrs = {};
    this.#log = undefined;
    let u: URL;
    try {
      u = new URL(options.url);
    } catch {
      throw new RedfishError('REDFISH_ERR_CONFIG', `invalid BMC URL: ${options.url}`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:')
      throw new RedfishError('REDFISH_ERR_CONFIG', `BMC URL must be http(s): ${options.url}`);
    this.origin = u.origin;
    const connectMs = options.timeouts?.connectMs ?? DEFAULT_CLIENT_OPTIONS.connectMs;
    const requestMs = options.timeouts?.requestMs ?? DEFAULT_CLIENT_OPTIONS.requestMs;
    const maxConcurrency = options.maxConcurrency ?? DEFAULT_CLIENT_OPTIONS.maxConcurrency;
    if (!(maxConcurrency >= 1)) throw new RedfishError('REDFISH_ERR_CONFIG', 'maxConcurrency must be ≥ 1');
    const tls = options.tls ?? {};
    const pool = new Pool(this.origin, {
      connections: maxConcurrency,
      headersTimeout: requestMs,
      bodyTimeout: requestMs,
      connect: {
        timeout: connectMs,
        ...(u.protocol === 'https:'
          ? {
              rejectUnauthorized: tls.insecure !== true,
              ...(tls.ca ? { ca: tls.ca as string | Buffer | (string | Buffer)[] } : {}),
            }
          : {}),
      },
    });
    const tlsMode = tls.insecure ? 'insecure' : tls.ca ? 'ca' : 'system';
    const auth = options.auth ?? DEFAULT_CLIENT_OPTIONS.auth;
    this.#s = {
      opts: options,
      pool,
      sem: new Semaphore(maxConcurrency),
      cache: options.sessionCache ?? new SessionCache(),
      ownsCache: options.sessionCache === undefined,
      cacheKey: SessionCache.key(this.origin, options.username, options.password, tlsMode),
      retry: { ...DEFAULT_CLIENT_OPTIONS.retry, ...options.retry },
      requestMs,
      transient: new Set(options.transientMessageIds ?? []),
      authMode: auth === 'basic' ? 'basic' : undefined,
      login: undefined,
      root: undefined,
      tasks: undefined,
      requests: 0,
      vendorProfile: UNKNOWN_LABEL,
      metrics: instruments(),
    };
  }

  /**
   * A view of this client whose every request, retry delay and wait (tasks, and the strategies' polls
   * through {@link signal}) stops once `signal` aborts, failing with the abort reason when it is a
   * RedfishError (else REDFISH_ERR_DEADLINE). The view shares connections, sessions and the concurrency
   * limit; closing it does nothing — close the client it came from. Used for the overall deadline of a run.
   */
  withSignal(signal: AbortSignal): RedfishClient {
    RedfishClient.#viewOf = {
      state: this.#s,
      origin: this.origin,
      signal: this.#signal ? AbortSignal.any([this.#signal, signal]) : signal,
      spanAttrs: this.#spanAttrs,
      log: this.#log,
    };
    return new RedfishClient(this.#s.opts);
  }

  /**
   * A view of this client (same connections, sessions, limits and signal) whose `redfish.request`
   * spans also carry `attributes` — the vendor profile and strategy a provisioning step works with,
   * which the client itself does not know. Closing it does nothing.
   */
  withSpanAttributes(attributes: Readonly<Record<string, string | undefined>>): RedfishClient {
    const extra: Record<string, string> = { ...this.#spanAttrs };
    for (const [k, v] of Object.entries(attributes)) if (v !== undefined) extra[k] = v;
    RedfishClient.#viewOf = {
      state: this.#s,
      origin: this.origin,
      signal: this.#signal,
      spanAttrs: extra,
      log: this.#log,
    };
    return new RedfishClient(this.#s.opts);
  }

  /**
   * A view of this client (same connections, sessions, limits, signal and span attributes) that
   * records into `log` the BMC's messages of every response it gets — `@Message.ExtendedInfo` of
   * successes and errors (retried ones too) and each Task's `Messages` — so that a step can keep
   * what the BMC said even when nothing failed. The log never sees the client's password, nor a
   * password sent in a request body. Views made from this view record into the same log.
   */
  withMessageLog(log: BmcMessageLog): RedfishClient {
    log.addSecret(this.#s.opts.password);
    RedfishClient.#viewOf = {
      state: this.#s,
      origin: this.origin,
      signal: this.#signal,
      spanAttrs: this.#spanAttrs,
      log,
    };
    return new RedfishClient(this.#s.opts);
  }

  /** The signal of a {@link withSignal} view (pass it to waits); undefined on a plain client. */
  get signal(): AbortSignal | undefined {
    return this.#signal;
  }

  /** Number of HTTP requests sent so far (all attempts, including login). */
  get requestCount(): number {
    return this.#s.requests;
  }

  /** The authentication in use after login (`undefined` before the first authenticated call). */
  get authMode(): 'session' | 'basic' | undefined {
    return this.#s.authMode;
  }

  /** The vendor profile its requests are counted under in metrics (`unknown` until the probe set it). */
  get vendorProfile(): string {
    return this.#s.vendorProfile;
  }

  /** Names the BMC's vendor profile (the probe does) for the `vendor_profile` label of later requests. */
  setVendorProfile(id: string): void {
    this.#s.vendorProfile = id;
  }

  /** Adds MessageId suffixes that mean "transient, retry" (vendor profile data). */
  addTransientMessageIds(ids: Iterable<string>): void {
    for (const id of ids) this.#s.transient.add(id);
  }

  /** Task polling options (defaults merged with the client's). */
  taskPollOptions(override?: Partial<PollOptions>): PollOptions {
    return { ...DEFAULT_CLIENT_OPTIONS.taskPoll, ...this.#s.opts.taskPoll, ...override };
  }

  /** GET the service root (`/redfish/v1/`, readable without auth), cached. */
  async serviceRoot(): Promise<RedfishJson> {
    if (!this.#s.root) this.#s.root = (await this.request('GET', '/redfish/v1/', { anonymous: true })).body;
    return this.#s.root;
  }

  /** GET a resource. */
  get<T = RedfishJson>(path: string): Promise<RedfishResponse<T>> {
    return this.request<T>('GET', path);
  }

  /** POST (actions, collections). */
  post<T = RedfishJson>(path: string, body: unknown): Promise<RedfishResponse<T>> {
    return this.request<T>('POST', path, { body });
  }

  /** DELETE a resource. */
  delete(path: string): Promise<RedfishResponse> {
    return this.request('DELETE', path);
  }

  /**
   * PATCH with `If-Match` (DSP0266 REQ_HEADERS_IF_MATCH). `etag` is the ETag from the caller's last GET;
   * with `'fetch'` the resource is read first. On 412 the resource is re-read and the PATCH retried with
   * the fresh ETag, then once with the strong form of a weak ETag, then once without If-Match (sushy
   * `_etag_handler`), then fails with REDFISH_ERR_PRECONDITION. Empty ETags are ignored (some BMCs answer 412 to `If-Match: ""`).
   */
  async patch<T = RedfishJson>(
    path: string,
    body: unknown,
    etag?: string | 'fetch',
  ): Promise<RedfishResponse<T>> {
    let tag = etag === 'fetch' ? (await this.get(path)).etag : etag;
    const tried = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const headers: Record<string, string> = tag ? { 'If-Match': tag } : {};
      if (tag) tried.add(tag);
      const res = await this.request<T>('PATCH', path, { body, headers, passStatuses: [412] });
      if (res.status !== 412) return res;
      if (!tag) break; // already tried without If-Match
      const fresh = (await this.get(path)).etag;
      if (fresh && !tried.has(fresh)) tag = fresh;
      else if (tag.startsWith('W/') && !tried.has(tag.slice(2))) tag = tag.slice(2);
      else tag = undefined; // last resort, as sushy does: without If-Match
    }
    throw new RedfishError(
      'REDFISH_ERR_PRECONDITION',
      `PATCH ${path}: 412 Precondition Failed persisted after re-reading the resource`,
      { status: 412, method: 'PATCH', path },
    );
  }

  /**
   * Waits for an asynchronous operation (DSP0266 "Asynchronous operations") to finish and returns the
   * final Task (or final monitor body). Accepts the 202 response: polls the Task in the body
   * (`@odata.id`, or `Id` under `TaskService/Tasks` as BlueField BMCs return it), else the `Location`
   * task monitor until it stops answering 202. A Task ending in Exception/Killed/Cancelled throws
   * REDFISH_ERR_TASK_FAILED with the task's Messages; the wait is bounded (REDFISH_ERR_WAIT_TIMEOUT).
   */
  async waitForTask(accepted: RedfishResponse, poll?: Partial<PollOptions>): Promise<RedfishJson> {
    const opts = this.taskPollOptions(poll);
    const body = accepted.body ?? {};
    let taskPath: string | undefined;
    if (typeof body.TaskState === 'string' || /#Task\./.test(String(body['@odata.type'] ?? '')))
      taskPath = odataId(body);
    if (!taskPath && typeof body.Id === 'string' && body.TaskState !== undefined)
      taskPath = `${await this.tasksCollection()}/${body.Id}`;
    if (!taskPath && !accepted.location) {
      if (typeof body.Id === 'string') taskPath = `${await this.tasksCollection()}/${body.Id}`;
      else return body; // 200/204: nothing to wait for
    }
    let last = 'no answer yet';
    return withSpan('redfish.task.wait', { [Attr.bmcUrl]: this.origin }, async () => {
      if (taskPath) {
        const path = taskPath;
        return pollUntil(
          `task ${path}`,
          opts,
          async () => {
            const t = (await this.get(path)).body;
            last = `${String(t.TaskState)} ${t.PercentComplete ?? ''}%`;
            return this.#taskOutcome(path, t);
          },
          () => last,
          this.#signal,
        );
      }
      const monitor = accepted.location!;
      return pollUntil(
        `task monitor ${monitor}`,
        opts,
        async () => {
          const r = await this.get(monitor);
          last = `HTTP ${r.status}`;
          if (r.status === 202) return undefined;
          return r.body.TaskState === undefined ? r.body : this.#taskOutcome(monitor, r.body);
        },
        () => last,
        this.#signal,
      );
    });
  }

  #taskOutcome(path: string, task: RedfishJson): RedfishJson | undefined {
    const state = taskStateFromRedfish(task.TaskState);
    if (state === 'running') return undefined;
    if (state === 'completed') return task;
    const all: RedfishMessage[] = parseRedfishMessages({ '@Message.ExtendedInfo': task.Messages });
    // A task's Messages grow as it runs (bmcweb task.hpp: TaskStarted, TaskProgressChanged…, then
    // TaskAborted): the failure names the ones that say why, not the OK progress before them.
    const bad = all.filter((m) => m.Severity !== undefined && !/^ok$/i.test(m.Severity));
    const messages = bad.length > 0 ? bad : all;
    throw new RedfishError(
      'REDFISH_ERR_TASK_FAILED',
      `task ${path} ended in ${String(task.TaskState)}${messages.length ? `: ${describeMessages(messages)}` : ''}`,
      { path, messages },
    );
  }

  /** Logs in now (otherwise done lazily). Useful to surface credential problems early. */
  async login(): Promise<void> {
    await this.#ensureAuth();
  }

  /**
   * Closes connections. With a private session cache the session is DELETEd first (sushy
   * `fix-to-close-session-on-dealloc`); with a shared cache it stays for reuse — call {@link logout}.
   */
  async close(): Promise<void> {
    if (this.#view) return; // a view: its client owns the connections
    if (this.#s.ownsCache) await this.logout().catch(() => undefined);
    await this.#s.pool.close().catch(() => undefined);
  }

  /** DELETEs the current session (if any) and forgets it. */
  async logout(): Promise<void> {
    const s = this.#s.cache.get(this.#s.cacheKey);
    if (!s) return;
    this.#s.cache.delete(this.#s.cacheKey, s.token);
    if (s.location) {
      await this.#send('DELETE', s.location, { headers: { 'X-Auth-Token': s.token } }).catch(() => undefined);
    }
  }

  /** Sends one Redfish request with auth, retries and the concurrency limit; throws typed errors. */
  request<T = RedfishJson>(
    method: string,
    ref: string,
    opts: RequestOptions = {},
  ): Promise<RedfishResponse<T>> {
    const path = toPath(ref);
    // Never credentials: the origin has none (URL.origin drops user info), the path is the resource's.
    return withSpan(
      'redfish.request',
      {
        ...this.#spanAttrs,
        [Attr.bmcUrl]: this.origin,
        [Attr.redfishMethod]: method,
        [Attr.httpRequestMethod]: method,
        [Attr.redfishPath]: path,
        [Attr.urlPath]: path,
      },
      async (span) => {
        let attempts = 0;
        let reauthed = false;
        for (;;) {
          if (this.#signal?.aborted) throw abortError(this.#signal);
          attempts++;
          span.setAttribute(Attr.redfishAttempts, attempts);
          // Each try after the first is an event on the one span: which try, and what the last one got.
          if (attempts > 1) span.addEvent('retry', { [Attr.redfishAttempt]: attempts });
          let res: RawResponse;
          if (attempts === 1 && opts.body !== undefined) this.#log?.addSecretsOf(opts.body);
          try {
            const headers: Record<string, string> = { ...opts.headers };
            if (!opts.anonymous) Object.assign(headers, await this.#authHeaders());
            res = await this.#send(method, path, { headers, body: opts.body });
          } catch (err) {
            const transient =
              err instanceof RedfishError &&
              (err.code === 'REDFISH_ERR_CONNECTION' || err.code === 'REDFISH_ERR_TIMEOUT');
            if (transient && attempts < this.#s.retry.attempts) {
              this.#countRetry();
              await sleep(
                backoffDelay(attempts - 1, this.#s.retry.baseDelayMs, this.#s.retry.maxDelayMs),
                this.#signal,
              );
              continue;
            }
            this.#countError(err);
            throw err;
          }
          span.setAttribute(Attr.redfishStatus, res.status);
          span.setAttribute(Attr.httpStatusCode, res.status);
          this.#log?.record(`${method} ${path}`, res.status, res.json);
          if (res.status < 300 || opts.passStatuses?.includes(res.status)) {
            try {
              return this.#toResponse<T>(res, method, path);
            } catch (err) {
              this.#countError(err);
              throw err;
            }
          }
          const err = this.#httpError(res, method, path);
          const messageId = err.messages?.[0]?.MessageId;
          if (messageId) span.setAttribute(Attr.redfishMessageId, messageId);
          if (res.status === 401 && !opts.anonymous && !reauthed && this.#s.authMode === 'session') {
            // Session expired or evicted: re-authenticate once (sushy/Ironic behaviour).
            reauthed = true;
            this.#dropSession();
            continue;
          }
          if (this.#isTransient(err) && attempts < this.#s.retry.attempts) {
            this.#countRetry();
            await sleep(this.#retryDelay(err, attempts), this.#signal);
            continue;
          }
          this.#countError(err);
          throw err;
        }
      },
    );
  }

  #countRetry(): void {
    this.#s.metrics.redfishRetries.add(1, redfishRetryAttrs(this.#s.vendorProfile));
  }

  /** Counts a request that failed for good, by its stable code (`REDFISH_ERR_*`) as `error_type`. */
  #countError(err: unknown): void {
    const code = (err as { code?: unknown } | null)?.code;
    this.#s.metrics.redfishErrors.add(
      1,
      redfishErrorAttrs(this.#s.vendorProfile, typeof code === 'string' ? code : 'other'),
    );
  }

  #retryDelay(err: RedfishError, attempts: number): number {
    if (err.retryAfterSeconds !== undefined)
      return Math.min(err.retryAfterSeconds * 1000, this.#s.retry.maxRetryAfterMs);
    return backoffDelay(attempts - 1, this.#s.retry.baseDelayMs, this.#s.retry.maxDelayMs);
  }

  #isTransient(err: RedfishError): boolean {
    if (err.status !== undefined && RETRY_STATUSES.has(err.status)) return true;
    if (err.status === 400 || err.status === 409) {
      for (const id of this.#s.transient) if (err.hasMessage(id)) return true;
    }
    return false;
  }

  #httpError(res: RawResponse, method: string, path: string): RedfishError {
    const messages = parseRedfishMessages(res.json);
    const retryAfterSeconds = parseRetryAfter(res.headers['retry-after']);
    const details = {
      status: res.status,
      method,
      path,
      messages,
      ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    };
    const text = messages.length ? describeMessages(messages) : res.text.slice(0, 200) || 'no body';
    if (res.status === 403 && messages.some((m) => /PasswordChangeRequired$/.test(m.MessageId)))
      return new RedfishError(
        'REDFISH_ERR_PASSWORD_CHANGE_REQUIRED',
        `${method} ${path}: 403: the account must change its password first: ${text}`,
        details,
      );
    if (res.status === 401)
      return new RedfishError('REDFISH_ERR_AUTH', `${method} ${path}: 401 Unauthorized: ${text}`, details);
    return new RedfishError('REDFISH_ERR_HTTP', `${method} ${path}: HTTP ${res.status}: ${text}`, details);
  }

  #toResponse<T>(res: RawResponse, method: string, path: string): RedfishResponse<T> {
    if (res.json === undefined && res.text.trim() !== '' && res.status !== 204 && method !== 'DELETE')
      throw new RedfishError('REDFISH_ERR_BAD_RESPONSE', `${method} ${path}: body is not JSON`, {
        status: res.status,
        method,
        path,
      });
    const body = (res.json ?? {}) as T & RedfishJson;
    const tag =
      res.headers.etag || (typeof body['@odata.etag'] === 'string' ? body['@odata.etag'] : undefined);
    return {
      status: res.status,
      headers: res.headers,
      body,
      etag: tag && tag !== '""' ? tag : undefined,
      location: res.headers.location ? toPath(res.headers.location) : undefined,
    };
  }

  async #authHeaders(): Promise<Record<string, string>> {
    await this.#ensureAuth();
    if (this.#s.authMode === 'basic') {
      const b = Buffer.from(`${this.#s.opts.username}:${this.#s.opts.password}`).toString('base64');
      return { Authorization: `Basic ${b}` };
    }
    const s = this.#s.cache.get(this.#s.cacheKey);
    if (s) return { 'X-Auth-Token': s.token };
    // Evicted between ensureAuth and here (another client logged out): log in again.
    this.#s.authMode = undefined;
    return this.#authHeaders();
  }

  #dropSession(): void {
    const s = this.#s.cache.get(this.#s.cacheKey);
    if (s) this.#s.cache.delete(this.#s.cacheKey, s.token);
    this.#s.authMode = undefined;
  }

  async #ensureAuth(): Promise<void> {
    if (this.#s.authMode === 'basic') return;
    if (this.#s.cache.get(this.#s.cacheKey)) {
      this.#s.authMode = 'session';
      return;
    }
    this.#s.login ??= this.#createSession().finally(() => {
      this.#s.login = undefined;
    });
    await this.#s.login;
  }

  /**
   * DSP0266 session login: POST {UserName, Password} to `Links.Sessions` (sushy `use-sessions-url-from-root`),
   * take `X-Auth-Token` and `Location`. A full session pool (503, iDRAC `RAC0218`) is retried honouring
   * Retry-After; in `auto` mode a BMC without usable sessions falls back to Basic.
   */
  async #createSession(): Promise<void> {
    const auto = (this.#s.opts.auth ?? DEFAULT_CLIENT_OPTIONS.auth) === 'auto';
    return withSpan('redfish.session.login', { [Attr.bmcUrl]: this.origin }, async () => {
      let sessionsLink: string | undefined;
      let sessionsPath = '/redfish/v1/SessionService/Sessions';
      try {
        const root = await this.serviceRoot();
        sessionsLink = odataId((root.Links as RedfishJson | undefined)?.Sessions);
        sessionsPath = sessionsLink ?? (await this.#sessionsOfSessionService(root)) ?? sessionsPath;
      } catch (err) {
        if (
          err instanceof RedfishError &&
          (err.code === 'REDFISH_ERR_TLS' ||
            err.code === 'REDFISH_ERR_CONNECTION' ||
            err.code === 'REDFISH_ERR_TIMEOUT')
        )
          throw err;
      }
      let lastErr: RedfishError | undefined;
      for (let attempt = 1; attempt <= this.#s.retry.attempts; attempt++) {
        const res = await this.#send('POST', sessionsPath, {
          body: { UserName: this.#s.opts.username, Password: this.#s.opts.password },
          headers: {},
        });
        const token = res.headers['x-auth-token'];
        if (res.status < 300 && token) {
          const location = res.headers.location ? toPath(res.headers.location) : odataId(res.json);
          this.#s.cache.set(this.#s.cacheKey, { token, location });
          this.#s.authMode = 'session';
          return;
        }
        lastErr = this.#httpError(res, 'POST', sessionsPath);
        // python-sushy SessionOrBasicAuth: a service that does not advertise Links.Sessions and refuses
        // the login (401; sushy-tools with an auth file answers every unauthenticated request 401), or
        // has no session endpoint at all (404/405), is spoken to with Basic instead.
        if (
          auto &&
          (res.status === 404 || res.status === 405 || (res.status === 401 && sessionsLink === undefined))
        ) {
          this.#s.authMode = 'basic';
          return;
        }
        if (res.status === 401 || (res.status === 403 && !lastErr.hasMessage('PasswordChangeRequired')))
          throw new RedfishError('REDFISH_ERR_AUTH', `session login rejected: ${lastErr.message}`, {
            status: res.status,
            method: 'POST',
            path: sessionsPath,
            messages: lastErr.messages,
          });
        if (RETRY_STATUSES.has(res.status) && attempt < this.#s.retry.attempts) {
          // A full session pool: another client may have left a session in the shared cache meanwhile.
          if (this.#s.cache.get(this.#s.cacheKey)) {
            this.#s.authMode = 'session';
            return;
          }
          this.#countRetry();
          await sleep(this.#retryDelay(lastErr, attempt), this.#signal);
          continue;
        }
        break;
      }
      if (auto) {
        this.#s.authMode = 'basic';
        return;
      }
      throw lastErr ?? new RedfishError('REDFISH_ERR_AUTH', 'session login failed');
    });
  }

  /**
   * `SessionService.Sessions` when the root names a SessionService but no `Links.Sessions`. The
   * SessionService is readable without auth only on some services, so a failed GET just means "unknown".
   */
  async #sessionsOfSessionService(root: RedfishJson): Promise<string | undefined> {
    const svc = odataId(root.SessionService);
    if (!svc) return undefined;
    const res = await this.#send('GET', toPath(svc), { headers: {} }).catch(() => undefined);
    return res && res.status < 300 ? odataId((res.json as RedfishJson | undefined)?.Sessions) : undefined;
  }

  /**
   * A link of the service root (`Systems`, `Managers`, `Chassis`, `UpdateService`, `SessionService`,
   * `AccountService`, `Tasks`, …) as a path, so nothing depends on the DSP0266 example URIs.
   */
  async rootLink(name: string): Promise<string | undefined> {
    const root = await this.serviceRoot();
    const id = odataId(root[name]) ?? odataId((root.Links as RedfishJson | undefined)?.[name]);
    return id ? toPath(id) : undefined;
  }

  /**
   * The Task collection: the root's `Tasks` (the TaskService) → its `Tasks`; the DSP0266 default
   * `/redfish/v1/TaskService/Tasks` when the root does not say (some BMCs return only a task `Id`).
   */
  async tasksCollection(): Promise<string> {
    if (this.#s.tasks) return this.#s.tasks;
    let tasks = '/redfish/v1/TaskService/Tasks';
    try {
      const svc = (await this.rootLink('Tasks')) ?? (await this.rootLink('TaskService'));
      if (svc) tasks = toPath(odataId((await this.get(svc)).body.Tasks) ?? `${svc.replace(/\/$/, '')}/Tasks`);
    } catch (err) {
      if (!(err instanceof RedfishError && err.code === 'REDFISH_ERR_HTTP')) throw err;
    }
    this.#s.tasks = tasks.replace(/\/$/, '');
    return this.#s.tasks;
  }

  /** One HTTP exchange; transport errors mapped, body read and JSON-parsed when possible. */
  async #send(
    method: string,
    path: string,
    opts: { headers: Record<string, string>; body?: unknown },
  ): Promise<RawResponse> {
    this.#s.requests++;
    this.#s.metrics.redfishRequests.add(1, redfishRequestAttrs(this.#s.vendorProfile, method));
    const headers: Record<string, string> = {
      'OData-Version': '4.0',
      Accept: 'application/json',
      // sushy: compression makes some BMCs hand out weak ETags.
      'Accept-Encoding': 'identity',
      ...opts.headers,
    };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = 'application/json';
    }
    const signal = this.#signal;
    return this.#s.sem.run(async () => {
      // A view's deadline may have passed while this request queued for the concurrency limit.
      if (signal?.aborted) throw abortError(signal);
      try {
        const res = await this.#s.pool.request({
          path,
          method: method as 'GET',
          headers,
          body,
          signal: signal
            ? AbortSignal.any([AbortSignal.timeout(this.#s.requestMs), signal])
            : AbortSignal.timeout(this.#s.requestMs),
          reset: this.#s.opts.keepAlive === false,
        });
        const text = await res.body.text();
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers))
          if (v !== undefined) h[k] = Array.isArray(v) ? v.join(', ') : v;
        let json: RedfishJson | undefined;
        if (text.trim()) {
          try {
            const parsed = JSON.parse(text);
            if (parsed && typeof parsed === 'object') json = parsed as RedfishJson;
          } catch {
            json = undefined;
          }
        }
        return { status: res.statusCode, headers: h, text, json };
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        throw mapTransportError(err, method, path, this.#s.requestMs);
      }
    });
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: RedfishJson | undefined;
}
