/**
 * The operator API (listener :8080): JSON under `/api/v1` with bearer-token
 * auth, an OpenAPI document at `/api/v1/openapi.json` and a browsable UI at
 * `/docs`, plus `/healthz` and `/readyz`. Built here, listened on by `cli/`
 * only (STYLE.md lesson 2). Routes live in `routes/`, one file per resource;
 * the auth hook is encapsulated in the `/api/v1` plugin (lesson 3).
 */
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import underPressure from '@fastify/under-pressure';
import { Ajv } from 'ajv';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
} from 'fastify';
import type { Kysely } from 'kysely';
import { type Database, findUnstorableText, type TokenRole } from '../db/index.js';
import { auditHook } from './audit.js';
import { type DashboardOptions, registerDashboard, sessionRoutes } from './dashboard.js';
import { API_ERRORS, ApiError, type ApiErrorCode, ProblemSchema, problem } from './errors.js';
import { EventLog } from './events.js';
import { contractBase, contractDocument } from './openapi-contract.js';
import type { OwnerStore } from './owner.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerDeviceRoutes } from './routes/devices.js';
import { registerOwnerRoutes } from './routes/owner.js';
import { registerProfileRoutes } from './routes/profiles.js';
import { registerTokenRoutes } from './routes/tokens.js';
import { findToken, roleAllows, TokenUsage } from './tokens.js';

/** One named readiness check with its outcome. */
export interface ReadinessCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

/** A route module: registers its routes on the `/api/v1` scope. */
export type ApiRoutes = (api: ApiInstance, ctx: ApiContext) => void | Promise<void>;

/** What route modules get. */
export interface ApiContext {
  db: Kysely<Database>;
  /** The owner certificate store (absent: `/owner` answers 404). */
  owner?: OwnerStore | undefined;
  /** The event log routes append device changes to. */
  events: EventLog;
}

/** The Fastify instance type routes are registered on (TypeBox-typed). */
export type ApiInstance = FastifyInstance<any, any, any, FastifyBaseLogger, TypeBoxTypeProvider>;

/** What the operator API needs from the service around it. */
export interface OperatorApiOptions {
  logger: FastifyBaseLogger;
  db: Kysely<Database>;
  /** Reports whether the service can serve traffic (database reachable, migrations applied). */
  readiness(): Promise<ReadinessCheck[]>;
  /** PEM cert and key: serve over HTTPS. */
  https?: { cert: Buffer | string; key: Buffer | string; handshakeTimeout?: number } | undefined;
  /** Largest accepted JSON body in bytes (default 1 MiB). Image uploads stream and are not bound by it. */
  bodyLimit?: number;
  /** Requests per minute per client before 429 (default 1200). */
  rateLimitPerMinute?: number;
  /**
   * Mean event-loop delay (ms, over each second) past which requests are answered 503
   * `API_ERR_UNAVAILABLE` instead of queueing behind a stalled loop (default 2000; 0: no guard).
   * An API built inside a test process turns it off: there the loop also runs the test's own work.
   */
  maxEventLoopDelayMs?: number;
  /** Where the owner certificate lives (`GET/PUT /api/v1/owner`). */
  owner?: OwnerStore;
  /** The event log (default: one on `db`). */
  events?: EventLog;
  /** Extra route modules (later issues: images, jobs, BMCs, …). */
  routes?: ApiRoutes[];
  /** Where token uses are batched into `last_used_at` (default: one made here, written every 5 s and on close). */
  tokenUsage?: TokenUsage;
  /**
   * Prometheus text exposition for `GET /metrics` (no token: scrapers carry
   * none, and it holds counts, never serials or secrets); absent → no route.
   */
  metrics?: () => Promise<string>;
  /** `info.version` of the OpenAPI document (default 1.0.0; `serve` gives the package version). */
  version?: string;
  /** The lab dashboard served at `/` (absent: no dashboard; `/api/v1/session` still answers). */
  dashboard?: DashboardOptions;
  /** Told of every route Fastify registers, on every scope (the document coverage test). */
  onRoute?: (route: { method: string | string[]; url: string }) => void;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Least role a route needs (default: viewer for GET/HEAD, operator otherwise;
     * admin for tokens, webhooks, owner keys and the audit log). Published in the
     * OpenAPI document as the operation's `x-required-role`.
     */
    role?: TokenRole;
    /** Error codes the route answers beyond the ones every route can (published as its error responses). */
    errors?: ApiErrorCode[];
    /** The route takes `Idempotency-Key` (POST routes wrapped in `idempotent`). */
    idempotent?: boolean;
    /** GET answers carry an `ETag`; PUT/PATCH honour `If-Match` (412 on a mismatch). */
    etag?: boolean;
    /**
     * The operation is deprecated since this date (ISO 8601): marked `deprecated` in the
     * document and answered with an RFC 9745 `Deprecation` header. It stays in /api/v1.
     */
    deprecatedSince?: string;
    /** Media types of a body the route reads as a raw stream (no JSON schema): published as binary. */
    rawBody?: string[];
  }
  interface FastifyRequest {
    /** The authenticated token (inside `/api/v1`). */
    actor?: { id: string; name: string; role: TokenRole };
  }
}

