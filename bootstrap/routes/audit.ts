/**
 * `GET /api/v1/audit`: who changed what (admin only: the log names tokens,
 * resources and request bodies, redacted, across every part of the service).
 * Newest first, in cursor pages, filtered by actor, action and target.
 */
import { sql } from 'kysely';
import { Type } from 'typebox';
import { ApiError } from '../errors.js';
import { Page } from '../openapi-contract.js';
import type { ApiContext, ApiInstance } from '../operator-api.js';

const AuditEntry = Type.Object({
  id: Type.String(),
  actor: Type.String(),
  action: Type.String(),
  target: Type.Union([Type.String(), Type.Null()]),
  detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  at: Type.String({ format: 'date-time' }),
});
const AuditPage = Page(AuditEntry, 'AuditPage');

/** Registers the audit route. */
export function registerAuditRoutes(api: ApiInstance, { db }: ApiContext): void {
  api.get(
    '/audit',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['audit'],
        operationId: 'listAudit',
        summary: 'The audit log: every change made through this API, newest first',
        description: 'Filter by actor (token name), action (exact or `prefix*`) and target; cursor pages.',
        querystring: Type.Object(
          {
            actor: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            action: Type.Optional(
              Type.String({
                pattern: '^[A-Za-z][A-Za-z0-9._ /:{}-]{0,99}(\\*)?$',
                description: 'exact, or a prefix ending in * (device.*)',
              }),
            ),
            target: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            cursor: Type.Optional(
              Type.String({ pattern: '^\\d{1,18}$', description: 'nextCursor of the previous page' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: AuditPage },
      },
    },
    async (req) => {
      const { actor, action, target, cursor } = req.query;
      const limit = req.query.limit ?? 100;
      let q = db
        .selectFrom('audit_log')
        .selectAll()
        .orderBy('id', 'desc')
        .limit(limit + 1);
      if (actor !== undefined) q = q.where('actor', '=', actor);
      if (target !== undefined) q = q.where('target', '=', target);
      if (action !== undefined) {
        if (action.endsWith('*')) {
          const prefix = action.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`);
          q = q.where('action', 'like', `${prefix}%`);
        } else q = q.where('action', '=', action);
      }
      if (cursor !== undefined) {
        if (cursor === '0') throw new ApiError('API_ERR_BAD_REQUEST', 'cursor is not one this API returned');
        q = q.where(sql<boolean>`id < ${cursor}::int8`);
      }
      const rows = await q.execute();
      const page = rows.slice(0, limit);
      return {
        items: page.map((r) => ({
          id: String(r.id),
          actor: r.actor,
          action: r.action,
          target: r.target,
          detail: r.detail,
          at: new Date(r.created_at).toISOString(),
        })),
        nextCursor: rows.length > limit ? String(page[page.length - 1]!.id) : null,
      };
    },
  );
}
