/**
 * The audit log: who changed what through the operator API. Written by one
 * hook for every mutating request (POST, PUT, PATCH, DELETE) that succeeded,
 * so a new route is audited without remembering to; a route may name its
 * action (`config.audit`, else its `operationId`) and add a target or detail
 * with {@link setAudit}. Request bodies are recorded with secrets redacted.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../db/index.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The audit action of a mutating route (default: its operationId, else `METHOD /path`). */
    audit?: string;
  }
  interface FastifyRequest {
    /** What the route adds to its audit record. */
    auditNote?: AuditNote;
  }
}

/** What a route may say about its own audit record. */
export interface AuditNote {
  action?: string;
  target?: string;
  detail?: Record<string, unknown>;
  /** The request changed nothing after all (a dry run): no record. */
  skip?: boolean;
}

/** Adds to the audit record of this request (merged; later calls win). */
export function setAudit(req: FastifyRequest, note: AuditNote): void {
  req.auditNote = {
    ...req.auditNote,
    ...note,
    ...(note.detail || req.auditNote?.detail ? { detail: { ...req.auditNote?.detail, ...note.detail } } : {}),
  };
}

/** Appends one audit record (actor = token name). */
export async function audit(
  db: Kysely<Database>,
  actor: string,
  action: string,
  target: string | null,
  detail?: Record<string, unknown>,
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({ actor, action, target, detail: detail ? JSON.stringify(detail) : null })
    .execute();
}

/** Field names whose values never reach the audit log. */
const SECRET_KEY = /pass(word|phrase)?|secret|token|private|credential|^key$|apikey|authorization/i;
const MAX_STRING = 200;
const MAX_KEYS = 64;

/**
 * A copy of a request body fit for the audit log: secret-named fields become
 * `[redacted]`, long strings `[N chars]`, and depth and width are bounded.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.length > MAX_STRING ? `[${value.length} chars]` : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= 4) return '[…]';
  if (Array.isArray(value)) return value.slice(0, MAX_KEYS).map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value).slice(0, MAX_KEYS)) {
    out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The `onSend` hook that records a succeeded mutating request before its
 * response leaves (an acknowledged change is an audited one). A failure to
 * write is logged, not turned into an error: the change itself has happened.
 */
export function auditHook(db: Kysely<Database>) {
  return async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (!MUTATING.has(req.method) || reply.statusCode >= 400 || !req.actor) return payload;
    const note = req.auditNote ?? {};
    if (note.skip) return payload;
    const route = req.routeOptions;
    const action =
      note.action ??
      route.config.audit ??
      (route.schema as { operationId?: string } | undefined)?.operationId ??
      `${req.method} ${route.url}`;
    const params = (req.params ?? {}) as Record<string, string>;
    const target = note.target ?? Object.values(params)[0] ?? null;
    const body =
      req.body && typeof req.body === 'object' && !isStream(req.body) ? redact(req.body) : undefined;
    try {
      await audit(db, req.actor.name, action, target, {
        method: req.method,
        path: req.url.split('?')[0],
        status: reply.statusCode,
        ...(body !== undefined ? { body } : {}),
        ...(note.detail ? (redact(note.detail) as Record<string, unknown>) : {}),
      });
    } catch (err) {
      req.log.error({ err, action, target }, 'could not write the audit record');
    }
    return payload;
  };
}

function isStream(v: object): boolean {
  return typeof (v as { pipe?: unknown }).pipe === 'function';
}
