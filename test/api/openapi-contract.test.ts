/**
 * The OpenAPI contract, over the document the service serves (the `openapi` command
 * fetches it from GET /api/v1/openapi.json of the app `serve` builds): Spectral with
 * `spectral:oas` plus the project ruleset (`.spectral.yaml`) finds nothing — 0 errors,
 * 0 warnings, 0 hints; every route Fastify registers is in it with an operationId
 * (but the few documented as hidden); deprecated operations announce it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Type } from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiRoutes } from '../../bootstrap/index.js';
import { buildOpenApiDocument, type OpenApiDocument } from '../../cli/commands/openapi.js';
import { testApi } from '../helpers/api.js';
import { repoRoot, scaledTimeout } from '../helpers/serve.js';

/** Routes that are not part of the API contract, and why. */
const HIDDEN: Record<string, string> = {
  'GET /api/v1/openapi.json': 'the document itself',
  'GET /docs': 'the browsable UI (swagger-ui and its assets below /docs)',
  'GET /healthz': 'liveness probe, no token',
  'GET /readyz': 'readiness probe, no token',
  'GET /metrics': 'Prometheus scrape, no token',
};

let doc: OpenApiDocument;
const routes: Array<{ method: string; url: string }> = [];
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-openapi-lint-'));
  doc = await buildOpenApiDocument({
    onRoute: (r) => {
      for (const m of ([] as string[]).concat(r.method)) routes.push({ method: m, url: r.url });
    },
  });
}, scaledTimeout(60_000));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the served OpenAPI document', () => {
  it(
    'passes Spectral (spectral:oas + .spectral.yaml) with 0 errors, 0 warnings',
    async () => {
      const file = join(dir, 'openapi.json');
      const out = join(dir, 'spectral.json');
      writeFileSync(file, JSON.stringify(doc));
      const bin = join(repoRoot, 'node_modules', '.bin', 'spectral');
      // Exit 1 when there are results: the results file tells which, so read it either way.
      await promisify(execFile)(
        bin,
        [
          'lint',
          '--ruleset',
          join(repoRoot, '.spectral.yaml'),
          '--format',
          'json',
          '--output',
          out,
          '--fail-severity',
          'hint',
          file,
        ],
        { cwd: dir, timeout: scaledTimeout(120_000) },
      ).catch((err: { code?: unknown; stderr?: string }) => {
        if (err.code !== 1) throw new Error(`spectral failed to run: ${err.stderr ?? String(err)}`);
      });
      const results = JSON.parse(readFileSync(out, 'utf8')) as Array<{
        code: string;
        message: string;
        path: string[];
      }>;
      expect(results.map((r) => `${r.code}: ${r.message} at ${r.path.join('.')}`)).toEqual([]);
      // Spectral saw the document: 30-odd operations, all named components.
      expect(Object.keys(doc.paths).length).toBeGreaterThan(20);
    },
    scaledTimeout(180_000),
  );

  it('is OpenAPI 3.1 with version, licence and contact', () => {
    expect(doc.openapi).toBe('3.1.0');
    const info = doc.info as Record<string, unknown>;
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.license).toMatchObject({ name: 'Apache-2.0' });
    expect(info.contact).toBeTruthy();
  });

  it('holds every route Fastify registers, each with a unique operationId (but the hidden ones)', () => {
    const seen = new Set<string>();
    const missing: string[] = [];
    const ids: string[] = [];
    for (const { method, url } of routes) {
      if (method === 'HEAD') continue; // Fastify's automatic HEAD of each GET
      const key = `${method} ${url}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (Object.keys(HIDDEN).some((h) => key === h || (h === 'GET /docs' && url.startsWith('/docs'))))
        continue;
      const path = url.replace(/\/:([A-Za-z0-9_]+)/g, '/{$1}').replace('::', ':');
      const op = doc.paths[path]?.[method.toLowerCase()] as { operationId?: string } | undefined;
      if (!op?.operationId) missing.push(key);
      else ids.push(op.operationId);
    }
    expect(missing).toEqual([]);
    expect(ids.length).toBeGreaterThan(30);
    expect(new Set(ids).size).toBe(ids.length);
    // And nothing in the document that Fastify does not serve.
    let documented = 0;
    for (const item of Object.values(doc.paths)) documented += Object.keys(item).length;
    expect(documented).toBe(ids.length);
  });

  it('states each operation role, error answers and success schema', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, raw] of Object.entries(item)) {
        const op = raw as {
          'x-required-role': string;
          description: string;
          responses: Record<string, { $ref?: string }>;
          security: unknown[];
        };
        const where = `${method} ${path}`;
        expect(op.description, where).toContain(`\`${op['x-required-role']}\` role`);
        expect(op.security, where).toEqual([{ bearer: [] }]);
        for (const s of ['401', '403', '429', '500', '503'])
          expect(op.responses[s]?.$ref, `${where} ${s}`).toMatch(/^#\/components\/responses\//);
        expect(
          Object.keys(op.responses).some((s) => /^2/.test(s)),
          where,
        ).toBe(true);
      }
    }
  });
});

describe('deprecations', () => {
  it(
    'marks a deprecated operation in the document and answers it with a Deprecation header',
    async () => {
      const legacy: ApiRoutes = (api) => {
        api.get(
          '/legacy-ping',
          {
            config: { deprecatedSince: '2026-12-01T00:00:00Z' },
            schema: {
              tags: ['devices'],
              operationId: 'getLegacyPing',
              summary: 'A deprecated test operation',
              description: 'Only in this test.',
              response: { 200: Type.Object({ ok: Type.Boolean() }, { $id: 'LegacyPing' }) },
            },
          },
          async () => ({ ok: true }),
        );
      };
      const api = await testApi({ routes: [legacy] });
      try {
        const res = await api.req({ method: 'GET', url: '/api/v1/legacy-ping', as: 'viewer' });
        expect(res.statusCode).toBe(200);
        expect(res.headers.deprecation).toBe(`@${Date.parse('2026-12-01T00:00:00Z') / 1000}`);
        const served = (await api.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
        const op = served.paths['/api/v1/legacy-ping'].get;
        expect(op.deprecated).toBe(true);
        expect(op.responses['200'].headers.Deprecation).toEqual({ $ref: '#/components/headers/Deprecation' });
        // An operation that is not deprecated carries no such header.
        const other = await api.req({ method: 'GET', url: '/api/v1/profiles', as: 'viewer' });
        expect(other.headers.deprecation).toBeUndefined();
      } finally {
        await api.close();
      }
    },
    scaledTimeout(60_000),
  );
});
