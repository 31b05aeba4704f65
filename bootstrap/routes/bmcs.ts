/**
 * `/api/v1/bmcs`: the BMC inventory — each BMC's address, credentials (the
 * password sealed at rest, never returned), TLS trust, login mode, vendor
 * profile override, system and labels — and `check`, which runs the
 * `bmc check` probe against the stored BMC and keeps its report.
 */
import { type Static, Type } from 'typebox';
import { decodeArtifacts, parseCertificate, toPem } from '../../pki/index.js';
import {
  type BmcCheckReport,
  checkBmc,
  isRedfishError,
  RedfishClient,
  type RedfishClientOptions,
  VENDOR_PROFILES,
} from '../../redfish/index.js';
import { Attr, withSpan } from '../../otel/index.js';
import { audit, setAudit } from '../audit.js';
import type { BmcCheckResult, BmcStore, BmcTarget } from '../bmc-store.js';
import { ApiError } from '../errors.js';
import { alreadyExists, checkIfMatch, etagOf, isCreateOnly } from '../etag.js';
import { NoContent, Page } from '../openapi-contract.js';
import type { ApiContext, ApiInstance, ApiRoutes } from '../operator-api.js';
import { decodeCursor, isForeignKeyViolation, LabelQuery, Labels, labelFilter } from './devices.js';
import { ResourceName } from './profiles.js';

/** BMC ids: the same shape as other resource names. */
export const BmcId = ResourceName;

/** No control characters (they end up in HTTP headers and Redfish JSON). */
const printable = '^[^\\u0000-\\u001f\\u007f]+$';

/** The BMC fields shared by `PUT /bmcs/{id}` and the device import. */
export const BmcFields = {
  address: Type.String({
    minLength: 9,
    maxLength: 300,
    pattern: '^https://',
    description: '`https://host[:port]`: the BMC Redfish service (nothing after host and port)',
  }),
  username: Type.String({ minLength: 1, maxLength: 256, pattern: printable }),
  password: Type.String({
    minLength: 1,
    maxLength: 256,
    pattern: printable,
    description: 'required to create; omitted on update keeps the stored one. Never returned',
  }),
  caCertificate: Type.String({
    minLength: 1,
    maxLength: 64 * 1024,
    description: 'PEM: the CA certificate(s) that signed the BMC TLS certificate',
  }),
  insecure: Type.Boolean({ description: 'do not verify the BMC TLS certificate (explicit opt-in)' }),
  auth: Type.Union([Type.Literal('auto'), Type.Literal('session'), Type.Literal('basic')], {
    description: 'how to log in: `auto` (session, falling back to Basic; default), `session` or `basic`',
  }),
  profile: Type.Union(
    VENDOR_PROFILES.map((p) => Type.Literal(p.id)),
    { description: 'vendor profile override (default: picked from what the BMC reports)' },
  ),
  system: Type.String({
    pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$',
    description: 'Redfish ComputerSystem id, when the BMC manages several',
  }),
  labels: Labels,
};

const BmcBody = Type.Object(
  {
    address: BmcFields.address,
    username: BmcFields.username,
    password: Type.Optional(BmcFields.password),
    caCertificate: Type.Optional(BmcFields.caCertificate),
    insecure: Type.Optional(BmcFields.insecure),
    auth: Type.Optional(BmcFields.auth),
    profile: Type.Optional(BmcFields.profile),
    system: Type.Optional(BmcFields.system),
    labels: Type.Optional(BmcFields.labels),
  },
  {
    $id: 'BmcInput',
    additionalProperties: false,
    examples: [
      {
        address: 'https://10.0.3.7',
        username: 'root',
        password: 'bmc-password',
        caCertificate: '-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----\n',
        labels: { rack: 'r3' },
      },
    ],
  },
);
type BmcBodyT = Static<typeof BmcBody>;

const CheckResult = Type.Object({
  at: Type.String({ format: 'date-time' }),
  ok: Type.Boolean({ description: 'the BMC answered and a provisioning strategy will work' }),
  report: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), { description: 'the `bmc check` report' }),
  ),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});
/** The answer of `POST /bmcs/{id}/check` (the same fields, named for the document). */
const BmcCheck = Type.Object(CheckResult.properties, { $id: 'BmcCheck' });

