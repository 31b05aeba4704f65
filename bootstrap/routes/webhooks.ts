/**
 * `/api/v1/webhooks` (admin): subscriptions that receive events by signed
 * HTTP POST, and each one's delivery log. The secret is sealed at rest and
 * never returned.
 */
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Webhook, WebhookDelivery } from '../../db/index.js';
import { ApiError } from '../errors.js';
import { EVENT_PATTERN } from '../events.js';
import { NoContent, Page } from '../openapi-contract.js';
import type { ApiRoutes } from '../operator-api.js';
import type { SecretBox } from '../secrets.js';
import { webhookSecretAad, webhookUrlProblem } from '../webhooks.js';
import { ResourceName } from './profiles.js';

/** What the webhook routes need. */
export interface WebhookRoutesOptions {
  /** Seals secrets (the same key every replica's sender opens them with). */
  box: SecretBox;
  /** Told after a webhook changed (e.g. to wake the sender). */
  onChange?: (id: string) => void;
}

const WebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 8, maxLength: 2048, description: 'http:// or https:// receiver' }),
    secret: Type.String({
      minLength: 16,
      maxLength: 256,
      description: 'HMAC-SHA256 key for X-Dpu-Ztp-Signature; stored encrypted, never returned',
    }),
    events: Type.Optional(
      Type.Array(Type.String({ pattern: EVENT_PATTERN, maxLength: 100 }), {
        minItems: 1,
        maxItems: 50,
        description: 'type patterns (job.state, device.*, *); default all',
      }),
    ),
  },
  {
    $id: 'WebhookInput',
    additionalProperties: false,
    examples: [
      {
        url: 'https://ci.example.net/hooks/dpu-ztp',
        secret: 'a-long-random-shared-secret',
        events: ['job.*'],
      },
    ],
  },
);

const WebhookView = Type.Object(
  {
    id: Type.String(),
    url: Type.String(),
    events: Type.Array(Type.String()),
    secretSet: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    links: Type.Object({ self: Type.String(), deliveries: Type.String() }),
  },
  { $id: 'Webhook' },
);
const WebhookPage = Page(WebhookView, 'WebhookPage');

const DeliveryView = Type.Object(
  {
    id: Type.String(),
    eventId: Type.String(),
    eventType: Type.String(),
    state: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
    attempts: Type.Integer(),
    lastStatus: Type.Union([Type.Integer(), Type.Null()]),
    lastError: Type.Union([Type.String(), Type.Null()]),
    nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'WebhookDelivery' },
);
const WebhookDeliveryPage = Page(DeliveryView, 'WebhookDeliveryPage');

function view(w: Webhook) {
  const self = `/api/v1/webhooks/${encodeURIComponent(w.id)}`;
  return {
    id: w.id,
    url: w.url,
    events: w.events,
    secretSet: true,
    createdAt: new Date(w.created_at).toISOString(),
    updatedAt: new Date(w.updated_at).toISOString(),
    links: { self, deliveries: `${self}/deliveries` },
  };
}

function deliveryView(d: WebhookDelivery & { type: string }) {
  return {
    id: String(d.id),
    eventId: String(d.event_id),
    eventType: d.type,
    state: d.state,
    attempts: d.attempts,
    lastStatus: d.last_status,
    lastError: d.last_error,
    nextAttemptAt: d.state === 'pending' ? new Date(d.next_attempt_at).toISOString() : null,
    createdAt: new Date(d.created_at).toISOString(),
    finishedAt: d.finished_at ? new Date(d.finished_at).toISOString() : null,
  };
}

const Cursor = Type.String({ maxLength: 200, description: 'nextCursor of the previous page' });

