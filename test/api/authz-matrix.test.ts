/**
 * The authorization matrix, generated from the served OpenAPI document: every
 * operation × {no token, bad token, viewer, operator, admin} → 401, 403, or
 * anything but 401/403/5xx (a validation or not-found answer counts: the
 * role was let through). Each operation publishes its role as
 * `x-required-role`; the table below must name every operation with the role
 * the product intends (viewer reads; operator runs jobs and edits devices,
 * BMCs, profiles and images; admin manages tokens, webhooks, owner keys, revoked IDevIDs and
 * reads the audit log), so a new route fails here until it is placed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EventHub,
  EventLog,
  eventRoutes,
  ImageStore,
  imageRoutes,
  RevokedIdevids,
  revokedIdevidRoutes,
  SecretBox,
  webhookRoutes,
} from '../../bootstrap/index.js';
import { type TestApi, testApi } from '../helpers/api.js';
import { backend } from '../helpers/db.js';

type Role = 'viewer' | 'operator' | 'admin';

/** `METHOD /path` (OpenAPI form, without /api/v1) → the least role that may call it. */
const EXPECTED: Record<string, Role> = {
  'GET /audit': 'admin',
  'GET /devices': 'viewer',
  'GET /devices/{serial}': 'viewer',
  'PUT /devices/{serial}': 'operator',
  'DELETE /devices/{serial}': 'operator',
  'POST /devices/{serial}/approve': 'operator',
  'GET /devices/{serial}/events': 'viewer',
  'GET /events': 'viewer',
  'GET /images': 'viewer',
  'GET /images/{name}': 'viewer',
  'PUT /images/{name}': 'operator',
  'DELETE /images/{name}': 'operator',
  'GET /images/{name}/fetches': 'viewer',
  'GET /owner': 'viewer',
  'PUT /owner': 'admin',
  'GET /profiles': 'viewer',
  'GET /revoked-idevids': 'viewer',
  'POST /revoked-idevids': 'admin',
  'GET /revoked-idevids/{fingerprint}': 'viewer',
  'PUT /revoked-idevids/{fingerprint}': 'admin',
  'DELETE /revoked-idevids/{fingerprint}': 'admin',
  'GET /session': 'viewer',
  'GET /profiles/{name}': 'viewer',
  'PUT /profiles/{name}': 'operator',
  'DELETE /profiles/{name}': 'operator',
  'GET /tokens': 'admin',
  'POST /tokens': 'admin',
  'DELETE /tokens/{id}': 'admin',
  'GET /webhooks': 'admin',
  'GET /webhooks/{id}': 'admin',
  'PUT /webhooks/{id}': 'admin',
  'DELETE /webhooks/{id}': 'admin',
  'GET /webhooks/{id}/deliveries': 'admin',
};

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

interface Operation {
  key: string;
  method: string;
  path: string;
  role: Role;
  operationId?: string;
  parameters: Array<{ in: string; name: string; schema?: { format?: string } }>;
  requestBody?: { content: Record<string, unknown> };
}

let api: TestApi;
let hub: EventHub;
let base: string;
let ops: Operation[];
let imagesDir: string;

beforeAll(async () => {
  imagesDir = mkdtempSync(join(tmpdir(), 'dpu-ztp-matrix-'));
  api = await testApi({}, async (t) => {
    const store = new ImageStore(t.db, { dir: imagesDir });
    await store.init();
    hub = new EventHub(new EventLog(t.db));
    await hub.start();
    return [
      imageRoutes({ store }),
      eventRoutes({ log: new EventLog(t.db), hub }),
      webhookRoutes({ box: new SecretBox(randomBytes(32)) }),
      revokedIdevidRoutes({ revoked: new RevokedIdevids({ db: t.db }) }),
    ];
  });
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = api.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const doc = (await api.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json() as {
    paths: Record<
      string,
      Record<string, Omit<Operation, 'key' | 'method' | 'path' | 'role'> & { 'x-required-role': Role }>
    >;
  };
  ops = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (method === 'head' || method === 'parameters') continue;
      const short = path.replace(/^\/api\/v1/, '');
      ops.push({
        ...op,
        key: `${method.toUpperCase()} ${short}`,
        method: method.toUpperCase(),
        path,
        role: op['x-required-role'],
        parameters: op.parameters ?? [],
      });
    }
  }
});
afterAll(async () => {
  await hub?.stop();
  await api?.close();
  rmSync(imagesDir, { recursive: true, force: true });
});

/** Sends one request for `op` with `authorization` (undefined: none); resolves with its status. */
async function call(op: Operation, authorization: string | undefined): Promise<number> {
  let url = op.path;
  for (const p of op.parameters.filter((x) => x.in === 'path'))
    url = url.replace(`{${p.name}}`, p.schema?.format === 'uuid' ? randomUUID() : 'matrix-1');
  const headers: Record<string, string> = {};
  if (authorization) headers.authorization = authorization;
  let body: string | undefined;
  if (op.requestBody) {
    const json = 'application/json' in op.requestBody.content;
    headers['content-type'] = json ? 'application/json' : 'application/octet-stream';
    body = json ? '{}' : '';
  }
  const ac = new AbortController();
  const res = await request(`${base}${url}`, {
    method: op.method as 'GET',
    headers,
    body,
    signal: ac.signal,
  });
  // The event stream never ends: its status line is the answer.
  if (String(res.headers['content-type']).startsWith('text/event-stream')) ac.abort();
  else await res.body.dump();
  return res.statusCode;
}

describe(`authorization matrix from the OpenAPI document (${backend})`, () => {
  it('names every operation with an operationId and a required role, exactly as the table intends', () => {
    expect(ops.length).toBeGreaterThan(20);
    for (const op of ops) {
      expect(op.operationId, op.key).toMatch(/^[a-z][A-Za-z]+$/);
      expect(['viewer', 'operator', 'admin'], op.key).toContain(op.role);
    }
    expect(new Set(ops.map((o) => o.operationId)).size).toBe(ops.length);
    const served = Object.fromEntries(ops.map((o) => [o.key, o.role]));
    expect(served).toEqual(EXPECTED);
  });

  it('answers every operation × {no token, bad token, viewer, operator, admin} as its role says', async () => {
    const got: string[] = [];
    const want: string[] = [];
    for (const op of ops) {
      const cases: Array<[string, string | undefined, 'unauth' | 'forbidden' | 'allowed']> = [
        ['none', undefined, 'unauth'],
        ['bad', 'Bearer dztp_not-a-real-token', 'unauth'],
        ...(['viewer', 'operator', 'admin'] as const).map(
          (r) =>
            [r, `Bearer ${api.tokens[r]}`, RANK[r] >= RANK[op.role] ? 'allowed' : 'forbidden'] as [
              string,
              string,
              'allowed' | 'forbidden',
            ],
        ),
      ];
      for (const [who, authz, expect_] of cases) {
        const status = await call(op, authz);
        const outcome =
          status === 401
            ? 'unauth'
            : status === 403
              ? 'forbidden'
              : status < 500
                ? 'allowed'
                : `error ${status}`;
        got.push(`${op.key} as ${who}: ${outcome}`);
        want.push(`${op.key} as ${who}: ${expect_}`);
      }
    }
    expect(got).toEqual(want);
  });
});
