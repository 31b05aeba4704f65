/**
 * `dpu-ztp openapi [--out FILE] [--types FILE]`: prints the operator API's
 * OpenAPI document — the one `serve` answers at `/api/v1/openapi.json`, built
 * here from the same route modules without listening or opening a data
 * directory — and, with `--types`, writes the TypeScript types the typed
 * client (`web/api/`) is built on (`npm run gen:api`; a test keeps them in step).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { pino } from 'pino';
import {
  BmcStore,
  buildOperatorApi,
  DeviceStateLifecycle,
  EventHub,
  EventLog,
  ImageStore,
  JobRunner,
  RevokedIdevids,
  SecretBox,
} from '../../bootstrap/index.js';
import { type Database, LocalNotifier } from '../../db/index.js';
import { action, CliError } from '../exit.js';
import { readPackageVersion } from '../version.js';
import { operatorRoutes } from './operator-routes.js';

/** The served OpenAPI document, as a plain JSON value. */
export type OpenApiDocument = Record<string, unknown> & { paths: Record<string, Record<string, unknown>> };

/**
 * Builds the operator API as `serve` does (every route module wired to real, unstarted
 * parts over a database that is never opened) and returns its document. `onRoute` sees
 * every route Fastify registers (the coverage test compares them with the document).
 */
export async function buildOpenApiDocument(
  opts: { onRoute?: (route: { method: string | string[]; url: string }) => void } = {},
): Promise<OpenApiDocument> {
  // Building routes queries nothing: a pool that never connects stands for the database (a
  // query would fail loudly, ECONNREFUSED, not answer wrongly), so no data directory is opened.
  const NOWHERE = 'postgres://127.0.0.1:1/openapi-document';
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: NOWHERE, max: 1 }) }),
  });
  const dir = await mkdtemp(join(tmpdir(), 'dpu-ztp-openapi-'));
  try {
    const events = new EventLog(db);
    const secretBox = new SecretBox(randomBytes(32));
    const bmcStore = new BmcStore(db, secretBox);
    // Built, never started: the routes only need the runner to exist.
    const runner = new JobRunner({
      db,
      boss: new PgBoss({ connectionString: NOWHERE }),
      notifier: new LocalNotifier(),
      lifecycle: new DeviceStateLifecycle(db, { events }),
      bmcs: bmcStore,
      installerImageUrl: async () => undefined,
    });
    const app = await buildOperatorApi({
      logger: pino({ level: 'silent' }),
      db,
      events,
      readiness: async () => [],
      // One request to render the document: a loaded machine must not turn it into a 503.
      maxEventLoopDelayMs: 0,
      version: readPackageVersion(),
      metrics: async () => '',
      ...(opts.onRoute ? { onRoute: opts.onRoute } : {}),
      routes: operatorRoutes({
        events,
        hub: new EventHub(events),
        secretBox,
        imageStore: new ImageStore(db, { dir }),
        bmcStore,
        runner,
        revokedIdevids: new RevokedIdevids({ db }),
      }),
    });
    try {
      // Through the route clients fetch it from (GET /api/v1/openapi.json), as they parse it.
      const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
      if (res.statusCode !== 200) throw new Error(`GET /api/v1/openapi.json answered ${res.statusCode}`);
      return res.json() as OpenApiDocument;
    } finally {
      await app.close();
    }
  } finally {
    await db.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The TypeScript types of a document, exactly as `openapi-typescript` writes them
 * (a development dependency: this works in a source checkout, not an installed package).
 */
export async function openApiTypes(doc: OpenApiDocument): Promise<string> {
  let mod: typeof import('openapi-typescript');
  try {
    mod = await import('openapi-typescript');
  } catch {
    throw new CliError(
      'CLI_ERR_USAGE',
      '--types needs the openapi-typescript development dependency (run it in a source checkout)',
    );
  }
  const ast = await mod.default(doc as unknown as import('openapi-typescript').OpenAPI3);
  return `${mod.COMMENT_HEADER}${mod.astToString(ast)}`;
}

/** Registers `openapi`. */
export function registerOpenApiCommand(program: Command): void {
  program
    .command('openapi')
    .description('print the operator API OpenAPI document (what serve answers at /api/v1/openapi.json)')
    .option('--out <FILE>', 'write the document to FILE instead of standard output')
    .option('--types <FILE>', 'also write its TypeScript types (openapi-typescript) to FILE')
    .action(
      action(async (opts: { out?: string; types?: string }) => {
        const doc = await buildOpenApiDocument();
        const text = `${JSON.stringify(doc, null, 2)}\n`;
        if (opts.out) await writeFile(opts.out, text);
        else process.stdout.write(text);
        if (opts.types) await writeFile(opts.types, await openApiTypes(doc));
      }),
    );
}
