/**
 * `/api/v1/devices`: the device inventory — register, list, inspect, approve
 * held devices, and read each device's bootstrap event history.
 */
import { sql } from 'kysely';
import { type Static, Type } from 'typebox';
import { type Device, type DeviceState, isStorableText } from '../../db/index.js';
import { hashPassword } from '../../pki/index.js';
import { setAudit } from '../audit.js';
import { ApiError } from '../errors.js';
import { alreadyExists, checkIfMatch, etagOf, isCreateOnly } from '../etag.js';
import { NoContent, Page } from '../openapi-contract.js';
import type { ApiContext, ApiInstance } from '../operator-api.js';
import { voucherUploadProblem } from '../voucher-upload.js';
import { isBase64, ResourceName } from './profiles.js';

/** Device serial numbers as they appear in IDevID subjects. */
export const Serial = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$', maxLength: 128 });
const State = Type.Union([
  Type.Literal('registered'),
  Type.Literal('pending'),
  Type.Literal('bootstrapping'),
  Type.Literal('provisioned'),
  Type.Literal('failed'),
]);

/**
 * A label key, as Kubernetes spells them: an optional DNS-subdomain prefix (lowercase, at
 * most 253 characters) and `/`, then a name of 1–63 characters that starts and ends with
 * a letter or digit and may hold `-`, `_` and `.` between (`rack`, `site.example/row-3`).
 */
export const LabelKey = Type.String({
  pattern:
    '^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$',
  maxLength: 317,
});

/** Labels of a device as written: up to 64 keys ({@link LabelKey}), values free text of up to 255 characters. */
export const Labels = Type.Record(LabelKey, Type.String({ maxLength: 255 }), {
  maxProperties: 64,
  propertyNames: { maxLength: 317 },
  // A Record on a patterned key lists the pattern only: keys that miss it must be refused too.
  additionalProperties: false,
});

/** Labels as read back: every stored key, whatever pattern was in force when it was written. */
const LabelsView = Type.Object({}, { additionalProperties: Type.String() });
/** The label filter of list routes: `label=k=v`, repeatable, every pair must match. */
export const LabelQuery = Type.Array(Type.String({ pattern: '^[^=]{1,317}=[^\\u0000-\\u001f]{0,255}$' }), {
  maxItems: 16,
  description: '`key=value`; repeat to require several labels',
});

/** `label=k=v` query values as one labels object. */
export function labelFilter(pairs: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf('=');
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

const DeviceBody = Type.Object(
  {
    profile: Type.Optional(ResourceName),
    hwModel: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    labels: Type.Optional(Labels),
    bmc: Type.Optional(
      Type.Union([ResourceName, Type.Null()], {
        description: 'id of the BMC the device is reached through (`/api/v1/bmcs/{id}`); null clears it',
      }),
    ),
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 256 })),
    ownershipVoucher: Type.Optional(Type.String({ minLength: 4, maxLength: 1024 * 1024 })),
  },
  {
    $id: 'DeviceInput',
    additionalProperties: false,
    examples: [
      {
        profile: 'bf3-ubuntu',
        hwModel: 'BlueField-3',
        labels: { rack: 'r3', site: 'lab-a' },
        bmc: 'bmc-r3-07',
      },
    ],
  },
);
type DeviceBodyT = Static<typeof DeviceBody>;

