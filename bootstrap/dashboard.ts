/**
 * The lab dashboard on the operator listener: the built single-page app
 * (`web/`, built by Vite into `dist/dashboard/`) served at `/`, and `GET
 * /api/v1/session`, which tells the page who its token is and where traces are
 * shown. Hashed assets (`/assets/<name>-<hash>.js`) are immutable for a year;
 * `index.html` is revalidated on every load so a new build is picked up at once.
 * Every response outside `/docs` carries a Content-Security-Policy that allows
 * only this origin and no inline script or style (swagger-ui at `/docs` needs
 * inline code and keeps its own exception).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { problem } from './errors.js';
import type { ApiRoutes } from './operator-api.js';

/** Where the dashboard is and what it is told. */
export interface DashboardOptions {
  /** The built dashboard (Vite's output: `index.html`, `assets/`). Missing: `/` answers 503 naming the build step. */
  root: string;
  /** A trace viewer URL with `{traceId}` (e.g. `https://grafana.lab/explore?…{traceId}…`): the device page links each run's trace. */
  traceUiUrl?: string | undefined;
}

/** The policy of every response but `/docs`: this origin only, no inline code, no framing. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const HASHED = /^\/assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

/** Serves the dashboard at `/` on `app` (call before the app is ready). */
export async function registerDashboard(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  app.addHook('onSend', async (req, reply, payload) => {
    if (!req.url.startsWith('/docs')) reply.header('content-security-policy', DASHBOARD_CSP);
    return payload;
  });
  if (!existsSync(join(opts.root, 'index.html'))) {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply
        .code(503)
        .type('application/problem+json')
        .send(
          problem('API_ERR_UNAVAILABLE', `the dashboard is not built (no ${opts.root}): run npm run build`),
        ),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: opts.root,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    dotfiles: 'deny',
    cacheControl: false,
    schemaHide: true,
    setHeaders(reply, path) {
      const rel = path.slice(opts.root.length).replaceAll('\\', '/');
      reply.header('cache-control', HASHED.test(rel) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}

/** `GET /api/v1/session` (viewer): the token's name and role, and the dashboard's settings. */
export function sessionRoutes(opts: { traceUiUrl?: string | undefined }): ApiRoutes {
  return (api) => {
    api.get(
      '/session',
      {
        schema: {
          tags: ['dashboard'],
          operationId: 'getSession',
          summary: "The calling token's name and role, and the dashboard's settings (trace viewer URL)",
          response: {
            200: Type.Object({
              name: Type.String(),
              role: Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]),
              traceUiUrl: Type.Union([Type.String(), Type.Null()]),
            }),
          },
        },
      },
      async (req) => ({
        name: req.actor?.name ?? '',
        role: req.actor?.role ?? 'viewer',
        traceUiUrl: opts.traceUiUrl ?? null,
      }),
    );
  };
}
