/**
 * The BMC's own words over a span of work (one provisioning step): every
 * `@Message.ExtendedInfo` (at the root, or under `error` — HPE iLO wraps even its
 * successes there) and every Task's `Messages`, from each response the client got
 * — successes, errors, and the 503s it retried on the way. Bounded (the last
 * {@link MESSAGE_LOG_DEFAULTS.limit} distinct messages, each field truncated) and
 * scrubbed of the secrets the client knows (its password, passwords it sent).
 */
import { parseRedfishMessages } from './errors.js';

/** One BMC message as a step records it: the four fields people read (MessageArgs may hold secrets). */
export interface LoggedBmcMessage {
  readonly MessageId: string;
  readonly Message?: string;
  readonly Severity?: string;
  readonly Resolution?: string;
}

/** Bounds of a {@link BmcMessageLog}. */
export interface MessageLogOptions {
  /** Distinct messages kept (the newest win). */
  readonly limit?: number;
  /** Longest `Message` / `Resolution` kept, in characters. */
  readonly maxChars?: number;
}

/** Default bounds of a {@link BmcMessageLog}. */
export const MESSAGE_LOG_DEFAULTS: Required<MessageLogOptions> = Object.freeze({
  /** Distinct messages kept (the newest win). */
  limit: 20,
  /** Longest `Message` / `Resolution` kept, in characters (`MessageId` gets 200). */
  maxChars: 500,
});

/** Secrets shorter than this are not searched for (redacting them would garble every message). */
const MIN_SECRET = 3;
const REDACTED = '[redacted]';
/** The source of messages taken over from an earlier record (see `carryOver`). */
const CARRIED = '\u0000carried';

/** Request-body keys whose string values are never echoed into a log (`Password` of InsertMedia, SimpleUpdate). */
const SECRET_KEY = /pass(word)?|secret|token|credential/i;

/** Collects the BMC's messages of one piece of work; attach with `RedfishClient.withMessageLog`. */
export class BmcMessageLog {
  readonly #limit: number;
  readonly #maxChars: number;
  readonly #entries: { key: string; message: LoggedBmcMessage }[] = [];
  readonly #seen = new Set<string>();
  /** Carried-over messages by their words, not yet heard again in this process. */
  readonly #carried = new Map<string, number>();
  readonly #secrets = new Set<string>();
  #revision = 0;

  constructor(opts: MessageLogOptions = {}) {
    this.#limit = opts.limit ?? MESSAGE_LOG_DEFAULTS.limit;
    this.#maxChars = opts.maxChars ?? MESSAGE_LOG_DEFAULTS.maxChars;
  }

  /** Grows with every message kept: a writer stores {@link messages} again only when it moved. */
  get revision(): number {
    return this.#revision;
  }

