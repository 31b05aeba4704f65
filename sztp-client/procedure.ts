/**
 * The RFC 8572 §5 procedure as a loop over ports (STYLE.md lesson 10): for
 * each source, fetch bootstrapping data, verify it (§5.4), keep the §5.3 trust
 * state, follow redirect information (§5.5, at most 10 hops) or carry out
 * onboarding information (§5.6), and report progress to trusted servers only.
 * Any failure moves on to the next source; when all fail, wait (exponential
 * backoff with jitter) and go round again, until bootstrap-complete, `once`,
 * or `maxAttempts` passes.
 */
import { randomBytes } from 'node:crypto';
import { parseCertificateBag, ONBOARDING_KEY, REDIRECT_KEY } from '../pki/verify.js';
import { Attr, SpanName, withSpan } from '../otel/index.js';
import { type AgentTraceContext, inRunTrace } from './trace-context.js';
import { AgentError, describeError } from './errors.js';
import type { AgentLog } from './logger.js';
import type {
  BootstrapRequest,
  Executor,
  OnboardingOutcome,
  ProgressType,
  RedirectSourceFactory,
  Reporter,
  Source,
  SourceReply,
  SshHostKey,
  Verifier,
} from './ports.js';
import type { AttemptRecord, StateStore } from './state.js';

/** RFC 8572 §5.3: "MUST cap redirect depth (SHOULD ≤ 10)". */
export const MAX_REDIRECT_DEPTH = 10;

/**
 * Entries of one redirect list that are tried (the rest are ignored with a warning). Depth
 * alone does not bound the work: two entries per level for ten levels is 1,024 fetches.
 */
export const DEFAULT_MAX_REDIRECT_ENTRIES = 8;

/** Redirect hops followed in one pass over all sources, whatever the shape of the tree. */
export const DEFAULT_MAX_REDIRECT_HOPS = 32;

/** Progress in `state.json` (`current`) is written at most this often while fetching. */
const STATE_WRITE_INTERVAL_MS = 1000;

/** Reports sent whatever the reporting level (RFC 8572 §5.6, `reporting-level` minimal). */
const ALWAYS_REPORTED = new Set<ProgressType>([
  'bootstrap-initiated',
  'boot-image-installed-rebooting',
  'bootstrap-complete',
]);

/** Settings of {@link runProcedure}. */
export interface ProcedureOptions {
  /** The sources to try on each pass, in order (discovery runs again every pass). */
  sources: () => Promise<Source[]>;
  /** Makes a source for a server named in redirect information. */
  redirectSource: RedirectSourceFactory;
  verifier: Verifier;
  executor: Executor;
  /** The get-bootstrapping-data input besides the nonce. */
  request: Omit<BootstrapRequest, 'nonce'>;
  /** Send a fresh 32-octet nonce with every request (default true). */
  sendNonce?: boolean;
  /** SSH host keys for bootstrap-complete (read when it is sent). */
  sshHostKeys: () => Promise<SshHostKey[]>;
  /** Trust-anchor certificates for bootstrap-complete (degenerate SignedData, DER). */
  trustAnchorCerts?: Uint8Array[];
  once: boolean;
  /** Passes over all sources before giving up (undefined: forever). */
  maxAttempts?: number;
  /** Wait after a failed pass: `initialMs` doubling up to `maxMs`, with ±25 % jitter. */
  backoff: { initialMs: number; maxMs: number };
  state: StateStore;
  log: AgentLog;
  /** Stops the loop (SIGTERM): sources and waits that take it end at once. */
  signal?: AbortSignal;
  /** Entries tried per redirect list (default {@link DEFAULT_MAX_REDIRECT_ENTRIES}). */
  maxRedirectEntries?: number;
  /** Redirect hops per pass (default {@link DEFAULT_MAX_REDIRECT_HOPS}). */
  maxRedirectHops?: number;
  /** The run's trace context (handed over by the server or given): the agent's spans join it. */
  trace?: AgentTraceContext;
}

