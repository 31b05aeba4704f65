/** An in-process operator API over a fresh, migrated test database, with tokens for each role. */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import {
  type ApiRoutes,
  buildOperatorApi,
  createToken,
  type OperatorApiOptions,
} from '../../bootstrap/index.js';
import { migratedDatabase, type TestDatabase } from './db.js';

/** A ready operator API with admin/operator/viewer tokens. */
export interface TestApi {
  app: FastifyInstance;
  t: TestDatabase;
  tokens: { admin: string; operator: string; viewer: string };
  /** `app.inject` with the given role's bearer token (default operator). */
  req(opts: InjectOptions & { as?: 'admin' | 'operator' | 'viewer' | null }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** Builds the API on a fresh database; `routes` may build route modules on that database. */
export async function testApi(
  extra: Partial<OperatorApiOptions> = {},
  routes?: (t: TestDatabase) => ApiRoutes[] | Promise<ApiRoutes[]>,
): Promise<TestApi> {
  const t = await migratedDatabase();
  const app = await buildOperatorApi({
    logger: pino({ level: 'silent' }),
    db: t.db,
    readiness: async () => [{ name: 'database', ok: true }],
    // The loop here also runs the test's own work (PGlite, big fixtures): no load guard.
    maxEventLoopDelayMs: 0,
    ...extra,
    ...(routes ? { routes: [...(extra.routes ?? []), ...(await routes(t))] } : {}),
  });
  await app.ready();
  const tokens = {
    admin: (await createToken(t.db, 'admin', 'test-admin')).token,
    operator: (await createToken(t.db, 'operator', 'test-operator')).token,
    viewer: (await createToken(t.db, 'viewer', 'test-viewer')).token,
  };
  return {
    app,
    t,
    tokens,
    req(opts) {
      const { as = 'operator', ...rest } = opts;
      const headers = { ...(rest.headers ?? {}) } as Record<string, string>;
      if (as) headers.authorization = `Bearer ${tokens[as]}`;
      return app.inject({ ...rest, headers });
    },
    async close() {
      await app.close();
      await t.drop();
    },
  };
}