  /**
   * Takes over messages kept earlier (another replica's record of the same step attempt, read back
   * from the database) as the oldest ones. Only the four fields of well-formed entries are taken;
   * they were scrubbed when stored and are bounded again here. A message heard again afterwards
   * with the same words (the resuming replica polls the task the first one started) takes the
   * place of its carried copy instead of being kept twice.
   */
  carryOver(earlier: unknown): void {
    if (!Array.isArray(earlier)) return;
    // Each under its own source: two equal messages stored apart (two requests) stay two.
    for (const [i, e] of earlier.slice(-4 * this.#limit).entries()) {
      if (!e || typeof e !== 'object') continue;
      const r = e as Record<string, unknown>;
      if (typeof r.MessageId !== 'string') continue;
      const text = (k: string) => (typeof r[k] === 'string' ? { [k]: r[k] as string } : {});
      this.#add(`${CARRIED} ${i}`, {
        MessageId: r.MessageId,
        ...text('Message'),
        ...text('Severity'),
        ...text('Resolution'),
      });
    }
  }

  /** A value never to appear in a kept message (replaced by `[redacted]`). */
  addSecret(value: string | undefined): void {
    if (value && value.length >= MIN_SECRET) this.#secrets.add(value);
  }

  /** Learns the secrets of a request body: string values under password/secret/token keys, at any depth. */
  addSecretsOf(body: unknown, depth = 0): void {
    if (!body || typeof body !== 'object' || depth > 4) return;
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      if (typeof v === 'string' && SECRET_KEY.test(k)) this.addSecret(v);
      else if (v && typeof v === 'object') this.addSecretsOf(v, depth + 1);
    }
  }

  /**
   * Records the messages of one response. `source` (method and path) keeps the same message from two
   * requests apart while a task polled ten times counts once (a Task's messages are keyed by the task).
   */
  record(source: string, status: number, body: unknown): void {
    if (!body || typeof body !== 'object') return;
    const rec = body as Record<string, unknown>;
    const err = rec.error as Record<string, unknown> | undefined;
    // An error answer: as a failure reads it (with `error.code` when ExtendedInfo lacks it). A success
    // may still carry `error` (iLO: `{"error":{"code":"iLO.0.10.ExtendedInfo",…,"@Message.ExtendedInfo":
    // [{"MessageId":"Base.1.12.Success"}]}}`, HewlettPackard/ilo-rest-api-docs): only its ExtendedInfo counts.
    const found =
      status >= 300
        ? parseRedfishMessages(body)
        : parseRedfishMessages({
            '@Message.ExtendedInfo': [
              ...(Array.isArray(err?.['@Message.ExtendedInfo']) ? err['@Message.ExtendedInfo'] : []),
              ...(Array.isArray(rec['@Message.ExtendedInfo']) ? rec['@Message.ExtendedInfo'] : []),
            ],
          });
    for (const m of found) this.#add(source, m);
    const isTask = typeof rec.TaskState === 'string' || /#Task\./.test(String(rec['@odata.type'] ?? ''));
    if (isTask && Array.isArray(rec.Messages)) {
      const task =
        typeof rec['@odata.id'] === 'string' ? rec['@odata.id'] : `task ${String(rec.Id ?? source)}`;
      for (const m of parseRedfishMessages({ '@Message.ExtendedInfo': rec.Messages })) this.#add(task, m);
    }
  }

  /**
   * The kept messages, oldest first, each field scrubbed of every secret known by now (a password
   * sent after a message arrived is still kept out of it) and then cut to its bound.
   */
  get messages(): LoggedBmcMessage[] {
    return this.#entries.map(({ message: m }) => ({
      MessageId: this.#clean(m.MessageId, 200),
      ...(m.Message !== undefined ? { Message: this.#clean(m.Message, this.#maxChars) } : {}),
      ...(m.Severity !== undefined ? { Severity: this.#clean(m.Severity, 40) } : {}),
      ...(m.Resolution !== undefined ? { Resolution: this.#clean(m.Resolution, this.#maxChars) } : {}),
    }));
  }

  #add(source: string, m: { MessageId: string; Message?: string; Severity?: string; Resolution?: string }) {
    // Kept raw (bounded, with room for a secret across the cut) and scrubbed when read.
    const raw = (t: string) => t.slice(0, 4 * this.#maxChars + 200);
    const message: LoggedBmcMessage = {
      MessageId: raw(m.MessageId),
      ...(m.Message !== undefined ? { Message: raw(m.Message) } : {}),
      ...(m.Severity !== undefined ? { Severity: raw(m.Severity) } : {}),
      ...(m.Resolution !== undefined ? { Resolution: raw(m.Resolution) } : {}),
    };
    // As a stored record reads (scrubbed, cut), so a carried copy and the same message heard again match.
    const words = `${this.#clean(message.MessageId, 200)}\n${this.#clean(message.Message ?? '', this.#maxChars)}\n${this.#clean(message.Severity ?? '', 40)}`;
    const key = `${source}\n${message.MessageId}\n${message.Message ?? ''}\n${message.Severity ?? ''}`;
    if (this.#seen.has(key)) return;
    const carried = this.#carried.get(words) ?? 0;
    if (source.startsWith(CARRIED)) this.#carried.set(words, carried + 1);
    else if (carried > 0) {
      // Heard again after a takeover: the carried copy stands for it (and for its repeats here).
      this.#carried.set(words, carried - 1);
      this.#seen.add(key);
      return;
    }
    // A long wait with ever-new progress messages: forget what fell out rather than grow without end.
    if (this.#seen.size >= 50 * this.#limit) {
      this.#seen.clear();
      for (const e of this.#entries) this.#seen.add(e.key);
    }
    this.#seen.add(key);
    this.#entries.push({ key, message });
    this.#revision++;
    while (this.#entries.length > this.#limit) this.#entries.shift();
  }

  #clean(text: string, max: number): string {
    let t = text;
    for (const s of this.#secrets) t = t.split(s).join(REDACTED);
    return t.length > max ? `${t.slice(0, max - 1)}…` : t;
  }
}
