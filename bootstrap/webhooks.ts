/**
 * Webhooks: each event appended to the log queues one row in
 * `webhook_deliveries` per matching webhook (in the appending transaction,
 * see `EventLog.append`), and a {@link WebhookSender} in every replica POSTs
 * them. Durable and at-least-once: a delivery is claimed with
 * `FOR UPDATE SKIP LOCKED` and leased by moving its due time past the request
 * timeout, so two replicas never send it at the same time, and a replica that
 * dies mid-request leaves it due again once the lease runs out. Failures
 * retry with exponential backoff up to `maxAttempts`.
 *
 * The body is the event's JSON (as on the SSE stream), signed
 * `X-Dpu-Ztp-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>`.
 * A receiver must answer 2xx within the timeout; anything else is a failure.
 */
import { createHmac } from 'node:crypto';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { request } from 'undici';
import type { Database } from '../db/index.js';
import type { EventHub } from './events.js';
import type { SecretBox } from './secrets.js';

/** Associated data a webhook's secret is sealed with (a sealed secret copied to another row does not open). */
export function webhookSecretAad(id: string): string {
  return `webhook:${id}`;
}

/** `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, as sent in `X-Dpu-Ztp-Signature`. */
export function signWebhookBody(secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Why a webhook URL is refused (undefined: acceptable). */
export function webhookUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'url is not a valid absolute URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return `url must be http or https, not ${u.protocol}`;
  if (u.username || u.password) return 'url must not carry credentials: the secret signs the body instead';
  if (u.hash) return 'url must not have a #fragment';
  return undefined;
}

/** Tuning of webhook delivery (operator-wide). */
export interface WebhookSenderOptions {
  db: Kysely<Database>;
  /** Opens the sealed secrets. */
  box: SecretBox;
  /** Request timeout: the receiver must answer 2xx within it (default 10 s). */
  timeoutMs?: number;
  /** Attempts before a delivery is marked failed (default 10). */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt (default 2 s). */
  backoffBaseMs?: number;
  /** Largest retry delay (default 1 h). */
  backoffMaxMs?: number;
  /** Fallback poll for due retries and other replicas' work (default 5 s). */
  pollMs?: number;
  /** Deliveries claimed and sent at once (default 8). */
  batch?: number;
  /** Told of deliveries that failed an attempt and of internal errors. */
  onError?: (err: unknown, delivery?: { id: string; webhook: string }) => void;
}

interface Claimed {
  id: string;
  webhook: string;
  attempts: number;
  url: string;
  secret_sealed: Uint8Array;
  event_id: string;
  type: string;
  serial: string | null;
  job: string | null;
  data: Record<string, unknown>;
  created_at: Date | string;
}

/** The delay before retry number `attempt + 1` (exponential, capped, ±20 % jitter). */
export function webhookBackoffMs(attempt: number, baseMs: number, maxMs: number, rand = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp * (0.8 + 0.4 * rand()));
}

/** Sends due webhook deliveries; one per process, woken by the event hub. */
export class WebhookSender {
  readonly #o: Required<Omit<WebhookSenderOptions, 'onError'>> & WebhookSenderOptions;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #poll: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryAt = Number.POSITIVE_INFINITY;
  #unsubscribe: (() => void) | undefined;
  #hub: EventHub | undefined;
  /** Whether any webhook existed at the last look (deliveries exist only for webhooks). */
  #active = true;
  #lastLook = 0;

