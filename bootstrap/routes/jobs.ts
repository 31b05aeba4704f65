/**
 * `/api/v1/jobs`: provisioning, power and decommission jobs over devices named
 * by serial or by a label selector. Creating, cancelling and retrying need the
 * operator role (POST); reading needs viewer. Every POST takes an
 * `Idempotency-Key`.
 */
import { sql } from 'kysely';
import { type Static, Type } from 'typebox';
import type { JobKind, JobState } from '../../db/index.js';
import { audit, setAudit } from '../audit.js';
import { ApiError } from '../errors.js';
import { idempotent } from '../idempotency.js';
import type { JobRunner } from '../job-runner.js';
import { Page } from '../openapi-contract.js';
import type { ApiContext, ApiInstance, ApiRoutes } from '../operator-api.js';
import { Serial } from './devices.js';
import { ResourceName } from './profiles.js';

/** Most devices one job may name (a selector matching more is refused). */
export const MAX_JOB_DEVICES = 10_000;

const Kind = Type.Union([Type.Literal('provision'), Type.Literal('power'), Type.Literal('decommission')]);
const JobStateT = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);
const RunState = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('needs-attention'),
  Type.Literal('cancelled'),
]);
const Labels = Type.Record(
  Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$' }),
  Type.String({ maxLength: 255 }),
  { maxProperties: 64 },
);

const JobBody = Type.Object(
  {
    kind: Kind,
    devices: Type.Optional(Type.Array(Serial, { minItems: 1, maxItems: MAX_JOB_DEVICES, uniqueItems: true })),
    selector: Type.Optional(Type.Object({ labels: Labels }, { additionalProperties: false })),
    strategy: Type.Optional(
      Type.Union([
        Type.Literal('auto'),
        Type.Literal('virtual-media'),
        Type.Literal('image-push'),
        Type.Literal('http-boot'),
      ]),
    ),
    action: Type.Optional(Type.Union([Type.Literal('on'), Type.Literal('off'), Type.Literal('cycle')])),
    installerImage: Type.Optional(ResourceName),
    timeouts: Type.Optional(
      Type.Object(
        {
          awaitDevice: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 3600 })),
          awaitComplete: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 3600 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    $id: 'JobInput',
    additionalProperties: false,
    examples: [{ kind: 'provision', selector: { labels: { rack: 'r3' } }, strategy: 'auto' }],
  },
);
type JobBodyT = Static<typeof JobBody>;

/**
 * One message in the BMC's own words (Redfish `@Message.ExtendedInfo` or a task's `Messages`). A step
 * keeps MessageId, Message, Severity and Resolution of what the BMC said during it; a failed step's
 * messages (those of its error) may also carry MessageArgs and RelatedProperties.
 */
const BmcMessage = Type.Object({
  MessageId: Type.String(),
  Message: Type.Optional(Type.String()),
  Severity: Type.Optional(Type.String()),
  Resolution: Type.Optional(Type.String()),
  MessageArgs: Type.Optional(Type.Array(Type.Unknown())),
  RelatedProperties: Type.Optional(Type.Array(Type.String())),
});

const StepView = Type.Object({
  step: Type.String(),
  attempt: Type.Integer(),
  startedAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  result: Type.String(),
  detail: Type.Union([Type.String(), Type.Null()]),
  errorCode: Type.Union([Type.String(), Type.Null()]),
  bmcMessages: Type.Union([Type.Array(BmcMessage), Type.Null()], {
    description:
      "What the BMC said during this step attempt, successful or not: the newest 20 distinct messages of its answers (ExtendedInfo, task Messages, retried errors); a failed step's own error messages when it has any; null when the BMC said nothing.",
  }),
});
const DeviceRunView = Type.Object({
  serial: Type.String(),
  state: RunState,
  step: Type.String(),
  attempt: Type.Integer(),
  strategy: Type.Optional(Type.String()),
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  error: Type.Union([
    Type.Object({
      code: Type.String(),
      message: Type.String(),
      bmcMessages: Type.Optional(Type.Array(Type.Unknown())),
    }),
    Type.Null(),
  ]),
  traceId: Type.Union([Type.String(), Type.Null()]),
  steps: Type.Optional(Type.Array(StepView)),
});
const Counts = Type.Object({
  queued: Type.Integer(),
  running: Type.Integer(),
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  'needs-attention': Type.Integer(),
  cancelled: Type.Integer(),
  total: Type.Integer(),
});
const JobHead = {
  id: Type.String(),
  kind: Kind,
  state: JobStateT,
  params: Type.Record(Type.String(), Type.Unknown()),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  counts: Counts,
};
const JobViewT = Type.Object({ ...JobHead, devices: Type.Array(DeviceRunView) }, { $id: 'Job' });
const JobPage = Page(Type.Object(JobHead, { $id: 'JobSummary' }), 'JobPage');
const JobId = Type.Object({ id: Type.String({ format: 'uuid', maxLength: 36 }) });

