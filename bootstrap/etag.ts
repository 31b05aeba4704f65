/**
 * `ETag` / `If-Match` (RFC 9110 §8.8.3, §13.1.1) for resources automation updates —
 * devices, BMCs, profiles: the ETag is a strong validator computed from the
 * representation the API returns, so it changes exactly when what a client read
 * changes. A PUT with `If-Match` that no longer matches is refused with 412
 * `API_ERR_PRECONDITION_FAILED` (a lost update avoided); without `If-Match` a PUT
 * applies as before. `If-None-Match: *` (RFC 9110 §13.1.2) makes a PUT create-only: it is
 * refused with the same 412 when the resource already exists (the dashboard's "Add a BMC"
 * must not replace a BMC that happens to have the same id).
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/** The strong ETag of a representation (quoted, as the header carries it). */
export function etagOf(view: unknown): string {
  return `"${createHash('sha256').update(JSON.stringify(view)).digest('base64url').slice(0, 22)}"`;
}

/**
 * Evaluates the request's `If-Match` and `If-None-Match` against the current representation
 * (undefined: the resource does not exist): throws 412 when a condition is false, returns
 * when they hold or are absent. Call it where the row is locked (`FOR UPDATE`), so that no
 * change slips in between the check and the write. A row that does not exist yet cannot be
 * locked: a create-only PUT ({@link isCreateOnly}) inserts with ON CONFLICT DO NOTHING and
 * answers {@link alreadyExists} when another request created the row meanwhile.
 */
export function checkIfMatch(req: FastifyRequest, current: unknown | undefined): void {
  const none = headerTags(req, 'if-none-match');
  if (none && current !== undefined) {
    // RFC 9110 §13.1.2: false when `*` and a current representation exists, or when a listed
    // tag matches it (weak comparison: a `W/` prefix is ignored).
    const tag = etagOf(current);
    if (none.includes('*')) throw alreadyExists();
    if (none.some((t) => t.replace(/^W\//, '') === tag))
      throw new ApiError(
        'API_ERR_PRECONDITION_FAILED',
        'If-None-Match: the resource is still at that version; nothing was changed',
      );
  }
  const tags = headerTags(req, 'if-match');
  if (!tags) return;
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

/** Whether the request is a create-only PUT (`If-None-Match: *`, RFC 9110 §13.1.2). */
export function isCreateOnly(req: FastifyRequest): boolean {
  return headerTags(req, 'if-none-match')?.includes('*') ?? false;
}

/** The entity tags (or `*`) of a conditional header, trimmed; undefined when it is absent. */
function headerTags(req: FastifyRequest, name: 'if-match' | 'if-none-match'): string[] | undefined {
  const raw = req.headers[name];
  if (raw === undefined) return undefined;
  return (Array.isArray(raw) ? raw.join(',') : raw).split(',').map((t) => t.trim());
}

/** The 412 of a create-only PUT whose row another request created first (the race `FOR UPDATE` cannot see). */
export function alreadyExists(): ApiError {
  return new ApiError(
    'API_ERR_PRECONDITION_FAILED',
    'If-None-Match: *: the resource already exists; nothing was changed',
  );
}