  constructor(opts: WebhookSenderOptions) {
    this.#o = {
      timeoutMs: 10_000,
      maxAttempts: 10,
      backoffBaseMs: 2_000,
      backoffMaxMs: 3_600_000,
      pollMs: 5_000,
      batch: 8,
      ...opts,
    };
  }

  /** Starts sending: now, on every batch of new events, and on the fallback poll. */
  start(hub?: EventHub): void {
    this.#hub = hub;
    this.#poll = setInterval(() => this.refresh(), this.#o.pollMs);
    this.#poll.unref();
    this.refresh();
  }

  /**
   * Looks again whether any webhook exists, then for due deliveries. With no
   * webhook (the common case) the sender neither follows the event hub nor
   * claims anything, so events cost it nothing; a webhook added on another
   * replica is noticed at the next poll (its deliveries wait in the table).
   */
  refresh(): void {
    if (this.#stopped) return;
    this.#lastLook = 0;
    this.wake();
  }

  #follow(active: boolean): void {
    this.#active = active;
    if (active && !this.#unsubscribe && this.#hub) this.#unsubscribe = this.#hub.subscribe(() => this.wake());
    if (!active && this.#unsubscribe) {
      this.#unsubscribe();
      this.#unsubscribe = undefined;
    }
  }

  /** Stops claiming; waits for requests in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    clearInterval(this.#poll);
    clearTimeout(this.#retryTimer);
    await this.#running;
  }

  /** Looks for due deliveries now (coalesced). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      let n = 0;
      try {
        if (this.#lastLook === 0 || Date.now() - this.#lastLook >= this.#o.pollMs) {
          const r = await sql<{ any: boolean }>`select exists (select 1 from webhooks) as any`.execute(
            this.#o.db,
          );
          this.#lastLook = Date.now();
          if (this.#stopped) return;
          this.#follow(r.rows[0]?.any === true);
        }
        if (!this.#active) return;
        n = await this.sendDue();
      } catch (err) {
        this.#o.onError?.(err);
        return;
      }
      if (n === this.#o.batch) this.#again = true;
    } while (this.#again && !this.#stopped);
  }

  /** Claims up to one batch of due deliveries and sends them; returns how many were claimed. */
  async sendDue(): Promise<number> {
    const o = this.#o;
    // The lease: a claimed row is not due again until well after the request's timeout.
    const leaseMs = o.timeoutMs * 2 + 5_000;
    const claimed = await sql<Claimed>`
      update webhook_deliveries d
         set attempts = d.attempts + 1,
             next_attempt_at = now() + ${leaseMs} * interval '1 millisecond'
        from events e, webhooks w
       where d.id in (select id from webhook_deliveries
                       where state = 'pending' and next_attempt_at <= now()
                       order by next_attempt_at, id
                       limit ${o.batch}
                       for update skip locked)
         and e.id = d.event_id and w.id = d.webhook
      returning d.id::text as id, d.webhook, d.attempts, w.url, w.secret_sealed, e.id::text as event_id,
                e.type, e.serial, e.job, e.data, e.created_at`.execute(o.db);
    await Promise.all(claimed.rows.map((c) => this.#deliver(c)));
    return claimed.rows.length;
  }

  async #deliver(c: Claimed): Promise<void> {
    const o = this.#o;
    const body = JSON.stringify({
      id: c.event_id,
      type: c.type,
      serial: c.serial,
      job: c.job,
      data: c.data ?? {},
      createdAt: new Date(c.created_at).toISOString(),
    });
    let status: number | null = null;
    let error: string | null = null;
    try {
      const secret = o.box.openString(c.secret_sealed, webhookSecretAad(c.webhook));
      const res = await request(c.url, {
        method: 'POST',
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'dpu-ztp-webhook',
          'x-dpu-ztp-signature': signWebhookBody(secret, body),
          'x-dpu-ztp-event': c.type,
          'x-dpu-ztp-event-id': c.event_id,
          'x-dpu-ztp-delivery': c.id,
        },
        headersTimeout: o.timeoutMs,
        bodyTimeout: o.timeoutMs,
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      status = res.statusCode;
      // The answer's body is not read beyond discarding it (bounded by undici's dump limit).
      await res.body.dump().catch(() => {});
      if (status < 200 || status >= 300) error = `the receiver answered ${status}`;
    } catch (err) {
      error = (err as Error).message || String(err);
    }
    try {
      if (error === null) {
        await o.db
          .updateTable('webhook_deliveries')
          .set({ state: 'delivered', last_status: status, last_error: null, finished_at: new Date() })
          .where(sql<boolean>`id = ${c.id}::int8`)
          .execute();
        return;
      }
      o.onError?.(new Error(error), { id: c.id, webhook: c.webhook });
      const final = c.attempts >= o.maxAttempts;
      const delay = webhookBackoffMs(c.attempts, o.backoffBaseMs, o.backoffMaxMs);
      await o.db
        .updateTable('webhook_deliveries')
        .set({
          state: final ? 'failed' : 'pending',
          last_status: status,
          last_error: error.slice(0, 500),
          ...(final ? { finished_at: new Date() } : {}),
          next_attempt_at: sql`now() + ${delay} * interval '1 millisecond'`,
        })
        .where(sql<boolean>`id = ${c.id}::int8`)
        .execute();
      if (!final) this.#retryIn(delay);
    } catch (err) {
      // The lease runs out and another attempt follows.
      o.onError?.(err, { id: c.id, webhook: c.webhook });
    }
  }

  /** Wakes this process when a retry falls due (other replicas find it on their poll). */
  #retryIn(ms: number): void {
    const at = Date.now() + ms;
    if (this.#stopped || at >= this.#retryAt) return;
    clearTimeout(this.#retryTimer);
    this.#retryAt = at;
    this.#retryTimer = setTimeout(() => {
      this.#retryAt = Number.POSITIVE_INFINITY;
      this.wake();
    }, ms + 5);
    this.#retryTimer.unref();
  }
}