/** How a run ended. */
export type ProcedureResult =
  | { outcome: 'bootstrapped'; source: string }
  | { outcome: 'rebooting'; source: string }
  | { outcome: 'gave-up'; error: { code: string; message: string } }
  | { outcome: 'stopped'; error: { code: string; message: string } };

/** One attempt at one source, with its step timings. */
class Attempt {
  readonly rec: AttemptRecord;
  #step = 'start';
  #since = Date.now();
  #written = 0;
  readonly #started = Date.now();
  /** Redirect hops followed so far in this pass (shared by the pass's attempts). */
  hops: { count: number };
  constructor(
    attempt: number,
    source: string,
    private readonly state: StateStore,
    hops: { count: number } = { count: 0 },
  ) {
    this.hops = hops;
    this.rec = {
      attempt,
      source,
      startedAt: new Date().toISOString(),
      finishedAt: '',
      outcome: 'failed',
      step: 'start',
      durationMs: 0,
      steps: {},
    };
  }
  get step(): string {
    return this.#step;
  }
  /**
   * Closes the current step's timing and records the new one in the state file. Fetch and
   * verify steps (one pair per redirect hop) write at most once a second, so a long redirect
   * list is not a fsync per hop; onboarding steps are always written.
   */
  async enter(step: string, source = this.rec.source): Promise<void> {
    const now = Date.now();
    this.rec.steps[this.#step] = (this.rec.steps[this.#step] ?? 0) + (now - this.#since);
    this.#step = step;
    this.#since = now;
    this.rec.step = step;
    if ((step === 'fetch' || step === 'verify') && now - this.#written < STATE_WRITE_INTERVAL_MS) return;
    this.#written = now;
    await this.state.update((s) => {
      s.current = { source, step, since: new Date(now).toISOString() };
    });
  }
  finish(outcome: AttemptRecord['outcome']): AttemptRecord {
    const now = Date.now();
    this.rec.steps[this.#step] = (this.rec.steps[this.#step] ?? 0) + (now - this.#since);
    this.rec.finishedAt = new Date(now).toISOString();
    this.rec.durationMs = now - this.#started;
    this.rec.outcome = outcome;
    return this.rec;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

/** The procedure: one instance per `sztp-client run`. */
export class Procedure {
  readonly #o: ProcedureOptions;
  constructor(options: ProcedureOptions) {
    this.#o = options;
  }

  /** Runs passes over the sources until one bootstraps the device or the agent gives up. */
  async run(): Promise<ProcedureResult> {
    const o = this.#o;
    let last: { code: string; message: string } = {
      code: 'SZTP_CLIENT_ERR_NO_SOURCES',
      message: 'no sources',
    };
    for (let pass = 1; ; pass++) {
      const left = o.maxAttempts === undefined ? null : Math.max(o.maxAttempts - pass, 0);
      await o.state.update((s) => {
        s.status = 'running';
        s.pid = process.pid;
        s.attempts = pass;
        s.retriesLeft = o.once ? 0 : left;
      });
      let sources: Source[] = [];
      try {
        sources = await o.sources();
      } catch (err) {
        last = describeError(err);
        o.log.line('error', 'discover', last.message, { code: last.code });
      }
      if (sources.length === 0 && last.code === 'SZTP_CLIENT_ERR_NO_SOURCES') {
        last = {
          code: 'SZTP_CLIENT_ERR_NO_SOURCES',
          message:
            'no bootstrap server or bootstrapping data found (static URLs, DHCP leases, DNS, directories)',
        };
        o.log.line('warn', 'discover', last.message, { code: last.code });
        await o.state.update((s) => {
          s.lastError = { ...last, at: new Date().toISOString() };
        });
      }
      const hops = { count: 0 };
      for (const source of sources) {
        if (o.signal?.aborted) break;
        const attempt = new Attempt(pass, source.name, o.state, hops);
        try {
          const outcome = await inRunTrace(o.trace, () =>
            withSpan(SpanName.agentSource, { [Attr.sztpSource]: source.name }, () =>
              this.#process(source, attempt, 0, []),
            ),
          );
          const rec = attempt.finish(outcome === 'rebooting' ? 'rebooting' : 'bootstrapped');
          await o.state.update((s) => {
            s.status = outcome === 'rebooting' ? 'rebooting' : 'bootstrapped';
            s.lastAttempt = rec;
            s.history.push(rec);
            delete s.current;
            delete s.pid;
            if (outcome === 'complete') {
              s.completedAt = rec.finishedAt;
              s.bootstrappedBy = rec.redirects?.at(-1) ?? source.name;
              // RFC 8572 §5.2: configuration delivered ⇒ unset the SZTP-enabled flag.
              s.enabled = false;
              s.disabledReason = 'bootstrapped';
            }
          });
          return { outcome: outcome === 'rebooting' ? 'rebooting' : 'bootstrapped', source: source.name };
        } catch (err) {
          last = describeError(err);
          const rec = attempt.finish('failed');
          rec.error = last;
          o.log.line('error', attempt.step, `${source.name}: ${last.message}`, { code: last.code });
          await o.state.update((s) => {
            s.lastAttempt = rec;
            s.history.push(rec);
            s.lastError = { ...last, source: source.name, step: rec.step, at: rec.finishedAt };
            delete s.current;
          });
        }
      }
      if (o.signal?.aborted) return this.#stopped(last);
      const giveUp = o.once || (o.maxAttempts !== undefined && pass >= o.maxAttempts);
      if (giveUp) {
        await o.state.update((s) => {
          s.status = 'failed';
          s.retriesLeft = 0;
          delete s.pid;
        });
        return { outcome: 'gave-up', error: last };
      }
      const base = Math.min(o.backoff.maxMs, o.backoff.initialMs * 2 ** Math.min(pass - 1, 30));
      const wait = Math.round(base * (0.75 + Math.random() * 0.5));
      o.log.line('info', 'backoff', `all sources failed; next pass in ${(wait / 1000).toFixed(1)} s`, {
        pass,
        retriesLeft: left ?? undefined,
      });
      await sleep(wait, o.signal);
      if (o.signal?.aborted) return this.#stopped(last);
    }
  }

  /** SIGTERM: the state says where we were (and why the last pass failed); the next start runs again. */
  async #stopped(last: { code: string; message: string }): Promise<ProcedureResult> {
    await this.#o.state.update((s) => {
      s.status = 'idle';
      delete s.pid;
      delete s.current;
    });
    this.#o.log.line('info', 'stop', 'stopped by a signal; state saved', { lastError: last.code });
    return { outcome: 'stopped', error: { code: 'SZTP_CLIENT_ERR_STOPPED', message: 'stopped by a signal' } };
  }

  /** RFC 8572 §5.3 for one source (recursing into redirects, §5.5). */
  async #process(source: Source, attempt: Attempt, depth: number, via: string[]): Promise<OnboardingOutcome> {
    const o = this.#o;
    await attempt.enter('fetch', source.name);
    // RFC 8572 §7.1: nonce of 16..32 octets, fresh per request.
    const nonce = o.sendNonce === false ? undefined : new Uint8Array(randomBytes(32));
    const reply = await withSpan(SpanName.agentGetBootstrappingData, { [Attr.sztpSource]: source.name }, () =>
      source.fetch({ ...o.request, ...(nonce ? { nonce } : {}) }),
    );
    // The server may have handed its job's trace over just now: the rest of this source's work
    // (verification, onboarding, progress reports) is recorded in it.
    return inRunTrace(o.trace, () =>
      withSpan(SpanName.agentBootstrap, { [Attr.sztpSource]: source.name }, () =>
        this.#handle(source, attempt, depth, via, reply, nonce),
      ),
    );
  }

  /** RFC 8572 §5.3 after the fetch: verify, then follow a redirect or onboard. */
  async #handle(
    source: Source,
    attempt: Attempt,
    depth: number,
    via: string[],
    reply: SourceReply,
    nonce: Uint8Array | undefined,
  ): Promise<OnboardingOutcome> {
    const o = this.#o;
    const serverTrusted = reply.serverTrusted;
    attempt.rec.serverTrusted = serverTrusted;
    o.log.line('info', 'fetch', `got bootstrapping data from ${source.name}`, {
      trusted: serverTrusted,
      signed: reply.data.ownershipVoucher !== undefined,
    });
    await attempt.enter('verify', source.name);
    let verified: ReturnType<Verifier['verify']>;
    try {
      // Files and DNS records were made before our nonce existed: only a server's reply must echo it.
      verified = await withSpan(SpanName.agentVerify, {}, async () =>
        o.verifier.verify(reply.data, nonce && reply.nonceSent ? { nonce } : {}),
      );
    } catch (err) {
      // A trusted server is told why its data was refused; nothing else happens with it.
      const e = describeError(err);
      await reply.reporter
        ?.report({ type: 'parsing-error', message: `${e.code}: ${e.message}` })
        .catch((re: unknown) =>
          o.log.line('warn', 'report', `parsing-error not delivered: ${describeError(re).message}`),
        );
      throw err;
    }
    attempt.rec.signed = verified.signed;
    // RFC 8572 §5.3: trusted by TLS to an anchor we hold, or by valid signed data.
    const trustState = serverTrusted || verified.signed;
    const ci = verified.conveyedInformation;
    o.log.line(
      'info',
      'verify',
      `conveyed information: ${ONBOARDING_KEY in ci ? 'onboarding' : 'redirect'}, ${verified.summary}`,
      {
        trustState,
      },
    );

    if (REDIRECT_KEY in ci) {
      if (depth >= MAX_REDIRECT_DEPTH)
        throw new AgentError(
          'SZTP_CLIENT_ERR_REDIRECT_LOOP',
          `more than ${MAX_REDIRECT_DEPTH} redirects (${via.join(' → ')})`,
        );
      const all = ci[REDIRECT_KEY]['bootstrap-server'];
      const maxEntries = o.maxRedirectEntries ?? DEFAULT_MAX_REDIRECT_ENTRIES;
      const maxHops = o.maxRedirectHops ?? DEFAULT_MAX_REDIRECT_HOPS;
      if (all.length > maxEntries)
        o.log.line(
          'warn',
          'redirect',
          `${source.name} lists ${all.length} bootstrap servers; trying the first ${maxEntries} (--max-redirect-entries)`,
        );
      const servers = all.slice(0, maxEntries);
      const failures: string[] = [];
      for (const server of servers) {
        if (o.signal?.aborted) throw new AgentError('SZTP_CLIENT_ERR_STOPPED', 'stopped by a signal');
        if (++attempt.hops.count > maxHops)
          throw new AgentError(
            'SZTP_CLIENT_ERR_REDIRECT_LOOP',
            `more than ${maxHops} redirect hops in this pass (--max-redirect-hops)`,
          );
        let trustAnchors: Uint8Array[] = [];
        // RFC 8572 §5.5: an untrusted redirect's trust anchors are discarded (blind TLS follows).
        if (trustState && server['trust-anchor']) {
          try {
            trustAnchors = parseCertificateBag(new Uint8Array(Buffer.from(server['trust-anchor'], 'base64')));
          } catch (err) {
            failures.push(`${server.address}: trust-anchor unusable (${describeError(err).message})`);
            continue;
          }
        } else if (server['trust-anchor']) {
          o.log.line(
            'warn',
            'redirect',
            `ignoring the trust anchor for ${server.address}: the redirect is not trusted`,
          );
        }
        const target = { address: server.address, port: server.port ?? 443, trustAnchors };
        let next: Source;
        try {
          // One malformed entry (`127.0.0.1:1`, `http://…`, a path) is skipped, not the list.
          next = o.redirectSource(target);
        } catch (err) {
          const e = describeError(err);
          failures.push(`${String(server.address).slice(0, 100)}: ${e.code}: ${e.message}`);
          o.log.line('warn', 'redirect', `skipping redirect entry: ${e.message}`, { code: e.code });
          continue;
        }
        // The path to this hop only (at most MAX_REDIRECT_DEPTH names), not every sibling tried.
        via.push(next.name);
        attempt.rec.redirects = [...via];
        o.log.line('info', 'redirect', `redirected to ${next.name}`, {
          depth: depth + 1,
          trustAnchor: trustAnchors.length > 0,
        });
        try {
          return await this.#process(next, attempt, depth + 1, via);
        } catch (err) {
          const e = describeError(err);
          if (e.code === 'SZTP_CLIENT_ERR_REDIRECT_LOOP' || e.code === 'SZTP_CLIENT_ERR_STOPPED') throw err;
          if (failures.length < maxEntries)
            failures.push(`${next.name}: ${e.code}: ${e.message.slice(0, 300)}`);
          o.log.line('warn', 'redirect', `${next.name} failed: ${e.message}`, { code: e.code });
        } finally {
          via.pop();
        }
      }
      throw new AgentError('SZTP_CLIENT_ERR_REDIRECT_FAILED', failures.join('; ') || 'empty redirect list');
    }

    // RFC 8572 §5.3: onboarding information is processed only with trust-state TRUE.
    if (!trustState)
      throw new AgentError(
        'SZTP_CLIENT_ERR_UNTRUSTED_UNSIGNED',
        `${source.name} is not trusted and its onboarding information is unsigned; refused`,
      );
    const reporter: Reporter | undefined = reply.reporter;
    const verbose = reply.data.reportingLevel === 'verbose';
    const progress = async (type: ProgressType, message: string): Promise<void> => {
      const step = type.replace(/-(initiated|complete|warning|error|mismatch|installed-rebooting)$/, '');
      if (step !== attempt.step) await attempt.enter(step, source.name);
      const level = type.endsWith('-error') ? 'error' : type.endsWith('-warning') ? 'warn' : 'info';
      o.log.line(level, step, `${type}: ${message}`);
      // RFC 8572 §5.6: untrusted servers get nothing; minimal level gets the initiated/terminal ones.
      if (!reporter) return;
      if (verbose || ALWAYS_REPORTED.has(type) || type.endsWith('-error'))
        await withSpan(SpanName.agentReportProgress, { [Attr.sztpProgressType]: type }, async (span) => {
          span.addEvent(type);
          await reporter.report({ type, message });
        });
    };
    if (!reporter)
      o.log.line(
        'info',
        'onboard',
        `${source.name} is not a trusted server: no progress reports will be sent`,
      );
    await progress('bootstrap-initiated', `sztp-client onboarding from ${source.name}`);
    await progress('parsing-initiated', 'parsing conveyed information');
    await progress('parsing-complete', verified.summary);
    const outcome = await withSpan(SpanName.agentOnboard, { [Attr.sztpSource]: source.name }, () =>
      o.executor.onboard(ci[ONBOARDING_KEY], progress),
    );
    if (outcome === 'rebooting') return outcome;
    await attempt.enter('bootstrap-complete', source.name);
    const keys = await o.sshHostKeys();
    o.log.line('info', 'bootstrap-complete', `bootstrap complete; reporting ${keys.length} SSH host key(s)`);
    if (reporter)
      await withSpan(
        SpanName.agentReportProgress,
        { [Attr.sztpProgressType]: 'bootstrap-complete' },
        async (span) => {
          span.addEvent('bootstrap-complete');
          await reporter.report({
            type: 'bootstrap-complete',
            message: 'bootstrap complete',
            ...(keys.length ? { sshHostKeys: keys } : {}),
            ...(o.trustAnchorCerts?.length ? { trustAnchorCerts: o.trustAnchorCerts } : {}),
          });
        },
      );
    return 'complete';
  }
}
