/**
 * The HTTPS source: RFC 8572 RESTCONF (§7) to one bootstrap server, as JSON
 * (RFC 8040). Each request opens its own TLS connection first and only then
 * decides what to send: whether the server is trusted (its certificate path
 * and name check out against our trust anchors, §5.3) is known before any
 * HTTP Basic secret or progress report leaves the device (§9.6, §5.6).
 *
 * Every wait is bounded: a request has one deadline (`timeoutMs`) covering
 * DNS, TCP, TLS, headers and the whole body, so a server that accepts TLS and
 * never answers — or answers a byte a second — costs at most that; a fetch
 * (host-meta plus get-bootstrapping-data) has an overall deadline per source
 * (`sourceDeadlineMs`); and the agent's abort signal (SIGTERM) ends any of
 * them at once.
 */
import type { AgentTraceContext } from './trace-context.js';
import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, type TLSSocket } from 'node:tls';
import { toPem } from '../pki/verify.js';
import { AgentError } from './errors.js';
import type {
  BootstrappingData,
  BootstrapRequest,
  ProgressReport,
  Reporter,
  Source,
  SourceReply,
} from './ports.js';

const MOD = 'ietf-sztp-bootstrap-server';
const MEDIA = 'application/yang-data+json';
/** Replies larger than this are refused (conveyed information is small; images are not fetched here). */
const MAX_REPLY = 16 * 1024 * 1024;
/** host-meta (RFC 6415) is a few lines of XRD. */
const MAX_HOST_META = 64 * 1024;
/** Default {@link HttpsSourceOptions.sourceDeadlineMs}. */
export const DEFAULT_SOURCE_DEADLINE_MS = 120_000;

/** The device's TLS client identity (RFC 8572 §5.3: send intermediates with the cert). */
export interface ClientIdentity {
  /** PEM: the IDevID followed by its intermediates. */
  certPem: string;
  keyPem: string;
}

/** Settings of one {@link HttpsSource}. */
export interface HttpsSourceOptions {
  /** `https://host[:port]` (RESTCONF root found by RFC 8040 host-meta) or with the RESTCONF root path. */
  url: string;
  /** DER certificates the server's TLS certificate must chain to; empty ⇒ the server is untrusted. */
  trustAnchors: readonly Uint8Array[];
  identity?: ClientIdentity;
  /** HTTP Basic credentials: sent only once the server is authenticated. */
  basic?: { username: string; password: string };
  /** Per-request deadline, ms: DNS, connect, TLS, headers and the whole body. */
  timeoutMs: number;
  /** Overall deadline of one {@link HttpsSource.fetch} (host-meta + the RPC), ms (default 120 s). */
  sourceDeadlineMs?: number;
  /** Ends every request and wait at once (the agent's SIGTERM). */
  signal?: AbortSignal;
  /** The run's trace context: sent as `traceparent`, updated from trusted replies (trace-context.ts). */
  trace?: AgentTraceContext;
}

interface Reply {
  status: number;
  body: string;
  trusted: boolean;
}

/** The reason an aborted signal carries, as an Error (a timeout says so). */
export function abortError(signal: AbortSignal): Error {
  const r = signal.reason as { name?: string; message?: string } | undefined;
  if (r?.name === 'TimeoutError') return new Error('deadline passed (--timeout)');
  return r instanceof Error ? r : new Error('stopped');
}

/** Resolves like `p`, or rejects as soon as `signal` aborts (for waits that take no signal). */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(abortError(signal));
    signal.addEventListener('abort', abort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(err);
      },
    );
  });
}

/** Parses `ietf-restconf:errors` into one line, or returns the body's start. */
function restconfError(body: string): string {
  try {
    const j = JSON.parse(body) as {
      'ietf-restconf:errors'?: { error?: Array<Record<string, unknown>> };
    };
    const e = j['ietf-restconf:errors']?.error?.[0];
    if (e) {
      const tag = e['error-app-tag'] ?? e['error-tag'] ?? 'error';
      return `${String(tag)}: ${String(e['error-message'] ?? '')}`.trim();
    }
  } catch {
    // not RESTCONF JSON
  }
  return body.slice(0, 200).replace(/\s+/g, ' ');
}