const DeviceView = Type.Object(
  {
    serial: Type.String(),
    profile: Type.Union([Type.String(), Type.Null()]),
    state: State,
    hwModel: Type.Union([Type.String(), Type.Null()]),
    labels: LabelsView,
    bmc: Type.Union([Type.String(), Type.Null()]),
    hasPassword: Type.Boolean(),
    hasOwnershipVoucher: Type.Boolean(),
    idevidIssuer: Type.Union([Type.String(), Type.Null()]),
    idevidFingerprint: Type.Union([Type.String(), Type.Null()], {
      description:
        'SHA-256 of the IDevID the device presented (colon hex, lowercase; recorded by the bootstrap ' +
        'server on its first mTLS request): `GET /revoked-idevids/{fingerprint}` says whether it is revoked',
    }),
    lastProgress: Type.Union([
      Type.Object({
        type: Type.String(),
        message: Type.Union([Type.String(), Type.Null()]),
        at: Type.String({ format: 'date-time' }),
      }),
      Type.Null(),
    ]),
    sshHostKeys: Type.Union([
      Type.Array(Type.Object({ algorithm: Type.String(), keyData: Type.String() })),
      Type.Null(),
    ]),
    trustAnchorCerts: Type.Union([Type.Array(Type.String()), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    links: Type.Object({ self: Type.String(), events: Type.String() }),
  },
  { $id: 'Device' },
);
const DevicePage = Page(DeviceView, 'DevicePage');
const DeviceApproval = Type.Object(
  { profile: Type.Optional(ResourceName) },
  { $id: 'DeviceApproval', additionalProperties: false, examples: [{ profile: 'bf3-ubuntu' }] },
);
/** The approve body may be left out (module level: a schema with an `$id` is compiled once). */
const OptionalDeviceApproval = Type.Optional(DeviceApproval);
const DeviceEventList = Type.Object(
  {
    items: Type.Array(
      Type.Object({
        id: Type.String({ description: 'give it as `after` to read on from here' }),
        kind: Type.String(),
        progressType: Type.Union([Type.String(), Type.Null()]),
        message: Type.Union([Type.String(), Type.Null()]),
        remoteAddress: Type.Union([Type.String(), Type.Null()]),
        tlsIdentity: Type.Union([Type.String(), Type.Null()]),
        detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
        at: Type.String({ format: 'date-time' }),
      }),
    ),
  },
  { $id: 'DeviceEventList' },
);

/** The API view of a device row. */
export function deviceView(d: Device) {
  const self = `/api/v1/devices/${encodeURIComponent(d.serial)}`;
  return {
    serial: d.serial,
    profile: d.profile,
    state: d.state,
    hwModel: d.hw_model,
    labels: d.labels ?? {},
    bmc: d.bmc,
    hasPassword: d.password_hash !== null,
    hasOwnershipVoucher: d.ownership_voucher !== null,
    idevidIssuer: d.idevid_issuer,
    idevidFingerprint: d.idevid_fingerprint,
    lastProgress: d.last_progress_type
      ? {
          type: d.last_progress_type,
          message: d.last_progress_message,
          at: (d.last_progress_at as Date).toISOString(),
        }
      : null,
    sshHostKeys: d.ssh_host_keys ?? null,
    trustAnchorCerts: d.trust_anchor_certs ?? null,
    createdAt: d.created_at.toISOString(),
    updatedAt: d.updated_at.toISOString(),
    links: { self, events: `${self}/events` },
  };
}

/** Reads a list cursor (base64url of the last key of the previous page). */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const s = Buffer.from(cursor, 'base64url').toString('utf8');
  // A cursor is a serial this API returned: it round-trips and is storable text (`AA` decodes to U+0000).
  if (!s || Buffer.from(s, 'utf8').toString('base64url') !== cursor || !isStorableText(s))
    throw new ApiError('API_ERR_BAD_REQUEST', 'cursor is not one this API returned');
  return s;
}

async function prepare(ctx: ApiContext, serial: string, body: DeviceBodyT) {
  const out: Record<string, unknown> = {};
  if (body.profile !== undefined) {
    const p = await ctx.db
      .selectFrom('profiles')
      .select('name')
      .where('name', '=', body.profile)
      .executeTakeFirst();
    if (!p) throw new ApiError('API_ERR_BAD_REQUEST', `profile: no profile named ${body.profile}`);
    out.profile = body.profile;
  }
  if (body.hwModel !== undefined) out.hw_model = body.hwModel;
  if (body.labels !== undefined) out.labels = JSON.stringify(body.labels);
  if (body.bmc === null) out.bmc = null;
  else if (body.bmc !== undefined) {
    const b = await ctx.db.selectFrom('bmcs').select('id').where('id', '=', body.bmc).executeTakeFirst();
    if (!b)
      throw new ApiError(
        'API_ERR_UNKNOWN_BMC',
        `bmc: no BMC ${body.bmc} (create it with PUT /api/v1/bmcs/{id})`,
      );
    out.bmc = body.bmc;
  }
  if (body.password !== undefined) out.password_hash = await hashPassword(body.password);
  if (body.ownershipVoucher !== undefined) {
    if (!isBase64(body.ownershipVoucher))
      throw new ApiError('API_ERR_BAD_REQUEST', 'ownershipVoucher must be base64 (DER CMS)');
    const der = Buffer.from(body.ownershipVoucher.replace(/\s+/g, ''), 'base64');
    const problem = voucherUploadProblem(der, serial, new Date());
    if (problem) throw new ApiError('API_ERR_BAD_REQUEST', `ownershipVoucher: ${problem}`);
    out.ownership_voucher = der;
  }
  return out;
}

/**
 * A foreign key refused the write: SQLSTATE 23503 (a row names one that is not there, or —
 * up to PostgreSQL 15 — deletes one still named) or 23001 (deleting a row still named under
 * ON DELETE RESTRICT, as `devices.bmc` is, on newer PostgreSQL such as PGlite's).
 */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === '23503' || code === '23001';
}