/** Options of {@link jobRoutes}. */
export interface JobRoutesOptions {
  runner: JobRunner;
}

function encodeCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id]), 'utf8').toString('base64url');
}

function decodeCursor(c: string): { at: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as [string, string];
    const d = new Date(at);
    if (typeof id !== 'string' || Number.isNaN(d.getTime())) throw new Error('bad');
    return { at: d, id };
  } catch {
    throw new ApiError('API_ERR_BAD_REQUEST', 'cursor is not one this API returned');
  }
}

/** The devices a job body names: each must exist; a selector must match at least one. */
async function resolveDevices(ctx: ApiContext, body: JobBodyT) {
  if ((body.devices === undefined) === (body.selector === undefined))
    throw new ApiError(
      'API_ERR_BAD_REQUEST',
      'give either devices (serials) or selector, not both or neither',
    );
  if (body.devices) {
    const rows = await ctx.db
      .selectFrom('devices')
      .select(['serial', 'bmc'])
      .where('serial', 'in', body.devices)
      .execute();
    if (rows.length !== body.devices.length) {
      const known = new Set(rows.map((r) => r.serial));
      const unknown = body.devices.filter((s) => !known.has(s));
      throw new ApiError(
        'API_ERR_BAD_REQUEST',
        `devices: no such device: ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ` and ${unknown.length - 10} more` : ''}`,
        { unknownDevices: unknown.slice(0, 100) },
      );
    }
    const order = new Map(body.devices.map((s, i) => [s, i]));
    return rows.sort((a, b) => (order.get(a.serial) as number) - (order.get(b.serial) as number));
  }
  const rows = await ctx.db
    .selectFrom('devices')
    .select(['serial', 'bmc'])
    .where(sql<boolean>`labels @> ${JSON.stringify(body.selector?.labels ?? {})}::jsonb`)
    .orderBy('serial')
    .limit(MAX_JOB_DEVICES + 1)
    .execute();
  if (rows.length === 0) throw new ApiError('API_ERR_BAD_REQUEST', 'selector: no device has these labels');
  if (rows.length > MAX_JOB_DEVICES)
    throw new ApiError('API_ERR_BAD_REQUEST', `selector: matches more than ${MAX_JOB_DEVICES} devices`);
  return rows;
}

