/**
 * Notifications between the service's replicas: PostgreSQL `LISTEN/NOTIFY` on
 * a dedicated connection (reconnected with backoff, channels re-listened), and
 * in process on PGlite, which serves one process only. A notification is a
 * hint to look again, never the only way a waiter learns of a change: after a
 * reconnect the listener is told with an empty payload, since notifications
 * sent while it was away are lost.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { DatabaseHandle } from './database.js';

/** Largest payload PostgreSQL accepts for NOTIFY (8000 bytes in the default build). */
export const NOTIFY_PAYLOAD_LIMIT = 7900;

/** Listener of one channel; `payload` is empty after a reconnect (something may have been missed). */
export type NotifyListener = (payload: string) => void;

/** Publish/subscribe across the replicas sharing one database. */
export interface Notifier {
  /** Sends `payload` (at most {@link NOTIFY_PAYLOAD_LIMIT} bytes) to every listener of `channel`, here and on other replicas. */
  notify(channel: string, payload: string): Promise<void>;
  /** Listens on `channel`; resolves once listening; returns a function that stops it. */
  listen(channel: string, listener: NotifyListener): Promise<() => void>;
  /** Stops listening everywhere and closes the dedicated connection. */
  close(): Promise<void>;
}

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel))
    throw new Error(`notification channel ${JSON.stringify(channel)} is not a plain identifier`);
}

function checkPayload(payload: string): void {
  if (Buffer.byteLength(payload) > NOTIFY_PAYLOAD_LIMIT)
    throw new Error(
      `notification payload of ${Buffer.byteLength(payload)} bytes exceeds ${NOTIFY_PAYLOAD_LIMIT}`,
    );
}

/** In-process notifications (PGlite: one process holds the database). */
export class LocalNotifier implements Notifier {
  readonly #emitter = new EventEmitter().setMaxListeners(0);

  async notify(channel: string, payload: string): Promise<void> {
    checkChannel(channel);
    checkPayload(payload);
    // Delivered on a later tick, like NOTIFY (which is delivered after commit).
    queueMicrotask(() => this.#emitter.emit(channel, payload));
  }

  async listen(channel: string, listener: NotifyListener): Promise<() => void> {
    checkChannel(channel);
    this.#emitter.on(channel, listener);
    return () => this.#emitter.off(channel, listener);
  }

  async close(): Promise<void> {
    this.#emitter.removeAllListeners();
  }
}

/** PostgreSQL LISTEN/NOTIFY: NOTIFY through the pool, LISTEN on one dedicated client. */
export class PgNotifier implements Notifier {
  readonly #pool: pg.Pool;
  readonly #config: pg.ClientConfig;
  readonly #listeners = new Map<string, Set<NotifyListener>>();
  #client: pg.Client | undefined;
  #connecting: Promise<pg.Client> | undefined;
  #closed = false;
  #retry = 0;

  constructor(pool: pg.Pool, config: pg.ClientConfig) {
    this.#pool = pool;
    this.#config = config;
  }

  async notify(channel: string, payload: string): Promise<void> {
    checkChannel(channel);
    checkPayload(payload);
    await this.#pool.query('select pg_notify($1, $2)', [channel, payload]);
  }

  async listen(channel: string, listener: NotifyListener): Promise<() => void> {
    checkChannel(channel);
    let set = this.#listeners.get(channel);
    if (!set) {
      set = new Set();
      this.#listeners.set(channel, set);
      const client = await this.#connect();
      await client.query(`LISTEN ${channel}`);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    const c = this.#client;
    this.#client = undefined;
    await c?.end().catch(() => undefined);
  }

  #connect(): Promise<pg.Client> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= (async () => {
      const client = new pg.Client(this.#config);
      client.on('notification', (n) => {
        for (const l of this.#listeners.get(n.channel) ?? []) {
          try {
            l(n.payload ?? '');
          } catch {
            // a listener's failure is its own
          }
        }
      });
      const lost = () => {
        if (this.#client !== client) return;
        this.#client = undefined;
        client.end().catch(() => undefined);
        if (!this.#closed) this.#reconnectLater();
      };
      client.on('error', lost);
      client.on('end', lost);
      await client.connect();
      this.#client = client;
      this.#retry = 0;
      return client;
    })().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  #reconnectLater(): void {
    const delay = Math.min(30_000, 250 * 2 ** this.#retry++);
    const t = setTimeout(async () => {
      if (this.#closed) return;
      try {
        const client = await this.#connect();
        for (const channel of this.#listeners.keys()) await client.query(`LISTEN ${channel}`);
        // Anything sent while we were away is lost: tell every listener to look again.
        for (const set of this.#listeners.values()) for (const l of set) l('');
      } catch {
        if (!this.#closed) this.#reconnectLater();
      }
    }, delay);
    t.unref();
  }
}

/** The notifier for an open database: LISTEN/NOTIFY on PostgreSQL, in process on PGlite. */
export function createNotifier(handle: DatabaseHandle): Notifier {
  if (handle.kind === 'postgres' && handle.pool) {
    const o = handle.pool.options as pg.PoolConfig;
    return new PgNotifier(handle.pool, {
      ...(o.connectionString ? { connectionString: o.connectionString } : {}),
      ...(o.connectionTimeoutMillis ? { connectionTimeoutMillis: o.connectionTimeoutMillis } : {}),
      application_name: 'dpu-ztp-listen',
    });
  }
  return new LocalNotifier();
}