function b64(v: unknown, what: string): Uint8Array | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(v))
    throw new AgentError('SZTP_CLIENT_ERR_BAD_RESPONSE', `${what} is not base64`);
  return new Uint8Array(Buffer.from(v, 'base64'));
}

/** Decodes the get-bootstrapping-data output (RFC 8572 §7.1). */
export function parseBootstrappingOutput(body: string): BootstrappingData {
  let out: Record<string, unknown> | undefined;
  try {
    out = (JSON.parse(body) as Record<string, Record<string, unknown>>)[`${MOD}:output`];
  } catch {
    throw new AgentError('SZTP_CLIENT_ERR_BAD_RESPONSE', 'reply is not JSON');
  }
  if (!out || typeof out !== 'object')
    throw new AgentError('SZTP_CLIENT_ERR_BAD_RESPONSE', `reply has no ${MOD}:output`);
  const ci = b64(out['conveyed-information'], 'conveyed-information');
  if (!ci || ci.length === 0)
    throw new AgentError('SZTP_CLIENT_ERR_BAD_RESPONSE', 'reply has no conveyed-information');
  const oc = b64(out['owner-certificate'], 'owner-certificate');
  const ov = b64(out['ownership-voucher'], 'ownership-voucher');
  const level = out['reporting-level'];
  return {
    conveyedInformation: ci,
    ...(oc ? { ownerCertificate: oc } : {}),
    ...(ov ? { ownershipVoucher: ov } : {}),
    ...(level === 'verbose' || level === 'minimal' ? { reportingLevel: level } : {}),
  };
}

/** The report-progress input in JSON (RFC 8572 §7.2; the containers only with bootstrap-complete). */
export function progressInput(p: ProgressReport): Record<string, unknown> {
  const input: Record<string, unknown> = { 'progress-type': p.type };
  if (p.message) input.message = p.message;
  if (p.type === 'bootstrap-complete') {
    if (p.sshHostKeys?.length)
      input['ssh-host-keys'] = {
        'ssh-host-key': p.sshHostKeys.map((k) => ({ algorithm: k.algorithm, 'key-data': k.keyData })),
      };
    if (p.trustAnchorCerts?.length)
      input['trust-anchor-certs'] = {
        'trust-anchor-cert': p.trustAnchorCerts.map((c) => Buffer.from(c).toString('base64')),
      };
  }
  return { [`${MOD}:input`]: input };
}

/** A RESTCONF client for one bootstrap server; also the {@link Reporter} once it proved trusted. */
export class HttpsSource implements Source, Reporter {
  readonly name: string;
  readonly #o: HttpsSourceOptions;
  readonly #url: URL;
  readonly #ca: string[];
  #root: string | undefined;
  #trusted: boolean | undefined;