const BmcView = Type.Object(
  {
    id: Type.String(),
    address: Type.String(),
    username: Type.String(),
    passwordSet: Type.Literal(true),
    caCertificate: Type.Optional(Type.String()),
    insecure: Type.Boolean(),
    auth: BmcFields.auth,
    profile: Type.Optional(Type.String()),
    system: Type.Optional(Type.String()),
    labels: Type.Record(Type.String(), Type.String()),
    lastCheck: Type.Optional(CheckResult),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Bmc' },
);
const BmcPage = Page(BmcView, 'BmcPage');

/**
 * A BMC address as stored: `https://host[:port]` (URL origin: lowercase host, no default
 * port). Returns an error message instead when it is anything else.
 */
export function normalizeBmcAddress(address: string): string | { error: string } {
  let u: URL;
  try {
    u = new URL(address);
  } catch {
    return { error: 'address: not a URL (expected https://host[:port])' };
  }
  if (u.protocol !== 'https:') return { error: 'address: must be an https:// URL' };
  if (!u.hostname) return { error: 'address: names no host' };
  if (u.username || u.password) return { error: 'address: must not carry credentials' };
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || /[?#]/.test(address))
    return { error: 'address: only https://host[:port], no path, query or fragment' };
  return u.origin;
}

/**
 * A PEM CA bundle as stored (each certificate re-armoured), or an error message when it is
 * not PEM certificates that parse.
 */
export function normalizeCaBundle(pem: string): string | { error: string } {
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    return { error: 'caCertificate: not a PEM certificate (-----BEGIN CERTIFICATE-----)' };
  if (/-----BEGIN (?!CERTIFICATE-----)/.test(pem))
    return { error: 'caCertificate: holds PEM blocks other than CERTIFICATE' };
  try {
    const ders = decodeArtifacts(pem);
    for (const der of ders) parseCertificate(der);
    return ders.map((d) => toPem(d, 'CERTIFICATE')).join('');
  } catch (err) {
    return { error: `caCertificate: ${(err as Error).message}` };
  }
}

/** The checks a BMC body needs beyond its schema; throws API_ERR_BAD_REQUEST naming the field. */
function checkedBody(body: BmcBodyT): BmcBodyT {
  const address = normalizeBmcAddress(body.address);
  if (typeof address !== 'string') throw new ApiError('API_ERR_BAD_REQUEST', address.error);
  let caCertificate: string | undefined;
  if (body.caCertificate !== undefined) {
    if (body.insecure) throw new ApiError('API_ERR_BAD_REQUEST', 'caCertificate and insecure: give one');
    const ca = normalizeCaBundle(body.caCertificate);
    if (typeof ca !== 'string') throw new ApiError('API_ERR_BAD_REQUEST', ca.error);
    caCertificate = ca;
  }
  return { ...body, address, ...(caCertificate ? { caCertificate } : {}) };
}

/** How `POST /bmcs/{id}/check` reaches a BMC. */
export interface BmcCheckOptions {
  /** Bound on the whole check (default 60 s): the request must answer. */
  timeoutMs?: number;
  /** Redfish client settings (timeouts, retries) over the check's defaults. */
  client?: Partial<Omit<RedfishClientOptions, 'url' | 'username' | 'password' | 'auth' | 'tls'>>;
}

/** What the BMC routes need from the service around them. */
export interface BmcRoutesOptions {
  store: BmcStore;
  check?: BmcCheckOptions;
}

/**
 * Redfish client options for a stored BMC: its address, credentials, login mode and own TLS
 * trust (CA bundle or the explicit insecure opt-in); `extra` adds timeouts, retries, ….
 */
export function redfishOptions(
  target: BmcTarget,
  extra: Partial<Omit<RedfishClientOptions, 'url' | 'username' | 'password' | 'auth' | 'tls'>> = {},
): RedfishClientOptions {
  return {
    url: target.address,
    username: target.username,
    password: target.password,
    auth: target.auth,
    tls: {
      ...(target.caCertificate ? { ca: target.caCertificate } : {}),
      ...(target.insecure ? { insecure: true } : {}),
    },
    ...extra,
  };
}

/** Runs `bmc check` against a stored BMC: never throws for what the BMC did, returns why. */
async function runCheck(
  target: BmcTarget,
  opts: BmcCheckOptions,
): Promise<{ ok: boolean; report?: Record<string, unknown>; error?: { code: string; message: string } }> {
  const client = new RedfishClient(
    redfishOptions(target, {
      // A check answers an HTTP request: fewer, shorter tries than a provisioning job.
      timeouts: { connectMs: 10_000, requestMs: 20_000 },
      retry: { attempts: 2, baseDelayMs: 500, maxDelayMs: 2_000, maxRetryAfterMs: 5_000 },
      ...opts.client,
    }),
  );
  const signal = AbortSignal.timeout(opts.timeoutMs ?? 60_000);
  try {
    const report: BmcCheckReport = await checkBmc(client.withSignal(signal), {
      ...(target.system ? { systemId: target.system } : {}),
      ...(target.profile ? { profileId: target.profile } : {}),
    });
    const plain = JSON.parse(JSON.stringify(report)) as Record<string, unknown>;
    return report.recommended
      ? { ok: true, report: plain }
      : {
          ok: false,
          report: plain,
          error: {
            code: 'REDFISH_ERR_NO_STRATEGY',
            message: 'no provisioning strategy will work on this BMC',
          },
        };
  } catch (err) {
    if (signal.aborted)
      return {
        ok: false,
        error: {
          code: 'REDFISH_ERR_DEADLINE',
          message: `the check did not finish within ${opts.timeoutMs ?? 60_000} ms`,
        },
      };
    const code = isRedfishError(err) ? err.code : 'REDFISH_ERR_CONNECTION';
    return { ok: false, error: { code, message: (err as Error).message } };
  } finally {
    await client.close();
  }
}

/** The BMC routes (`/bmcs`, `/bmcs/{id}`, `/bmcs/{id}/check`). */
export function bmcRoutes(opts: BmcRoutesOptions): ApiRoutes {
  const { store } = opts;
  return (api: ApiInstance, ctx: ApiContext) => {
    const { db } = ctx;
    const params = Type.Object({ id: BmcId });

    api.put(
      '/bmcs/:id',
      {
        config: { etag: true },
        schema: {
          operationId: 'putBmc',
          tags: ['bmcs'],
          summary: 'Create (201) or replace (200) a BMC; the password is sealed at rest and never returned',
          description:
            'The address must be `https://host[:port]`; give `caCertificate` (PEM) or `insecure: true`. ' +
            '`password` is required to create and may be left out to keep the stored one.',
          params,
          body: BmcBody,
          response: { 200: BmcView, 201: BmcView },
        },
      },
      async (req, reply) => {
        const { id } = req.params;
        const body = checkedBody(req.body);
        const { created } = await db.transaction().execute(async (trx) => {
          const current = await store.view(id, trx, true);
          checkIfMatch(req, current);
          if (body.password === undefined && !current)
            throw new ApiError('API_ERR_BAD_REQUEST', `password: required to create BMC ${id}`);
          const r = await store.put(id, body, trx, isCreateOnly(req));
          if (r.existed) throw alreadyExists();
          setAudit(req, { skip: true }); // recorded here, in the change's own transaction
          await audit(trx, req.actor!.name, r.created ? 'bmc.create' : 'bmc.update', id, {
            fields: Object.keys(req.body).filter((k) => k !== 'password'),
            passwordChanged: body.password !== undefined,
          });
          return r;
        });
        const view = (await store.view(id))!;
        reply.code(created ? 201 : 200).header('etag', etagOf(view));
        return view;
      },
    );

    api.get(
      '/bmcs/:id',
      {
        config: { etag: true },
        schema: {
          operationId: 'getBmc',
          tags: ['bmcs'],
          summary: 'Read a BMC (never its password) with its last check',
          description:
            'Address, user, TLS trust, login mode, profile override, labels and the last check result.',
          params,
          response: { 200: BmcView },
        },
      },
      async (req, reply) => {
        const view = await store.view(req.params.id);
        if (!view) throw new ApiError('API_ERR_NOT_FOUND', `no BMC ${req.params.id}`);
        reply.header('etag', etagOf(view));
        return view;
      },
    );

    api.get(
      '/bmcs',
      {
        schema: {
          operationId: 'listBmcs',
          tags: ['bmcs'],
          summary: 'List BMCs by id, filtered by labels',
          description:
            'Cursor pages ordered by id (keyset: BMCs added while paging are neither skipped nor repeated).',
          querystring: Type.Object(
            {
              label: Type.Optional(LabelQuery),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
              cursor: Type.Optional(Type.String({ maxLength: 200 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: BmcPage },
        },
      },
      async (req) => {
        const limit = req.query.limit ?? 100;
        const after = decodeCursor(req.query.cursor);
        const rows = await store.list({
          labels: labelFilter(req.query.label),
          ...(after !== undefined ? { after } : {}),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        return {
          items: page,
          nextCursor:
            rows.length > limit ? Buffer.from(page[page.length - 1]!.id).toString('base64url') : null,
        };
      },
    );

    api.delete(
      '/bmcs/:id',
      {
        config: { errors: ['API_ERR_BMC_IN_USE'] },
        schema: {
          operationId: 'deleteBmc',
          tags: ['bmcs'],
          summary: 'Delete a BMC no device names (409 API_ERR_BMC_IN_USE otherwise)',
          description: 'Refused while devices name it; the problem lists up to five in `devices`.',
          params,
          response: { 204: NoContent },
        },
      },
      async (req, reply) => {
        const { id } = req.params;
        const inUse = async () => {
          const used = await store.usedBy(id);
          return new ApiError(
            'API_ERR_BMC_IN_USE',
            `BMC ${id} is named by device(s) ${used.join(', ')}${used.length === 5 ? ', …' : ''}`,
            { devices: used },
          );
        };
        if ((await store.usedBy(id, 1)).length) throw await inUse();
        const deleted = await db
          .transaction()
          .execute(async (trx) => {
            const gone = await store.delete(id, trx);
            setAudit(req, { skip: true }); // recorded here, in the change's own transaction
            if (gone) await audit(trx, req.actor!.name, 'bmc.delete', id);
            return gone;
          })
          .catch(async (err: unknown) => {
            // A device was pointed at it meanwhile (foreign key, ON DELETE RESTRICT).
            if (isForeignKeyViolation(err)) throw await inUse();
            throw err;
          });
        if (!deleted) throw new ApiError('API_ERR_NOT_FOUND', `no BMC ${id}`);
        reply.code(204);
      },
    );

    api.post(
      '/bmcs/:id/check',
      {
        schema: {
          operationId: 'checkBmc',
          tags: ['bmcs'],
          summary:
            'Probe the BMC (what `dpu-ztp bmc check` reports) and store the result as its lastCheck; 200 whatever the BMC answered',
          description:
            'Logs in, reads the Redfish service and picks the provisioning strategy that will work; `ok` ' +
            'false with an `error` code when it would not. Bounded (60 s by default).',
          params,
          response: { 200: BmcCheck },
        },
      },
      async (req) => {
        const { id } = req.params;
        let target: BmcTarget | undefined;
        let result: Awaited<ReturnType<typeof runCheck>>;
        try {
          target = await store.target(id);
          if (!target) throw new ApiError('API_ERR_NOT_FOUND', `no BMC ${id}`);
          const t = target;
          result = await withSpan('bmc.check', { [Attr.bmcUrl]: t.address }, () =>
            runCheck(t, opts.check ?? {}),
          );
        } catch (err) {
          // A stored password the key cannot open is a result to show, not a crash.
          if ((err as { code?: unknown }).code !== 'SECRET_ERR_OPEN_FAILED') throw err;
          result = { ok: false, error: { code: 'SECRET_ERR_OPEN_FAILED', message: (err as Error).message } };
        }
        const saved: BmcCheckResult | undefined = await store.saveCheck(id, result);
        if (!saved) throw new ApiError('API_ERR_NOT_FOUND', `no BMC ${id} (deleted during the check)`);
        setAudit(req, { skip: true }); // recorded here with the check's outcome
        await audit(db, req.actor!.name, 'bmc.check', id, {
          ok: result.ok,
          ...(result.error ? { code: result.error.code } : {}),
        });
        return saved;
      },
    );
  };
}
