/**
 * The operator API's OpenAPI contract, settled in one place over what the routes
 * declare: `info`, servers and tags; each operation's security (its least role), its
 * error answers (every status it can give, as `application/problem+json` `Problem`
 * bodies with the `code` enum), the shared pagination, `Idempotency-Key`, `If-Match`/
 * `ETag`, `Link`, `RateLimit-*` and `Deprecation` pieces as components; and named
 * components in place of inline copies of shared shapes. Routes keep their schemas,
 * summaries and descriptions; this fills in what every route would otherwise repeat
 * (and could forget). Applied as @fastify/swagger's `transformObject`.
 */
import { type TSchema, Type } from 'typebox';
import { API_ERRORS, type ApiErrorCode } from './errors.js';

/** Declared tags, in the order the document lists them. */
export const API_TAGS = [
  {
    name: 'devices',
    description: 'The device inventory: register, list, approve held devices, event history',
  },
  {
    name: 'bmcs',
    description: 'The BMC inventory: Redfish address, credentials (sealed), TLS trust, checks',
  },
  { name: 'profiles', description: 'What a device is given: onboarding or redirect information (RFC 8572)' },
  { name: 'images', description: 'The image service: installer and boot images, streamed and hashed' },
  {
    name: 'jobs',
    description: 'Provisioning, power and decommission jobs over devices, as durable state machines',
  },
  { name: 'events', description: 'Device and job events as a Server-Sent Events stream' },
  { name: 'webhooks', description: 'Signed HTTP deliveries of events, with a delivery log' },
  { name: 'tokens', description: 'API bearer tokens and their roles' },
  { name: 'owner', description: 'The owner certificate that signs conveyed information' },
  {
    name: 'idevids',
    description: 'Revoked device identities (IDevIDs): refused by every replica from their next request',
  },
  { name: 'audit', description: 'Every change made through this API' },
  { name: 'dashboard', description: 'What the lab dashboard needs: the signed-in token and settings' },
] as const;

/** The error-response component of each status (the codes of that status are listed in it). */
const STATUS_RESPONSE: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthenticated',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  412: 'PreconditionFailed',
  413: 'ContentTooLarge',
  414: 'UriTooLong',
  415: 'UnsupportedMediaType',
  422: 'UnprocessableContent',
  428: 'PreconditionRequired',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'Unavailable',
  507: 'InsufficientStorage',
};

/** Statuses every operation inside `/api/v1` can answer (auth, rate limit, overload, bug). */
const ALWAYS = [401, 403, 429, 500, 503];

type Json = Record<string, any>;

/** Options of {@link contractDocument}. */
export interface ContractOptions {
  /** `info.version`: the service's version. */
  version: string;
}

/** The `info`, `servers` and global pieces the document starts from. */
export function contractBase(opts: ContractOptions): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'dpu-ztp operator API',
      version: opts.version,
      summary: 'Devices, BMCs, profiles, images and provisioning jobs of the dpu-ztp service',
      description:
        'The REST API fleet automation drives dpu-ztp through. Bearer tokens carry a role ' +
        '(viewer < operator < admin); each operation states its least role in its description and ' +
        'as `x-required-role`. Errors are RFC 9457 problem bodies ' +
        '(`application/problem+json`) with a stable `code`. `/api/v1` changes only by addition; ' +
        'an operation to be removed is marked `deprecated` and answers with a `Deprecation` header ' +
        'first. See the README section "Automating against the API" for idempotency, pagination, ' +
        'rate limits and lost-update protection.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      contact: { name: 'dpu-ztp maintainers' },
    },
    servers: [{ url: '/', description: 'the operator listener this document was fetched from' }],
    tags: API_TAGS.map((t) => ({ ...t })),
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            "An API token (`dpu-ztp tokens create --role ROLE`) of the operation's `x-required-role` or higher",
        },
      },
    },
  };
}

