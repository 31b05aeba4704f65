/**
 * `ETag` / `If-Match` (RFC 9110 §8.8.3, §13.1.1) for resources automation updates —
 * devices, BMCs, profiles: the ETag is a strong validator computed from the
 * representation the API returns, so it changes exactly when what a client read
 * changes. A PUT with `If-Match` that no longer matches is refused with 412
 * `API_ERR_PRECONDITION_FAILED` (a lost update avoided); without `If-Match` a PUT
 * applies as before.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/** The strong ETag of a representation (quoted, as the header carries it). */
export function etagOf(view: unknown): string {
  return `"${createHash('sha256').update(JSON.stringify(view)).digest('base64url').slice(0, 22)}"`;
}

/**
 * Evaluates the request's `If-Match` against the current representation (undefined: the
 * resource does not exist): throws 412 when the condition is false, returns when it holds
 * or when there is no `If-Match`. Call it where the row is locked (`FOR UPDATE`), so that
 * no change slips in between the check and the write.
 */
export function checkIfMatch(req: FastifyRequest, current: unknown | undefined): void {
  const raw = req.headers['if-match'];
  if (raw === undefined) return;
  const header = Array.isArray(raw) ? raw.join(',') : raw;
  const tags = header.split(',').map((t) => t.trim());
  // RFC 9110 §13.1.1: `*` matches any current representation; a weak tag never matches strongly.
  const ok = current !== undefined && (tags.includes('*') || tags.includes(etagOf(current)));
  if (!ok)
    throw new ApiError(
      'API_ERR_PRECONDITION_FAILED',
      current === undefined
        ? 'If-Match: the resource does not exist'
        : 'If-Match: the resource changed since that ETag was read; GET it again and reapply the change',
    );
}
