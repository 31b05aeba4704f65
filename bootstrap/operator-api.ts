/**
 * The operator API (listener :8080): health and readiness now; devices,
 * profiles, images, tokens and jobs register here as later issues land. The
 * app is built here and listened on by `cli/` only (STYLE.md lesson 2).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';

/** One named readiness check with its outcome. */
export interface ReadinessCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

/** What the operator API needs from the service around it. */
export interface OperatorApiOptions {
  logger: FastifyBaseLogger;
  /** Reports whether the service can serve traffic (database reachable, migrations applied). */
  readiness(): Promise<ReadinessCheck[]>;
  /** PEM cert and key: serve over HTTPS. */
  https?: { cert: Buffer | string; key: Buffer | string } | undefined;
}

/** Builds the operator API app (not listening). */
export function buildOperatorApi(opts: OperatorApiOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger,
    ...(opts.https ? { https: opts.https } : {}),
  }) as unknown as FastifyInstance;

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const checks = await opts.readiness();
    const ready = checks.every((c) => c.ok);
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not-ready', checks };
  });

  return app;
}
