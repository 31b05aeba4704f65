/**
 * In-process image service for tests: the operator API (with the image
 * routes) and the images listener on one fresh, migrated database, both
 * listening on real loopback ports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import {
  buildOperatorApi,
  createToken,
  ImageStore,
  type ImageStoreOptions,
  imageRoutes,
} from '../../bootstrap/index.js';
import {
  buildImagesServer,
  ImageCatalog,
  ImageFetchLog,
  imageBaseResolver,
  imageUrl,
} from '../../sztp-server/index.js';
import { migratedDatabase, type TestDatabase } from '../helpers/db.js';

/** A running in-process image service. */
export interface ImageHarness {
  t: TestDatabase;
  dir: string;
  store: ImageStore;
  catalog: ImageCatalog;
  fetchLog: ImageFetchLog;
  api: FastifyInstance;
  images: FastifyInstance;
  /** http://127.0.0.1:port of the operator API. */
  apiUrl: string;
  /** http://127.0.0.1:port of the images listener. */
  imagesUrl: string;
  tokens: { admin: string; operator: string; viewer: string };
  close(): Promise<void>;
}

const silent = pino({ level: 'silent' });

/** Starts the harness; `dir` defaults to a fresh temporary directory (removed on close). */
export async function startImageHarness(
  opts: { dir?: string; store?: Partial<ImageStoreOptions> } = {},
): Promise<ImageHarness> {
  const own = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'dpu-ztp-images-'));
  const t = await migratedDatabase();
  const store = new ImageStore(t.db, { dir, ...opts.store });
  await store.init();
  const catalog = new ImageCatalog(t.db, { dir });
  const fetchLog = new ImageFetchLog(t.db, silent, { flushMs: 20 });
  const ports = { http: 0, https: 1 };
  const bases = imageBaseResolver({ ports: () => ports });
  const api = await buildOperatorApi({
    logger: silent,
    db: t.db,
    readiness: async () => [{ name: 'database', ok: true }],
    rateLimitPerMinute: 100_000,
    maxEventLoopDelayMs: 0,
    routes: [
      imageRoutes({
        store,
        urls: (name, origin) => {
          const b = bases(origin);
          return { https: imageUrl(b.https, name), http: imageUrl(b.http, name) };
        },
        onChange: (n) => catalog.invalidate(n),
      }),
    ],
  });
  const images = buildImagesServer({ logger: silent, images: { catalog, fetchLog } });
  const apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
  const imagesUrl = await images.listen({ host: '127.0.0.1', port: 0 });
  ports.http = Number(new URL(imagesUrl).port);
  const tokens = {
    admin: (await createToken(t.db, 'admin', 'test-admin')).token,
    operator: (await createToken(t.db, 'operator', 'test-operator')).token,
    viewer: (await createToken(t.db, 'viewer', 'test-viewer')).token,
  };
  return {
    t,
    dir,
    store,
    catalog,
    fetchLog,
    api,
    images,
    apiUrl,
    imagesUrl,
    tokens,
    async close() {
      // Like serve's shutdown grace: a connection an HTTP client opened but never
      // used (seen here after an aborted undici download) is not "idle" to
      // Node, so close() alone would wait for the 72 s keep-alive timeout.
      for (const app of [images, api]) {
        const cut = setTimeout(() => app.server.closeAllConnections(), 500);
        await app.close();
        clearTimeout(cut);
      }
      await t.drop();
      if (own) rmSync(dir, { recursive: true, force: true });
    },
  };
}