/** Registers the device routes. */
export function registerDeviceRoutes(api: ApiInstance, ctx: ApiContext): void {
  const { db } = ctx;
  const params = Type.Object({ serial: Serial });

  api.put(
    '/devices/:serial',
    {
      config: { etag: true },
      schema: {
        tags: ['devices'],
        operationId: 'putDevice',
        summary: 'Register or update a device',
        description:
          'Creates the device (201) or changes the fields given (200); fields left out keep their value. ' +
          '`bmc` must name a BMC of the inventory (400 `API_ERR_UNKNOWN_BMC`); `ownershipVoucher` must ' +
          'verify and name this serial; `password` is stored as scrypt.',
        params,
        body: DeviceBody,
        response: { 200: DeviceView, 201: DeviceView },
      },
    },
    async (req, reply) => {
      const values = await prepare(ctx, req.params.serial, req.body);
      const { serial } = req.params;
      const { row, created } = await db
        .transaction()
        .execute(async (tx) => {
          const existed = await tx
            .selectFrom('devices')
            .selectAll()
            .where('serial', '=', serial)
            .forUpdate()
            .executeTakeFirst();
          checkIfMatch(req, existed && deviceView(existed));
          const update = () =>
            tx
              .updateTable('devices')
              .set({ ...values, updated_at: new Date() })
              .where('serial', '=', serial)
              .returningAll()
              .executeTakeFirstOrThrow();
          let row = existed && (await update());
          let created = false;
          if (!row) {
            // No row to lock: another request may create it meanwhile (its insert wins, this one waits).
            row = await tx
              .insertInto('devices')
              .values({ ...values, serial, updated_at: new Date() })
              .onConflict((oc) => oc.column('serial').doNothing())
              .returningAll()
              .executeTakeFirst();
            created = row !== undefined;
            if (!row && isCreateOnly(req)) throw alreadyExists();
            // Created by a concurrent PUT since the look above: this one is a change of it.
            row ??= await update();
          }
          await ctx.events.append(
            {
              type: 'device.updated',
              serial,
              data: { created, fields: Object.keys(req.body).sort() },
            },
            tx,
          );
          return { row, created };
        })
        .catch((err: unknown) => {
          // The BMC was deleted between the check above and this write (foreign key).
          if (isForeignKeyViolation(err))
            throw new ApiError('API_ERR_UNKNOWN_BMC', `bmc: no BMC ${String(req.body.bmc)}`);
          throw err;
        });
      setAudit(req, { action: created ? 'device.create' : 'device.update' });
      const view = deviceView(row);
      reply.code(created ? 201 : 200).header('etag', etagOf(view));
      return view;
    },
  );

  api.get(
    '/devices/:serial',
    {
      config: { etag: true },
      schema: {
        tags: ['devices'],
        operationId: 'getDevice',
        summary: 'Read a device',
        description: 'State, profile, BMC, labels, last progress report, SSH host keys and links.',
        params,
        response: { 200: DeviceView },
      },
    },
    async (req, reply) => {
      const row = await db
        .selectFrom('devices')
        .selectAll()
        .where('serial', '=', req.params.serial)
        .executeTakeFirst();
      if (!row) throw new ApiError('API_ERR_NOT_FOUND', `no device ${req.params.serial}`);
      const view = deviceView(row);
      reply.header('etag', etagOf(view));
      return view;
    },
  );

  api.get(
    '/devices',
    {
      schema: {
        tags: ['devices'],
        operationId: 'listDevices',
        summary: 'List devices, by serial, filtered by state, profile, BMC and labels',
        description:
          'Cursor pages ordered by serial (keyset: a device added while paging is never skipped nor ' +
          'repeated). `label=k=v` repeats; every pair must match.',
        querystring: Type.Object(
          {
            state: Type.Optional(State),
            profile: Type.Optional(ResourceName),
            bmc: Type.Optional(ResourceName),
            label: Type.Optional(LabelQuery),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: DevicePage },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 100;
      const after = decodeCursor(req.query.cursor);
      let q = db
        .selectFrom('devices')
        .selectAll()
        .orderBy('serial')
        .limit(limit + 1);
      if (req.query.state) q = q.where('state', '=', req.query.state as DeviceState);
      if (req.query.profile) q = q.where('profile', '=', req.query.profile);
      if (req.query.bmc) q = q.where('bmc', '=', req.query.bmc);
      if (req.query.label?.length)
        q = q.where(sql<boolean>`labels @> ${JSON.stringify(labelFilter(req.query.label))}::jsonb`);
      if (after !== undefined) q = q.where('serial', '>', after);
      const rows = await q.execute();
      const page = rows.slice(0, limit);
      const more = rows.length > limit;
      return {
        items: page.map(deviceView),
        nextCursor: more ? Buffer.from(page[page.length - 1]!.serial).toString('base64url') : null,
      };
    },
  );

  api.delete(
    '/devices/:serial',
    {
      config: { audit: 'device.delete' },
      schema: {
        tags: ['devices'],
        operationId: 'deleteDevice',
        summary: 'Forget a device (its event history stays)',
        description: 'The device row goes; its bootstrap events and audit records stay.',
        params,
        response: { 204: NoContent },
      },
    },
    async (req, reply) => {
      const { serial } = req.params;
      await db.transaction().execute(async (tx) => {
        const r = await tx.deleteFrom('devices').where('serial', '=', serial).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw new ApiError('API_ERR_NOT_FOUND', `no device ${serial}`);
        await ctx.events.append({ type: 'device.deleted', serial }, tx);
      });
      reply.code(204);
    },
  );

  api.post(
    '/devices/:serial/approve',
    {
      config: { audit: 'device.approve', errors: ['API_ERR_CONFLICT'] },
      schema: {
        tags: ['devices'],
        operationId: 'approveDevice',
        summary: 'Approve a held (pending) device, optionally assigning its profile',
        description:
          'A device that contacted the server unknown (with `--unknown-devices hold`) waits as `pending`; ' +
          'approving it makes it `registered` so its next request is answered. 409 when it is not pending.',
        params,
        body: OptionalDeviceApproval,
        response: { 200: DeviceView },
      },
    },
    async (req) => {
      const { serial } = req.params;
      const row = await db.selectFrom('devices').selectAll().where('serial', '=', serial).executeTakeFirst();
      if (!row) throw new ApiError('API_ERR_NOT_FOUND', `no device ${serial}`);
      if (row.state !== 'pending')
        throw new ApiError('API_ERR_CONFLICT', `device ${serial} is ${row.state}, not pending`);
      const values = await prepare(ctx, serial, { profile: req.body?.profile });
      const profile = (values.profile as string | undefined) ?? row.profile;
      if (!profile)
        throw new ApiError('API_ERR_BAD_REQUEST', `device ${serial} has no profile: give one to approve it`);
      const updated = await db.transaction().execute(async (tx) => {
        const updated = await tx
          .updateTable('devices')
          .set({ profile, state: 'registered', updated_at: new Date() })
          .where('serial', '=', serial)
          .where('state', '=', 'pending')
          .returningAll()
          .executeTakeFirst();
        if (!updated) throw new ApiError('API_ERR_CONFLICT', `device ${serial} changed state meanwhile`);
        await ctx.events.append({ type: 'device.approved', serial, data: { profile } }, tx);
        await ctx.events.append(
          { type: 'device.state', serial, data: { from: 'pending', to: 'registered', reason: 'approved' } },
          tx,
        );
        return updated;
      });
      setAudit(req, { detail: { profile } });
      return deviceView(updated);
    },
  );

  api.get(
    '/devices/:serial/events',
    {
      schema: {
        tags: ['devices'],
        operationId: 'listDeviceBootstrapEvents',
        summary: "A device's bootstrap events (progress reports and requests), oldest first",
        description: 'Read on from an event with `after=<id>` (the last `id` seen).',
        params,
        querystring: Type.Object(
          {
            after: Type.Optional(Type.String({ pattern: '^\\d{1,18}$' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: DeviceEventList },
      },
    },
    async (req) => {
      let q = db
        .selectFrom('bootstrap_events')
        .selectAll()
        .where('serial', '=', req.params.serial)
        .orderBy('id')
        .limit(req.query.limit ?? 200);
      if (req.query.after) q = q.where(sql<boolean>`id > ${req.query.after}::int8`);
      const rows = await q.execute();
      if (rows.length === 0 && !req.query.after) {
        const d = await db
          .selectFrom('devices')
          .select('serial')
          .where('serial', '=', req.params.serial)
          .executeTakeFirst();
        if (!d) throw new ApiError('API_ERR_NOT_FOUND', `no device ${req.params.serial}`);
      }
      return {
        items: rows.map((e) => ({
          id: String(e.id),
          kind: e.kind,
          progressType: e.progress_type,
          message: e.message,
          remoteAddress: e.remote_address,
          tlsIdentity: e.tls_identity,
          detail: e.detail,
          at: e.created_at.toISOString(),
        })),
      };
    },
  );
}
