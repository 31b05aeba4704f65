/**
 * The generated typed client (`web/api/`): its types are in step with the document the
 * service serves (regenerated here and compared with the committed file — run
 * `npm run gen:api` when this fails), and the client works over real HTTP against the
 * operator API: typed data, problem answers thrown with their stable code, a closed port
 * as an unreachable error.
 */
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument, openApiTypes } from '../../cli/commands/openapi.js';
import { ApiProblemError, ApiUnreachableError, createApiClient, ok } from '../../web/api/index.js';
import { type TestApi, testApi } from '../helpers/api.js';
import { backend } from '../helpers/db.js';
import { repoRoot, scaledTimeout } from '../helpers/serve.js';

describe('generated client types', () => {
  it(
    'web/api/schema.d.ts is what openapi-typescript makes of the served document (npm run gen:api)',
    async () => {
      const doc = await buildOpenApiDocument();
      const served = await openApiTypes(doc);
      const committed = readFileSync(join(repoRoot, 'web/api/schema.d.ts'), 'utf8');
      // Compared as whole text: any drift (a new route, a changed field) fails here.
      expect(committed === served, 'web/api/schema.d.ts is stale: run `npm run gen:api`').toBe(true);
    },
    scaledTimeout(60_000),
  );
});

describe(`typed client over real HTTP (${backend})`, () => {
  let api: TestApi;
  let base: string;
  beforeAll(async () => {
    api = await testApi();
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = api.app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  }, scaledTimeout(60_000));
  afterAll(async () => {
    await api?.close();
  });

  it('sends the bearer token and returns typed data', async () => {
    const client = createApiClient({ baseUrl: base, token: api.tokens.operator });
    const put = await ok(
      client.PUT('/api/v1/devices/{serial}', {
        params: { path: { serial: 'SN-CLIENT-1' } },
        body: { labels: { rack: 'r1' } },
      }),
    );
    expect(put.serial).toBe('SN-CLIENT-1');
    const page = await ok(client.GET('/api/v1/devices', { params: { query: { label: ['rack=r1'] } } }));
    expect(page.items.map((d) => d.serial)).toEqual(['SN-CLIENT-1']);
    expect(page.nextCursor).toBeNull();
  });

  it('throws a problem answer as ApiProblemError with its stable code', async () => {
    const client = createApiClient({ baseUrl: base, token: () => api.tokens.viewer });
    const missing = await ok(
      client.GET('/api/v1/devices/{serial}', { params: { path: { serial: 'SN-NOPE' } } }),
    ).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiProblemError);
    expect(missing).toMatchObject({ status: 404, code: 'API_ERR_NOT_FOUND' });
    const forbidden = await ok(
      client.PUT('/api/v1/devices/{serial}', { params: { path: { serial: 'SN-X' } }, body: {} }),
    ).catch((e: unknown) => e);
    expect(forbidden).toMatchObject({ status: 403, code: 'API_ERR_FORBIDDEN' });
    const anonymous = createApiClient({ baseUrl: base });
    const unauth = await ok(anonymous.GET('/api/v1/devices')).catch((e: unknown) => e);
    expect(unauth).toMatchObject({ status: 401, code: 'API_ERR_UNAUTHENTICATED' });
  });

  it('rejects with ApiUnreachableError when nothing listens', async () => {
    // A port that was just listened on and closed: nothing answers there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const client = createApiClient({ baseUrl: `http://127.0.0.1:${port}`, token: 'x' });
    const err = await client.GET('/api/v1/devices').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnreachableError);
    expect((err as ApiUnreachableError).message).toMatch(/ECONNREFUSED/);
  });
});