/** Keys sorted, so structurally equal schemas compare equal as text. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, canonical((v as Json)[k])]),
    );
  return v;
}

function codesOf(status: number): ApiErrorCode[] {
  return (Object.keys(API_ERRORS) as ApiErrorCode[]).filter((c) => API_ERRORS[c].status === status);
}

const problemContent = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };

const HEADERS: Json = {
  Link: {
    description:
      'RFC 8288 `<…?cursor=…>; rel="next"` when there is a next page (the same cursor as `nextCursor`)',
    schema: { type: 'string' },
  },
  ETag: {
    description: 'the strong validator of the representation: send it back in `If-Match` to update safely',
    schema: { type: 'string' },
  },
  IdempotentReplayed: {
    description:
      '`true` when this answer is the stored one of an earlier request with the same Idempotency-Key',
    schema: { type: 'string', enum: ['true'] },
  },
  RateLimitLimit: {
    description: 'requests allowed per window (IETF draft-ietf-httpapi-ratelimit-headers)',
    schema: { type: 'integer' },
  },
  RateLimitRemaining: { description: 'requests left in this window', schema: { type: 'integer' } },
  RateLimitReset: { description: 'seconds until the window resets', schema: { type: 'integer' } },
  RetryAfter: { description: 'seconds to wait before retrying', schema: { type: 'integer' } },
  Deprecation: {
    description: 'RFC 9745: this operation is deprecated (`@<unix time>` since when); it stays in /api/v1',
    schema: { type: 'string' },
  },
};

const PARAMETERS: Json = {
  Cursor: {
    name: 'cursor',
    in: 'query',
    required: false,
    description:
      'opaque: the `nextCursor` (or `Link: rel="next"`) of the previous page; pages are keyed, so rows ' +
      'inserted while paging are neither skipped nor repeated',
    schema: { type: 'string', maxLength: 200 },
  },
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    description:
      'makes a retry safe: the same key with the same body gets the first answer again ' +
      '(`Idempotent-Replayed: true`); with a different body, 409 `API_ERR_IDEMPOTENCY_MISMATCH`. ' +
      'Kept 24 h, per token and route',
    schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
    example: '6f1c0b7e-provision-rack-3',
  },
  IfMatch: {
    name: 'If-Match',
    in: 'header',
    required: false,
    description:
      'the `ETag` of the representation this change was based on: when it no longer matches, 412 ' +
      '`API_ERR_PRECONDITION_FAILED` and nothing is changed (lost-update protection). Without it the ' +
      'change applies unconditionally',
    schema: { type: 'string' },
    example: '"3f2a9c1e0b7d4a55"',
  },
  IfNoneMatch: {
    name: 'If-None-Match',
    in: 'header',
    required: false,
    description:
      '`*` makes the PUT create-only: when the resource already exists, 412 `API_ERR_PRECONDITION_FAILED` ' +
      'and nothing is changed (RFC 9110 §13.1.2)',
    schema: { type: 'string' },
    example: '*',
  },
};

/** Status words for 2xx answers that declare no description of their own. */
const SUCCESS: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted: the work continues in the background',
  204: 'Done; no body',
};

/**
 * Completes the document @fastify/swagger built from the routes (see the module comment).
 * Operation extensions read (and removed): `x-error-codes`, `x-idempotent`, `x-etag`, `x-schema-ids`.
 */