/** The jobs routes, wired to a runner (cli/ builds it). */
export function jobRoutes(opts: JobRoutesOptions): ApiRoutes {
  const { runner } = opts;
  return (api: ApiInstance, ctx: ApiContext) => {
    const { db } = ctx;

    api.post(
      '/jobs',
      {
        config: { idempotent: true, errors: ['API_ERR_CONFLICT'] },
        schema: {
          operationId: 'createJob',
          tags: ['jobs'],
          summary:
            'Start a job over devices: provision (power-off to bootstrap-complete), power, or decommission',
          description:
            "Devices by serial or by `selector.labels`. `strategy` (provision): auto (default), virtual-media, image-push or http-boot. `action` (power): on, off or cycle. `installerImage` overrides the profile's. `timeouts` in seconds. Send `Idempotency-Key` to make a retried POST safe.",
          body: JobBody,
          response: { 202: JobViewT },
        },
      },
      async (req, reply) =>
        idempotent(db, req, reply, async () => {
          const body = req.body;
          if (body.kind === 'power' && !body.action)
            throw new ApiError('API_ERR_BAD_REQUEST', 'a power job needs action: on, off or cycle');
          if (body.kind !== 'power' && body.action)
            throw new ApiError('API_ERR_BAD_REQUEST', `action is for power jobs, not ${body.kind}`);
          if (body.kind !== 'provision' && (body.strategy || body.installerImage))
            throw new ApiError(
              'API_ERR_BAD_REQUEST',
              `strategy and installerImage are for provision jobs, not ${body.kind}`,
            );
          const devices = await resolveDevices(ctx, body);
          const busy = await runner.store.busyDevices(devices.map((d) => d.serial));
          if (busy.length > 0)
            throw new ApiError(
              'API_ERR_CONFLICT',
              `already in a job that is not finished: ${busy
                .slice(0, 10)
                .map((b) => `${b.serial} (job ${b.job})`)
                .join(', ')}`,
              { busyDevices: busy.slice(0, 100) },
            );
          const params: Record<string, unknown> = {
            ...(body.kind === 'provision' ? { strategy: body.strategy ?? 'auto' } : {}),
            ...(body.action ? { action: body.action } : {}),
            ...(body.installerImage ? { installerImage: body.installerImage } : {}),
            ...(body.timeouts ? { timeouts: body.timeouts } : {}),
            ...(body.selector ? { selector: body.selector } : {}),
          };
          const view = await runner.create({
            kind: body.kind as JobKind,
            devices: devices.map((d) => ({ serial: d.serial, bmc: d.bmc })),
            params,
            createdBy: req.actor?.name,
          });
          setAudit(req, { skip: true }); // recorded here, with the job's id
          await audit(db, req.actor!.name, 'job.create', view.id, {
            kind: body.kind,
            devices: devices.length,
            ...params,
          });
          reply.header('location', `/api/v1/jobs/${view.id}`);
          return { status: 202, body: view };
        }),
    );

    api.get(
      '/jobs',
      {
        schema: {
          operationId: 'listJobs',
          tags: ['jobs'],
          summary: 'List jobs, newest first, optionally by state or by a device in them (cursor pages)',
          description:
            'Each job with its device counts by state (no per-device detail: read the job for that).',
          querystring: Type.Object({
            state: Type.Optional(JobStateT),
            serial: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
          }),
          response: { 200: JobPage },
        },
      },
      async (req) => {
        const q = req.query;
        const page = await runner.store.list({
          limit: q.limit ?? 50,
          ...(q.state ? { state: q.state as JobState } : {}),
          ...(q.serial ? { serial: q.serial } : {}),
          ...(q.cursor ? { before: decodeCursor(q.cursor) } : {}),
        });
        return {
          items: page.items,
          nextCursor: page.next ? encodeCursor(page.next.created_at.toISOString(), page.next.id) : null,
        };
      },
    );

    api.get(
      '/jobs/:id',
      {
        schema: {
          operationId: 'getJob',
          tags: ['jobs'],
          summary:
            'A job with every device: state, step, attempt and why it stopped (`steps=true`: each step attempt)',
          description: 'Poll it (or follow `job.*` events) until `state` is succeeded, failed or cancelled.',
          params: JobId,
          querystring: Type.Object({ steps: Type.Optional(Type.Boolean()) }),
          response: { 200: JobViewT },
        },
      },
      async (req) => {
        const view = await runner.store.view(req.params.id, { steps: req.query.steps === true });
        if (!view) throw new ApiError('API_ERR_NOT_FOUND', `no job ${req.params.id}`);
        return view;
      },
    );

    api.post(
      '/jobs/:id/cancel',
      {
        config: { idempotent: true, errors: ['API_ERR_CONFLICT'] },
        schema: {
          operationId: 'cancelJob',
          tags: ['jobs'],
          summary: 'Cancel a job: devices not finished stop (media ejected, override cleared where started)',
          description:
            'A finished job cannot be cancelled (409). Safe to retry with the same Idempotency-Key.',
          params: JobId,
          response: { 200: JobViewT },
        },
      },
      async (req, reply) =>
        idempotent(db, req, reply, async () => {
          const before = await runner.store.job(req.params.id);
          if (!before) throw new ApiError('API_ERR_NOT_FOUND', `no job ${req.params.id}`);
          if (before.state === 'succeeded' || before.state === 'failed')
            throw new ApiError('API_ERR_CONFLICT', `job ${before.id} already ${before.state}`);
          const view = await runner.cancel(req.params.id);
          setAudit(req, { skip: true }); // recorded here, with the job's id
          await audit(db, req.actor!.name, 'job.cancel', req.params.id, {});
          return { status: 200, body: view! };
        }),
    );

    api.post(
      '/jobs/:id/retry',
      {
        config: { idempotent: true, errors: ['API_ERR_CONFLICT'] },
        schema: {
          operationId: 'retryJob',
          tags: ['jobs'],
          summary: 'Run the failed (and needs-attention) devices of a finished job again, as a new attempt',
          description:
            'Only a failed job is retried (409 otherwise). Safe to retry with the same Idempotency-Key.',
          params: JobId,
          response: { 202: JobViewT },
        },
      },
      async (req, reply) =>
        idempotent(db, req, reply, async () => {
          const before = await runner.store.job(req.params.id);
          if (!before) throw new ApiError('API_ERR_NOT_FOUND', `no job ${req.params.id}`);
          if (before.state !== 'failed')
            throw new ApiError(
              'API_ERR_CONFLICT',
              `job ${before.id} is ${before.state}: only a failed job is retried`,
            );
          const out = await runner.retry(req.params.id);
          setAudit(req, { skip: true }); // recorded here, with the job's id
          await audit(db, req.actor!.name, 'job.retry', req.params.id, { devices: out?.retried ?? 0 });
          return { status: 202, body: out!.view };
        }),
    );
  };
}