  constructor(options: HttpsSourceOptions) {
    this.#o = options;
    try {
      this.#url = new URL(options.url);
    } catch {
      throw new AgentError('SZTP_CLIENT_ERR_BAD_SOURCE', `${options.url}: not a usable https URL`);
    }
    if (this.#url.protocol !== 'https:' || this.#url.username || this.#url.password)
      throw new AgentError('SZTP_CLIENT_ERR_BAD_SOURCE', `${options.url}: not an https://host[:port] URL`);
    this.name = `${this.#url.protocol}//${this.#url.host}${this.#url.pathname === '/' ? '' : this.#url.pathname}`;
    this.#ca = options.trustAnchors.map((der) => toPem(der, 'CERTIFICATE'));
    const path = this.#url.pathname.replace(/\/+$/, '');
    // A full RPC URL (some labs put it in option 143) names the root too.
    const rpc = path.indexOf(`/operations/${MOD}:`);
    if (rpc >= 0) this.#root = path.slice(0, rpc);
    else if (path !== '') this.#root = path;
  }

  /** Opens one TLS connection, trying every address of the host once (RFC 8572 §5.5), until `signal`. */
  async #connect(signal: AbortSignal): Promise<TLSSocket> {
    const host = this.#url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(this.#url.port || 443);
    const addresses = isIP(host)
      ? [host]
      : await untilAborted(lookup(host, { all: true }), signal).then(
          (r) => r.map((a) => a.address),
          (err: Error) => {
            throw new AgentError('SZTP_CLIENT_ERR_CONNECT', `${this.name}: ${err.message}`, { cause: err });
          },
        );
    let last: Error | undefined;
    for (const address of addresses) {
      if (signal.aborted) break;
      try {
        return await new Promise<TLSSocket>((resolve, reject) => {
          const socket = connect({
            host: address,
            port,
            ...(isIP(host) ? {} : { servername: host }),
            // RFC 6125 name check against the URL's host, whatever address we dialled.
            checkServerIdentity: (_h, cert) => checkServerIdentity(host, cert),
            // Untrusted servers are still used (§5.3: "provisional" TLS); trust is read from `authorized`.
            rejectUnauthorized: false,
            ...(this.#ca.length ? { ca: this.#ca } : {}),
            ...(this.#o.identity ? { cert: this.#o.identity.certPem, key: this.#o.identity.keyPem } : {}),
            minVersion: 'TLSv1.2',
          });
          const abort = () => socket.destroy(abortError(signal));
          signal.addEventListener('abort', abort, { once: true });
          const done = () => signal.removeEventListener('abort', abort);
          socket.once('secureConnect', () => {
            done();
            resolve(socket);
          });
          socket.once('error', (err) => {
            done();
            reject(err);
          });
          socket.once('close', () => {
            done();
            reject(new Error('connection closed during the TLS handshake'));
          });
        });
      } catch (err) {
        last = err as Error;
      }
    }
    if (signal.aborted) last = abortError(signal);
    throw new AgentError('SZTP_CLIENT_ERR_CONNECT', `${this.name}: ${last?.message ?? 'no address'}`, {
      cause: last,
    });
  }

  /**
   * One request on a fresh connection; `secret` headers are added only to a trusted server.
   * One deadline covers it all (connect to the last body byte), and `outer` (the source's
   * deadline and the agent's abort signal) ends it at once.
   */
  async #request(
    method: 'GET' | 'POST',
    path: string,
    outer: AbortSignal,
    body?: string,
    maxReply = MAX_REPLY,
  ): Promise<Reply> {
    const signal = AbortSignal.any([outer, AbortSignal.timeout(this.#o.timeoutMs)]);
    const socket = await this.#connect(signal);
    // Trusted only with anchors configured and a verified path and name.
    const trusted = this.#ca.length > 0 && socket.authorized;
    if (this.#trusted === true && !trusted) {
      socket.destroy();
      throw new AgentError(
        'SZTP_CLIENT_ERR_CONNECT',
        `${this.name}: server certificate no longer verifies (${String(socket.authorizationError)})`,
      );
    }
    this.#trusted ??= trusted;
    const headers: Record<string, string> = { accept: MEDIA, host: this.#url.host };
    if (body !== undefined) {
      headers['content-type'] = MEDIA;
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    // RFC 8572 §9.6: never hand a password to a server we could not authenticate.
    const traceparent = this.#o.trace?.outgoing();
    if (traceparent) headers.traceparent = traceparent;
    if (trusted && this.#o.basic)
      headers.authorization = `Basic ${Buffer.from(`${this.#o.basic.username}:${this.#o.basic.password}`).toString('base64')}`;
    return new Promise<Reply>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', abort);
        socket.destroy();
        reject(
          err instanceof AgentError
            ? err
            : new AgentError('SZTP_CLIENT_ERR_CONNECT', `${this.name}: ${err.message}`, { cause: err }),
        );
      };
      // Node applies no `timeout` to a socket handed over by createConnection once TLS is
      // up (issue 12): the deadline is this signal, and it destroys the socket itself.
      const abort = () => {
        const err = abortError(signal);
        req.destroy(err);
        fail(err);
      };
      const req = httpRequest({ method, path, headers, createConnection: () => socket });
      signal.addEventListener('abort', abort, { once: true });
      if (signal.aborted) abort();
      req.once('error', fail);
      req.once('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxReply) fail(new Error(`reply larger than ${maxReply} bytes`));
          else chunks.push(c);
        });
        res.once('end', () => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', abort);
          socket.destroy();
          this.#o.trace?.adopt(res.headers.traceparent, trusted);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), trusted });
        });
        res.once('error', fail);
        res.once('aborted', () => fail(new Error('reply cut short')));
      });
      req.end(body);
    });
  }

  /** RFC 8040 §3.1 root discovery, `/restconf` when the server has no host-meta. */
  async #restconfRoot(signal: AbortSignal): Promise<string> {
    if (this.#root !== undefined) return this.#root;
    try {
      const r = await this.#request('GET', '/.well-known/host-meta', signal, undefined, MAX_HOST_META);
      const m =
        r.status === 200 ? /<Link\s[^>]*rel=["']restconf["'][^>]*href=["']([^"']+)["']/i.exec(r.body) : null;
      this.#root = m?.[1] ? m[1].replace(/\/+$/, '') : '/restconf';
    } catch (err) {
      if (err instanceof AgentError && err.code === 'SZTP_CLIENT_ERR_CONNECT') throw err;
      this.#root = '/restconf';
    }
    return this.#root;
  }

  /** The agent's signal joined with a deadline of `ms`. */
  #signal(ms: number): AbortSignal {
    const deadline = AbortSignal.timeout(ms);
    return this.#o.signal ? AbortSignal.any([this.#o.signal, deadline]) : deadline;
  }

  /** Whether the last connection proved the server trusted (undefined before the first). */
  get trusted(): boolean | undefined {
    return this.#trusted;
  }

  /** get-bootstrapping-data (RFC 8572 §7.1). */
  async fetch(request: BootstrapRequest): Promise<SourceReply> {
    const signal = this.#signal(this.#o.sourceDeadlineMs ?? DEFAULT_SOURCE_DEADLINE_MS);
    const root = await this.#restconfRoot(signal);
    const input: Record<string, unknown> = {};
    if (request.signedDataPreferred) input['signed-data-preferred'] = [null];
    if (request.hwModel) input['hw-model'] = request.hwModel;
    if (request.osName) input['os-name'] = request.osName;
    if (request.osVersion) input['os-version'] = request.osVersion;
    if (request.nonce) input.nonce = Buffer.from(request.nonce).toString('base64');
    const r = await this.#request(
      'POST',
      `${root}/operations/${MOD}:get-bootstrapping-data`,
      signal,
      JSON.stringify({ [`${MOD}:input`]: input }),
    );
    if (r.status !== 200)
      throw new AgentError('SZTP_CLIENT_ERR_HTTP', `${this.name}: HTTP ${r.status} ${restconfError(r.body)}`);
    return {
      data: parseBootstrappingOutput(r.body),
      serverTrusted: r.trusted,
      nonceSent: request.nonce !== undefined,
      ...(r.trusted ? { reporter: this } : {}),
    };
  }

  /** report-progress (RFC 8572 §7.2); only ever to a server that proved trusted. */
  async report(progress: ProgressReport): Promise<void> {
    if (this.#trusted !== true)
      throw new AgentError(
        'SZTP_CLIENT_ERR_PROGRESS_REJECTED',
        `${this.name} is not trusted: no progress reports`,
      );
    const signal = this.#signal(this.#o.timeoutMs);
    const root = await this.#restconfRoot(signal);
    const r = await this.#request(
      'POST',
      `${root}/operations/${MOD}:report-progress`,
      signal,
      JSON.stringify(progressInput(progress)),
    );
    if (r.status !== 204)
      throw new AgentError(
        'SZTP_CLIENT_ERR_PROGRESS_REJECTED',
        `${this.name}: report-progress ${progress.type} got HTTP ${r.status} ${restconfError(r.body)}`,
      );
  }
}