export function contractDocument(doc: Json): Json {
  const components: Json = doc.components ?? {};
  const schemas: Json = components.schemas ?? {};
  // A route's body or answer schema with an `$id` (inlined by @fastify/swagger at the top level)
  // becomes the component of that name, referenced from every operation that uses it.
  const hoist = (id: string | undefined, schema: unknown): Json | undefined => {
    if (!id || !schema) return undefined;
    const have = schemas[id];
    if (have && JSON.stringify(canonical(have)) !== JSON.stringify(canonical(schema)))
      throw new Error(`OpenAPI: two different schemas are named ${id}`);
    schemas[id] = schema;
    return { $ref: `#/components/schemas/${id}` };
  };
  const used = { responses: new Set<number>(), headers: new Set<string>(), parameters: new Set<string>() };
  const header = (name: string) => {
    used.headers.add(name);
    return { $ref: `#/components/headers/${name}` };
  };
  const parameter = (name: string) => {
    used.parameters.add(name);
    return { $ref: `#/components/parameters/${name}` };
  };

  for (const item of Object.values(doc.paths ?? {}) as Json[]) {
    for (const [method, op] of Object.entries(item) as [string, Json][]) {
      if (method === 'parameters' || typeof op !== 'object') continue;
      const role = op['x-required-role'] as string;
      // Role names are not OAuth scopes (linters flag them there): the role is x-required-role.
      op.security = [{ bearer: [] }];
      const needs = `Needs the \`${role}\` role.`;
      if (!String(op.description ?? '').includes(needs))
        op.description = op.description ? `${op.description}\n\n${needs}` : needs;
      if (op['x-raw-body'] && !op.requestBody)
        op.requestBody = {
          required: true,
          description: 'the raw bytes, streamed',
          content: Object.fromEntries(
            (op['x-raw-body'] as string[]).map((m) => [m, { schema: { type: 'string', format: 'binary' } }]),
          ),
        };
      const params: Json[] = op.parameters ?? [];
      const statuses = new Set<number>(ALWAYS);
      if (params.length || op.requestBody) statuses.add(400);
      if (params.some((p) => p.in === 'path')) {
        statuses.add(404);
        statuses.add(414);
      }
      if (op.requestBody) {
        statuses.add(413);
        statuses.add(415);
        for (const media of Object.values(op.requestBody.content ?? {}) as Json[]) {
          // The body schema's first example is the request body's example.
          if (media.example === undefined && media.schema?.examples?.[0] !== undefined)
            media.example = media.schema.examples[0];
          const ref = hoist(op['x-schema-ids']?.body, media.schema);
          if (ref) media.schema = ref;
        }
      }
      for (const code of (op['x-error-codes'] ?? []) as ApiErrorCode[]) statuses.add(API_ERRORS[code].status);
      // Shared query parameters by reference.
      op.parameters = params.map((p) => (p.in === 'query' && p.name === 'cursor' ? parameter('Cursor') : p));
      const responses: Json = op.responses ?? {};
      const successHeaders: Json = {};
      if (op.parameters.some((p: Json) => p.$ref === '#/components/parameters/Cursor'))
        successHeaders.Link = header('Link');
      if (op['x-idempotent']) {
        op.parameters.push(parameter('IdempotencyKey'));
        successHeaders['Idempotent-Replayed'] = header('IdempotentReplayed');
        statuses.add(409);
      }
      if (op['x-etag']) {
        successHeaders.ETag = header('ETag');
        if (method === 'put' || method === 'patch') {
          op.parameters.push(parameter('IfMatch'), parameter('IfNoneMatch'));
          statuses.add(412);
        }
      }
      if (op.deprecated) successHeaders.Deprecation = header('Deprecation');
      if (op.parameters.length === 0) delete op.parameters;
      for (const [status, res] of Object.entries(responses) as [string, Json][]) {
        if (!/^2/.test(status)) continue;
        if (!res.description || res.description === 'Default Response')
          res.description = SUCCESS[status] ?? 'Success';
        for (const media of Object.values(res.content ?? {}) as Json[]) {
          const ref = hoist(op['x-schema-ids']?.[status], media.schema);
          if (ref) media.schema = ref;
        }
        if (Object.keys(successHeaders).length) res.headers = { ...(res.headers ?? {}), ...successHeaders };
      }
      for (const s of [...statuses].sort((a, b) => a - b)) {
        used.responses.add(s);
        responses[String(s)] = { $ref: `#/components/responses/${STATUS_RESPONSE[s]}` };
      }
      op.responses = responses;
      delete op['x-error-codes'];
      delete op['x-idempotent'];
      delete op['x-etag'];
      delete op['x-schema-ids'];
      delete op['x-raw-body'];
    }
  }

  components.responses = Object.fromEntries(
    [...used.responses]
      .sort((a, b) => a - b)
      .map((s) => {
        const codes = codesOf(s);
        const res: Json = {
          description: `Problem: ${codes.map((c) => `\`${c}\` (${API_ERRORS[c].description})`).join('; ')}`,
          content: problemContent,
        };
        if (s === 429 || s === 503) {
          used.headers.add('RetryAfter');
          res.headers = { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } };
        }
        if (s === 429) {
          for (const [h, n] of [
            ['RateLimit-Limit', 'RateLimitLimit'],
            ['RateLimit-Remaining', 'RateLimitRemaining'],
            ['RateLimit-Reset', 'RateLimitReset'],
          ] as const) {
            used.headers.add(n);
            res.headers[h] = { $ref: `#/components/headers/${n}` };
          }
        }
        return [STATUS_RESPONSE[s] as string, res];
      }),
  );
  components.parameters = Object.fromEntries([...used.parameters].sort().map((n) => [n, PARAMETERS[n]]));
  components.headers = Object.fromEntries([...used.headers].sort().map((n) => [n, HEADERS[n]]));
  doc.components = components;
  return doc;
}

/** The answer of a route that answers 204 with no body. */
export const NoContent = Type.Null({ description: 'Done; no body' });

/**
 * A page of a cursor-paged list, named `id`: `items` and `nextCursor` (null on the last page;
 * the same cursor is in the `Link: rel="next"` header).
 */
export function Page<T extends TSchema>(item: T, id: string) {
  return Type.Object(
    {
      items: Type.Array(item),
      nextCursor: Type.Union([Type.String(), Type.Null()], {
        description: 'give it as `cursor` for the next page; null on the last page',
      }),
    },
    { $id: id },
  );
}
