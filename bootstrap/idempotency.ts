/**
 * `Idempotency-Key` for POST routes (IETF draft-ietf-httpapi-idempotency-key-header):
 * the first request under a key runs and its response is kept with a hash of
 * the request; the same key with the same request gets that response again
 * (`Idempotent-Replayed: true`), with a different request a 409, and while the
 * first is still running a 409 too. Keys are scoped to the route and the
 * token, and forgotten after a day. Any POST route can wrap its handler in
 * {@link idempotent}.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../db/index.js';
import { ApiError } from './errors.js';

/** How long a key is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

const KEY = /^[\x21-\x7e]{1,255}$/;

/** A JSON value with object keys sorted, so equal bodies hash equal whatever their key order. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/** The hash a request is compared by: method, path and canonical JSON body. */
export function requestHash(method: string, url: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${url}\n${JSON.stringify(canonical(body ?? null))}`)
    .digest('hex');
}

/**
 * Runs `handler` at most once per `Idempotency-Key` (when the request has one) and replays its
 * response for a repeat. Only a successful (< 400) response is kept: a failure can be retried.
 */
export async function idempotent<T>(
  db: Kysely<Database>,
  req: FastifyRequest,
  reply: FastifyReply,
  handler: () => Promise<{ status: number; body: T }>,
): Promise<T> {
  const raw = req.headers['idempotency-key'];
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (key === undefined) {
    const out = await handler();
    reply.code(out.status);
    return out.body;
  }
  if (!KEY.test(key))
    throw new ApiError('API_ERR_VALIDATION', 'Idempotency-Key must be 1-255 visible ASCII characters');
  const scope = `${req.method} ${req.routeOptions.url ?? req.url}:${req.actor?.id ?? 'anonymous'}`;
  const hash = requestHash(req.method, req.url, req.body);
  await db
    .deleteFrom('idempotency_keys')
    .where('scope', '=', scope)
    .where('key', '=', key)
    .where('created_at', '<', new Date(Date.now() - IDEMPOTENCY_TTL_MS))
    .execute();
  const claimed = await db
    .insertInto('idempotency_keys')
    .values({ scope, key, request_hash: hash })
    .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
    .returning('key')
    .executeTakeFirst();
  if (!claimed) {
    const prior = await db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('scope', '=', scope)
      .where('key', '=', key)
      .executeTakeFirst();
    if (!prior || prior.request_hash !== hash)
      throw new ApiError(
        'API_ERR_IDEMPOTENCY_MISMATCH',
        'this Idempotency-Key was used with a different request',
      );
    if (prior.status === null)
      throw new ApiError(
        'API_ERR_IDEMPOTENCY_IN_PROGRESS',
        'a request with this Idempotency-Key is still being processed',
      );
    reply.code(prior.status).header('idempotent-replayed', 'true');
    return prior.response as T;
  }
  try {
    const out = await handler();
    if (out.status < 400)
      await db
        .updateTable('idempotency_keys')
        .set({ status: out.status, response: JSON.stringify(out.body) })
        .where('scope', '=', scope)
        .where('key', '=', key)
        .execute();
    reply.code(out.status);
    return out.body;
  } catch (err) {
    await db
      .deleteFrom('idempotency_keys')
      .where('scope', '=', scope)
      .where('key', '=', key)
      .where('status', 'is', null)
      .execute()
      .catch(() => undefined);
    throw err;
  }
}