/** The webhook route module. */
export function webhookRoutes(o: WebhookRoutesOptions): ApiRoutes {
  return (api, { db }) => {
    const params = Type.Object({ id: ResourceName });

    api.put(
      '/webhooks/:id',
      {
        config: { role: 'admin', audit: 'webhook.put' },
        schema: {
          tags: ['webhooks'],
          operationId: 'putWebhook',
          summary: 'Create or replace a webhook',
          description:
            'Every matching event is POSTed as JSON with X-Dpu-Ztp-Signature: sha256=<hex HMAC-SHA256 of the ' +
            'body>. The receiver must answer 2xx within the timeout (10 s by default); otherwise the ' +
            'delivery is retried with exponential backoff.',
          params,
          body: WebhookBody,
          response: { 200: WebhookView, 201: WebhookView },
        },
      },
      async (req, reply) => {
        const { id } = req.params;
        const bad = webhookUrlProblem(req.body.url);
        if (bad) throw new ApiError('API_ERR_BAD_REQUEST', bad);
        const values = {
          url: req.body.url,
          secret_sealed: o.box.seal(req.body.secret, webhookSecretAad(id)),
          events: JSON.stringify(req.body.events ?? ['*']),
          updated_at: new Date(),
        };
        const existed = await db.selectFrom('webhooks').select('id').where('id', '=', id).executeTakeFirst();
        const row = await db
          .insertInto('webhooks')
          .values({ id, ...values })
          .onConflict((oc) => oc.column('id').doUpdateSet(values))
          .returningAll()
          .executeTakeFirstOrThrow();
        o.onChange?.(id);
        reply.code(existed ? 200 : 201);
        return view(row);
      },
    );

    api.get(
      '/webhooks/:id',
      {
        config: { role: 'admin' },
        schema: {
          tags: ['webhooks'],
          operationId: 'getWebhook',
          summary: 'Read a webhook (never its secret)',
          description: 'Its receiver URL, event patterns and links (the secret is never returned).',
          params,
          response: { 200: WebhookView },
        },
      },
      async (req) => {
        const row = await db
          .selectFrom('webhooks')
          .selectAll()
          .where('id', '=', req.params.id)
          .executeTakeFirst();
        if (!row) throw new ApiError('API_ERR_NOT_FOUND', `no webhook ${req.params.id}`);
        return view(row);
      },
    );

    api.get(
      '/webhooks',
      {
        config: { role: 'admin' },
        schema: {
          tags: ['webhooks'],
          operationId: 'listWebhooks',
          summary: 'List webhooks, by id',
          description: 'Cursor pages ordered by id.',
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
              cursor: Type.Optional(Cursor),
            },
            { additionalProperties: false },
          ),
          response: { 200: WebhookPage },
        },
      },
      async (req) => {
        const limit = req.query.limit ?? 100;
        let q = db
          .selectFrom('webhooks')
          .selectAll()
          .orderBy('id')
          .limit(limit + 1);
        if (req.query.cursor !== undefined) {
          const after = Buffer.from(req.query.cursor, 'base64url').toString('utf8');
          if (!after || Buffer.from(after, 'utf8').toString('base64url') !== req.query.cursor)
            throw new ApiError('API_ERR_BAD_REQUEST', 'cursor is not one this API returned');
          q = q.where('id', '>', after);
        }
        const rows = await q.execute();
        const page = rows.slice(0, limit);
        return {
          items: page.map(view),
          nextCursor:
            rows.length > limit ? Buffer.from(page[page.length - 1]!.id).toString('base64url') : null,
        };
      },
    );

    api.delete(
      '/webhooks/:id',
      {
        config: { role: 'admin', audit: 'webhook.delete' },
        schema: {
          tags: ['webhooks'],
          operationId: 'deleteWebhook',
          summary: 'Delete a webhook and its delivery log (pending deliveries are dropped)',
          description: 'Deliveries not yet made are dropped with it.',
          params,
          response: { 204: NoContent },
        },
      },
      async (req, reply) => {
        const r = await db.deleteFrom('webhooks').where('id', '=', req.params.id).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0)
          throw new ApiError('API_ERR_NOT_FOUND', `no webhook ${req.params.id}`);
        o.onChange?.(req.params.id);
        reply.code(204);
      },
    );

    api.get(
      '/webhooks/:id/deliveries',
      {
        config: { role: 'admin' },
        schema: {
          tags: ['webhooks'],
          operationId: 'listWebhookDeliveries',
          summary: "A webhook's deliveries, newest first",
          description:
            'Each delivery with its attempts, last HTTP status or error, and next attempt; cursor pages.',
          params,
          querystring: Type.Object(
            {
              state: Type.Optional(
                Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
              ),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
              cursor: Type.Optional(
                Type.String({ pattern: '^\\d{1,18}$', description: 'nextCursor of the previous page' }),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: WebhookDeliveryPage },
        },
      },
      async (req) => {
        const { id } = req.params;
        const limit = req.query.limit ?? 100;
        const hook = await db.selectFrom('webhooks').select('id').where('id', '=', id).executeTakeFirst();
        if (!hook) throw new ApiError('API_ERR_NOT_FOUND', `no webhook ${id}`);
        let q = db
          .selectFrom('webhook_deliveries as d')
          .innerJoin('events as e', 'e.id', 'd.event_id')
          .selectAll('d')
          .select('e.type')
          .where('d.webhook', '=', id)
          .orderBy('d.id', 'desc')
          .limit(limit + 1);
        if (req.query.state) q = q.where('d.state', '=', req.query.state);
        if (req.query.cursor) q = q.where(sql<boolean>`d.id < ${req.query.cursor}::int8`);
        const rows = await q.execute();
        const page = rows.slice(0, limit);
        return {
          items: page.map(deliveryView),
          nextCursor: rows.length > limit ? String(page[page.length - 1]!.id) : null,
        };
      },
    );
  };
}
