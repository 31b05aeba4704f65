/**
 * API bearer tokens: random, shown once, stored as SHA-256 hashes. Roles are
 * ordered admin > operator > viewer.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { type Kysely, sql } from 'kysely';
import type { ApiToken, Database, TokenRole } from '../db/index.js';

/** Token roles, most powerful first. */
export const ROLES: readonly TokenRole[] = ['admin', 'operator', 'viewer'];
const RANK: Record<TokenRole, number> = { admin: 3, operator: 2, viewer: 1 };

/** Whether `have` may do what needs `need`. */
export function roleAllows(have: TokenRole, need: TokenRole): boolean {
  return RANK[have] >= RANK[need];
}

const PREFIX = 'dztp_';

/** SHA-256 of a token (hex): tokens are 256-bit random, so a fast hash is enough. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A token as created: the plaintext is returned once and never stored. */
export interface CreatedToken {
  id: string;
  name: string;
  role: TokenRole;
  token: string;
}

/** Creates a token with `role`; returns its plaintext once. */
export async function createToken(
  db: Kysely<Database>,
  role: TokenRole,
  name: string,
): Promise<CreatedToken> {
  const token = PREFIX + randomBytes(32).toString('base64url');
  const id = randomUUID();
  await db
    .insertInto('api_tokens')
    .values({ id, name, role, token_hash: hashToken(token) })
    .execute();
  return { id, name, role, token };
}

/** Looks up a live (not revoked) token by its plaintext. */
export async function findToken(db: Kysely<Database>, token: string): Promise<ApiToken | undefined> {
  if (!token.startsWith(PREFIX) || token.length > 200) return undefined;
  const h = hashToken(token);
  const row = await db
    .selectFrom('api_tokens')
    .selectAll()
    .where('token_hash', '=', h)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  // The lookup is by hash; compare again in constant time for good measure.
  if (!row || !timingSafeEqual(Buffer.from(row.token_hash), Buffer.from(h))) return undefined;
  return row;
}

/**
 * On first start: when no admin token exists, creates one and writes it to
 * `file` (mode 0600). Returns the path when a token was written.
 */
export async function ensureAdminToken(db: Kysely<Database>, file: string): Promise<string | undefined> {
  const existing = await db
    .selectFrom('api_tokens')
    .select('id')
    .where('role', '=', 'admin')
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (existing && existsSync(file)) return undefined;
  if (existing) return undefined; // another replica made it; its data dir holds the file
  const created = await createToken(db, 'admin', 'initial-admin');
  writeFileSync(file, `${created.token}\n`, { mode: 0o600 });
  return file;
}

/** Options of {@link TokenUsage}. */
export interface TokenUsageOptions {
  /** Write the batch at most this long after a token was used, ms (default 5 000). */
  flushMs?: number;
  now?: () => Date;
  /** Told when a batch could not be written (it is dropped: `last_used_at` is a hint). */
  onError?: (err: unknown) => void;
}

/**
 * Records when each token was last used (`api_tokens.last_used_at`), batched: a use costs
 * a map write, and one UPDATE per `flushMs` stores the latest time of every token used
 * since — never a write per request. Memory is one entry per token in use.
 */
export class TokenUsage {
  readonly #db: Kysely<Database>;
  readonly #flushMs: number;
  readonly #now: () => Date;
  readonly #onError: ((err: unknown) => void) | undefined;
  #pending = new Map<string, Date>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(db: Kysely<Database>, options: TokenUsageOptions = {}) {
    this.#db = db;
    this.#flushMs = options.flushMs ?? 5_000;
    this.#now = options.now ?? (() => new Date());
    this.#onError = options.onError;
  }

  /** Notes a use of token `id` now. */
  used(id: string): void {
    this.#pending.set(id, this.#now());
    this.#timer ??= setTimeout(() => void this.flush(), this.#flushMs).unref();
  }

  /** Writes the noted uses (on close, or before reading them back). */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = new Map();
    if (batch.size === 0) return this.#writing;
    const ids = [...batch.keys()];
    const ats = [...batch.values()].map((d) => d.toISOString());
    this.#writing = this.#writing.then(async () => {
      try {
        // Never move the time backwards (another replica may have written a later use).
        await sql`update api_tokens set last_used_at = greatest(coalesce(last_used_at, u.at), u.at)
          from unnest(${ids}::text[], ${ats}::timestamptz[]) as u(id, at)
          where api_tokens.id = u.id`.execute(this.#db);
      } catch (err) {
        this.#onError?.(err);
      }
    });
    return this.#writing;
  }
}