// Bodies are validated strictly: no type coercion and no silent removal of
// unknown fields (Fastify's defaults), so a wrong type or an unknown field is a
// 400 with a reason. Query strings and params still need coercion.
const ajvBase = { allErrors: false, useDefaults: true, removeAdditional: false, strict: false } as const;
const strictAjv = new Ajv({ ...ajvBase, coerceTypes: false });
const coercingAjv = new Ajv({ ...ajvBase, coerceTypes: 'array' });
for (const ajv of [strictAjv, coercingAjv]) {
  ajv.addFormat('date-time', true);
  ajv.addFormat('uri', true);
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
}

/** A parsed JSON body (or a string one), else undefined: streamed uploads are not text. */
function jsonLike(body: unknown): unknown {
  if (typeof body === 'string' || Array.isArray(body)) return body;
  if (body !== null && typeof body === 'object') {
    const proto = Object.getPrototypeOf(body);
    if (proto === Object.prototype || proto === null) return body;
  }
  return undefined;
}

function errorCodeFor(err: FastifyError): ApiErrorCode {
  if (err.validation) return 'API_ERR_VALIDATION';
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'API_ERR_BODY_TOO_LARGE';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'API_ERR_UNSUPPORTED_MEDIA_TYPE';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'API_ERR_BAD_REQUEST';
    default:
      if (err.statusCode === 429) return 'API_ERR_RATE_LIMITED';
      if (err.statusCode === 503) return 'API_ERR_UNAVAILABLE';
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return 'API_ERR_BAD_REQUEST';
      return 'API_ERR_INTERNAL';
  }
}

