/**
 * Bounded waiting: every wait in `redfish/` (power transitions, tasks, media
 * confirmation, retries) goes through here, so none can hang — each has a
 * deadline and polls with capped exponential backoff.
 */
import { RedfishError } from './errors.js';

/** How a bounded poll behaves. All values in milliseconds. */
export interface PollOptions {
  /** Give up after this long (REDFISH_ERR_WAIT_TIMEOUT). */
  readonly timeoutMs: number;
  /** First delay between polls. */
  readonly intervalMs: number;
  /** Upper bound for the delay (backoff doubles up to this). */
  readonly maxIntervalMs: number;
}

/**
 * The error a run stopped by `signal` fails with: its reason when that is a RedfishError (the overall
 * deadline of `provisionBmc` aborts with one naming the step), else REDFISH_ERR_DEADLINE.
 */
export function abortError(signal: AbortSignal): RedfishError {
  const r: unknown = signal.reason;
  if (r instanceof RedfishError) return r;
  return new RedfishError(
    'REDFISH_ERR_DEADLINE',
    `stopped by the caller: ${r instanceof Error ? r.message : String(r ?? 'aborted')}`,
    { cause: r },
  );
}

/** Resolves after `ms` (or at once when `ms` ≤ 0); rejects early (with {@link abortError}) if `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Delay before retry `attempt` (0-based): base·2^attempt with ±20 % jitter, capped. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const raw = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.max(0, Math.round(raw * (0.8 + Math.random() * 0.4)));
}

/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns seconds, or undefined.
 */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * Polls `probe` until it returns a value other than `undefined`, with backoff, bounded by
 * `opts.timeoutMs` and stopped early by `signal` (an overall deadline). `what` names the awaited
 * state in the timeout error; `lastSeen` describes the latest observation for that error.
 */
export async function pollUntil<T>(
  what: string,
  opts: PollOptions,
  probe: () => Promise<T | undefined>,
  lastSeen?: () => string,
  signal?: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let delay = opts.intervalMs;
  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    const got = await probe();
    if (got !== undefined) return got;
    const left = deadline - Date.now();
    if (left <= 0) {
      const seen = lastSeen ? ` (last seen: ${lastSeen()})` : '';
      throw new RedfishError(
        'REDFISH_ERR_WAIT_TIMEOUT',
        `timed out after ${opts.timeoutMs} ms waiting for ${what}${seen}`,
      );
    }
    await sleep(Math.min(delay, left), signal);
    delay = Math.min(opts.maxIntervalMs, delay * 2);
  }
}