/** Builds the operator API app (not listening). */
export async function buildOperatorApi(opts: OperatorApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // Resource names may be 128 bytes (ResourceName); Fastify's default cuts params at 100 (414).
    routerOptions: { maxParamLength: 256 },
    // Errors the router raises before any route (a parameter past the limit, a URL that
    // does not decode) answer problem+json like every other error, not Fastify's own body.
    frameworkErrors: (err, _req, res) => {
      const reply = res as unknown as FastifyReply;
      const code: ApiErrorCode =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'API_ERR_URI_TOO_LONG' : 'API_ERR_BAD_REQUEST';
      const message =
        code === 'API_ERR_URI_TOO_LONG'
          ? 'a path segment is longer than 256 characters'
          : 'the URL is malformed';
      void reply.code(API_ERRORS[code].status).type('application/problem+json').send(problem(code, message));
    },
    ...(opts.https ? { https: opts.https } : {}),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const onRoute = opts.onRoute;
  if (onRoute) app.addHook('onRoute', (route) => onRoute({ method: route.method, url: route.url }));

  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema as object),
  );

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof ApiError) {
      return reply
        .code(err.status)
        .type('application/problem+json')
        .send(problem(err.code, err.message, err.details));
    }
    const code = errorCodeFor(err);
    if (code === 'API_ERR_INTERNAL') req.log.error({ err }, 'unhandled error');
    const detail = err.validation
      ? `${err.validationContext ?? 'request'}${err.message.replace(/^\w+/, '')}`
      : err.message;
    const status = code === 'API_ERR_BAD_REQUEST' && err.statusCode ? err.statusCode : undefined;
    const body = problem(code, code === 'API_ERR_INTERNAL' ? 'internal error' : detail);
    if (status) body.status = status;
    return reply.code(body.status).type('application/problem+json').send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .type('application/problem+json')
      .send(problem('API_ERR_NOT_FOUND', `no route ${req.method} ${req.url}`));
  });

  await app.register(helmet, {
    // swagger-ui needs inline scripts/styles on /docs.
    contentSecurityPolicy: false,
  });
  await app.register(underPressure, {
    maxEventLoopDelay: opts.maxEventLoopDelayMs ?? 2000,
    exposeStatusRoute: false,
    pressureHandler: (_req, reply) => {
      reply
        .code(503)
        .type('application/problem+json')
        .send(problem('API_ERR_UNAVAILABLE', 'service under pressure, retry later'));
    },
  });
  await app.register(swagger, {
    openapi: contractBase({ version: opts.version ?? '1.0.0' }) as Record<string, any>,
    // Shared schemas keep their `$id` as their component name (`#/components/schemas/Problem`),
    // so generated clients get stable type names instead of `def-0`, `def-1`, ….
    refResolver: {
      buildLocalReference: (json, _base, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    transformObject: (d) => contractDocument((d as { openapiObject: Record<string, any> }).openapiObject),
  });
  app.addSchema(ProblemSchema);
  await app.register(swaggerUi, { routePrefix: '/docs' });
  if (opts.dashboard) await registerDashboard(app, opts.dashboard);

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const checks = await opts.readiness();
    const ready = checks.every((c) => c.ok);
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not-ready', checks };
  });
  const scrape = opts.metrics;
  if (scrape) {
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
      reply.type('text/plain; version=0.0.4; charset=utf-8').send(await scrape()),
    );
  }
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const ctx: ApiContext = { db: opts.db, owner: opts.owner, events: opts.events ?? new EventLog(opts.db) };
  const usage =
    opts.tokenUsage ??
    new TokenUsage(opts.db, { onError: (err) => opts.logger.warn({ err }, 'could not record token use') });
  app.addHook('onClose', async () => usage.flush());
  await app.register(
    async (api) => {
      // IETF draft-ietf-httpapi-ratelimit-headers names (RateLimit-Limit, -Remaining, -Reset) on every
      // answer, and Retry-After on a 429, so automation can pace itself instead of guessing.
      await api.register(rateLimit, {
        max: opts.rateLimitPerMinute ?? 1200,
        timeWindow: 60_000,
        enableDraftSpec: true,
        errorResponseBuilder: (_req, ctx) =>
          new ApiError('API_ERR_RATE_LIMITED', `more than ${ctx.max} requests in ${ctx.after}; retry later`),
      });
      // Every route's role is settled once, here, and published in the OpenAPI
      // document, which the authorization matrix test reads.
      api.addHook('onRoute', (route) => {
        const methods = ([] as string[]).concat(route.method);
        const role: TokenRole =
          route.config?.role ?? (methods.every((m) => m === 'GET' || m === 'HEAD') ? 'viewer' : 'operator');
        route.config = { ...route.config, role };
        const c = route.config;
        // Bodies and answers whose schema has an `$id` become named components (openapi-contract.ts).
        const ids: Record<string, string> = {};
        const idOf = (x: unknown) => (x as { $id?: unknown } | undefined)?.$id;
        if (typeof idOf(route.schema?.body) === 'string') ids.body = idOf(route.schema?.body) as string;
        for (const [status, r] of Object.entries((route.schema?.response ?? {}) as Record<string, unknown>))
          if (typeof idOf(r) === 'string') ids[status] = idOf(r) as string;
        route.schema = {
          ...route.schema,
          'x-required-role': role,
          ...(Object.keys(ids).length ? { 'x-schema-ids': ids } : {}),
          ...(c.errors?.length ? { 'x-error-codes': c.errors } : {}),
          ...(c.idempotent ? { 'x-idempotent': true } : {}),
          ...(c.etag ? { 'x-etag': true } : {}),
          ...(c.rawBody ? { 'x-raw-body': c.rawBody } : {}),
          ...(c.deprecatedSince ? { deprecated: true } : {}),
        } as typeof route.schema;
        if (c.deprecatedSince) {
          const since = Math.floor(Date.parse(c.deprecatedSince) / 1000);
          if (!Number.isFinite(since)) throw new Error(`deprecatedSince ${c.deprecatedSince}: not a date`);
          const announce = async (_req: unknown, reply: FastifyReply) => {
            reply.header('deprecation', `@${since}`);
          };
          route.onSend = ([] as unknown[]).concat(route.onSend ?? [], announce) as typeof route.onSend;
        }
      });
      // A cursor page names its successor in an RFC 8288 Link header too (the document's `Link`).
      api.addHook('preSerialization', async (req, reply, payload) => {
        const next = (payload as { nextCursor?: unknown } | null)?.nextCursor;
        if (req.method === 'GET' && typeof next === 'string') {
          const u = new URL(req.url, 'http://api.invalid');
          u.searchParams.set('cursor', next);
          reply.header('link', `<${u.pathname}${u.search}>; rel="next"`);
        }
        return payload;
      });
      // Every succeeded change lands in the audit log (routes cannot forget it).
      api.addHook('onSend', auditHook(opts.db));
      api.addHook('onRequest', async (req) => {
        const header = req.headers.authorization;
        const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
        if (!m?.[1]) throw new ApiError('API_ERR_UNAUTHENTICATED', 'send Authorization: Bearer <token>');
        const token = await findToken(opts.db, m[1]);
        if (!token) throw new ApiError('API_ERR_UNAUTHENTICATED', 'unknown or revoked token');
        const need =
          req.routeOptions.config.role ??
          (req.method === 'GET' || req.method === 'HEAD' ? 'viewer' : 'operator');
        if (!roleAllows(token.role, need)) {
          throw new ApiError('API_ERR_FORBIDDEN', `this needs the ${need} role; the token has ${token.role}`);
        }
        req.actor = { id: token.id, name: token.name, role: token.role };
        usage.used(token.id);
      });
      // Text the database cannot hold (U+0000, lone surrogates), anywhere in params, query or
      // a JSON body — every route, present and future — is a 400 here rather than a 500 at
      // INSERT time (db/text.ts).
      api.addHook('preValidation', async (req) => {
        for (const [part, value] of [
          ['params', req.params],
          ['querystring', req.query],
          ['body', jsonLike(req.body)],
        ] as const) {
          const hit = findUnstorableText(value);
          if (hit) throw new ApiError('API_ERR_INVALID_TEXT', `${part}${hit.path} ${hit.reason}`);
        }
      });
      for (const routes of [
        registerTokenRoutes,
        registerProfileRoutes,
        registerDeviceRoutes,
        registerOwnerRoutes,
        registerAuditRoutes,
        sessionRoutes({ traceUiUrl: opts.dashboard?.traceUiUrl }),
        ...(opts.routes ?? []),
      ]) {
        await routes(api as unknown as ApiInstance, ctx);
      }
    },
    { prefix: '/api/v1' },
  );
  return app as unknown as FastifyInstance;
}
