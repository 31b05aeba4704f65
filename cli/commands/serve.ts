/**
 * `dpu-ztp serve` and `dpu-ztp migrate`: the service's composition root.
 * Opens the database, migrates, builds the three listeners, listens, and
 * shuts down gracefully on SIGTERM/SIGINT.
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import {
  buildOperatorApi,
  DeviceStateLifecycle,
  databaseWakeSource,
  EventHub,
  EventLog,
  ensureAdminToken,
  eventRoutes,
  ImageStore,
  imageRoutes,
  loadOrCreateSecretKeyFile,
  type ReadinessCheck,
  SecretBox,
  WebhookSender,
  webhookRoutes,
} from '../../bootstrap/index.js';
import { type DatabaseHandle, migrateToLatest, openDatabase, pendingMigrations } from '../../db/index.js';
import {
  BootstrapService,
  buildDeviceServer,
  buildImagesServer,
  conveyedImageResolver,
  ImageCatalog,
  ImageFetchLog,
  imageBaseResolver,
  imageUrl,
} from '../../sztp-server/index.js';
import { addConfigOptions, loadConfig, type ServiceConfig } from '../config.js';
import { action, CliError } from '../exit.js';
import { createLogger } from '../logger.js';
import { toPem } from '../../pki/index.js';
import { ensurePki, fileOwnerStore, loadServerPki } from './serve-pki.js';

/** Grace period for in-flight requests on shutdown before connections are cut. */
const SHUTDOWN_GRACE_MS = 8_000;

/** Opens the configured database, prefixing failures with the setting that chose it. */
async function open(config: ServiceConfig): Promise<DatabaseHandle> {
  try {
    return await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  } catch (err) {
    const e = err as Error & { code?: string };
    const setting = config.databaseUrl ? 'DATABASE_URL' : `--data-dir ${config.dataDir}`;
    throw Object.assign(new Error(`${setting}: ${e.message}`), { code: e.code });
  }
}

async function readiness(handle: DatabaseHandle): Promise<ReadinessCheck[]> {
  const checks: ReadinessCheck[] = [];
  try {
    await handle.ping();
    checks.push({ name: 'database', ok: true, detail: handle.kind });
  } catch (err) {
    checks.push({ name: 'database', ok: false, detail: (err as Error).message });
    checks.push({ name: 'migrations', ok: false, detail: 'database unreachable' });
    return checks;
  }
  try {
    const pending = await pendingMigrations(handle.db);
    checks.push(
      pending.length === 0
        ? { name: 'migrations', ok: true, detail: 'all applied' }
        : { name: 'migrations', ok: false, detail: `pending: ${pending.join(', ')}` },
    );
  } catch (err) {
    checks.push({ name: 'migrations', ok: false, detail: (err as Error).message });
  }
  return checks;
}

async function listen(
  app: FastifyInstance,
  host: string,
  port: number,
  scheme: string,
  name: string,
  log: Logger,
) {
  try {
    await app.listen({ host, port });
  } catch (err) {
    throw new CliError(
      'SERVE_ERR_LISTEN',
      `${name} cannot listen on ${host}:${port}: ${(err as Error).message}`,
    );
  }
  const addr = app.server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  log.info({ name, url: `${scheme}://${shownHost}:${actualPort}`, port: actualPort }, `${name} listening`);
  return actualPort;
}

async function serve(flags: Record<string, unknown>): Promise<void> {
  const config = loadConfig(flags, process.env);
  const log = createLogger(config.logLevel, config.logFormat);
  const handle = await open(config);
  const apps: FastifyInstance[] = [];
  const background: Array<{ stop(): Promise<void> }> = [];
  let stopping = false;

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    const cut = setTimeout(() => {
      log.warn('grace period over: closing remaining connections');
      for (const app of apps) app.server.closeAllConnections?.();
    }, SHUTDOWN_GRACE_MS);
    cut.unref();
    await Promise.allSettled(apps.map((a) => a.close()));
    clearTimeout(cut);
    await Promise.allSettled(background.map((b) => b.stop()));
    await handle.close().catch((err: unknown) => log.error({ err }, 'closing the database failed'));
    log.info('stopped');
    process.exit(0);
  };

  try {
    log.info({ database: handle.kind, dataDir: config.dataDir }, 'database open');
    if (config.migrate) {
      const { applied } = await migrateToLatest(handle.db);
      log.info({ applied }, applied.length ? 'migrations applied' : 'schema is current');
    }
    // The image service: files under <data-dir>/images, metadata in the database,
    // served on the images listener (HTTP) and the device listener (HTTPS).
    const imagesDir = join(config.dataDir, 'images');
    const imageStore = new ImageStore(handle.db, { dir: imagesDir });
    await imageStore.init();
    const imageCatalog = new ImageCatalog(handle.db, { dir: imagesDir });
    const fetchLog = new ImageFetchLog(handle.db, log.child({ component: 'image-fetches' }));
    const ports = { http: config.imagesPort, https: config.devicePort };
    const imageBases = imageBaseResolver({
      httpAdvertise: config.imagesAdvertiseUrl,
      httpsAdvertise: config.deviceAdvertiseUrl,
      ports: () => ports,
    });
    await ensurePki(config.pkiDir, log);
    const { pki, revoked } = await loadServerPki(config.pkiDir, log);
    // Events: one log, one tail per process (woken by LISTEN/NOTIFY or PGlite's
    // in-process notifications) feeding SSE streams and the webhook sender.
    const events = new EventLog(handle.db);
    const hub = new EventHub(events, {
      wake: databaseWakeSource(handle),
      onError: (err) => log.warn({ err }, 'reading the event log failed; retrying on the next wake'),
    });
    // TODO(lead): wt-inv wires the secret key (DPU_ZTP_SECRET_KEY / --secret-key-file); share its SecretBox.
    const secretBox = new SecretBox(loadOrCreateSecretKeyFile(join(config.dataDir, 'secret.key')).key);
    const webhooks = new WebhookSender({
      db: handle.db,
      box: secretBox,
      onError: (err, d) => log.warn({ err, delivery: d?.id, webhook: d?.webhook }, 'webhook delivery failed'),
    });
    const lifecycle = new DeviceStateLifecycle(handle.db, { events });
    const service = new BootstrapService({
      db: handle.db,
      lifecycle,
      pki,
      revokedFingerprints: revoked,
      unknownDevicePolicy: config.unknownDevices,
      resolveImage: conveyedImageResolver(imageCatalog),
      onEventWriteError: (err, rows) =>
        log.warn({ err, dropped: rows }, 'could not record bootstrap requests'),
    });
    const apiHttps = config.apiTlsCert
      ? { cert: await readFile(config.apiTlsCert), key: await readFile(config.apiTlsKey as string) }
      : undefined;

    if ((await pendingMigrations(handle.db)).length === 0) {
      mkdirSync(config.dataDir, { recursive: true });
      const tokenFile = await ensureAdminToken(handle.db, join(config.dataDir, 'admin-token'));
      if (tokenFile)
        log.info({ file: tokenFile }, 'created the first admin API token (mode 0600); keep it safe');
      const swept = await imageStore.sweep();
      if (swept.length) log.info({ files: swept }, 'removed stale partial or unreferenced image files');
      await hub.start();
      webhooks.start(hub);
      background.push(webhooks, hub);
    } else {
      log.warn(
        'migrations are pending (--no-migrate): /readyz reports not-ready until `dpu-ztp migrate` runs',
      );
    }
    apps.push(
      await buildOperatorApi({
        logger: log.child({ listener: 'api' }),
        db: handle.db,
        events,
        readiness: () => readiness(handle),
        https: apiHttps,
        owner: fileOwnerStore(config.pkiDir, pki, (owner, pinned) => service.replaceOwner(owner, pinned)),
        routes: [
          eventRoutes({ log: events, hub }),
          webhookRoutes({ box: secretBox, onChange: () => webhooks.wake() }),
          imageRoutes({
            store: imageStore,
            urls: (name, origin) => {
              const b = imageBases(origin);
              return { https: imageUrl(b.https, name), http: imageUrl(b.http, name) };
            },
            onChange: (name) => imageCatalog.invalidate(name),
          }),
        ],
      }),
      await buildDeviceServer({
        logger: log.child({ listener: 'device' }),
        tls: { ...pki.tls, ca: pki.manufacturerAnchors.map((d) => toPem(d, 'CERTIFICATE')) },
        service,
        imageBase: (req) => imageBases({ host: req.headers.host, localAddress: req.socket.localAddress }),
        images: { catalog: imageCatalog, fetchLog },
      }),
      buildImagesServer({
        logger: log.child({ listener: 'images' }),
        images: { catalog: imageCatalog, fetchLog },
      }),
    );
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
    await listen(apps[0]!, config.host, config.apiPort, apiHttps ? 'https' : 'http', 'operator API', log);
    ports.https = await listen(apps[1]!, config.host, config.devicePort, 'https', 'device RESTCONF', log);
    ports.http = await listen(apps[2]!, config.host, config.imagesPort, 'http', 'images', log);
    log.info('dpu-ztp ready');
  } catch (err) {
    await Promise.allSettled(apps.map((a) => a.close()));
    await Promise.allSettled(background.map((b) => b.stop()));
    await handle.close().catch(() => {});
    throw err;
  }
}

async function migrate(flags: Record<string, unknown>): Promise<void> {
  const config = loadConfig(flags, process.env);
  const handle = await open(config);
  try {
    const { applied } = await migrateToLatest(handle.db);
    process.stdout.write(
      applied.length
        ? `applied ${applied.length} migration(s): ${applied.join(', ')}\n`
        : 'schema is current\n',
    );
  } finally {
    await handle.close();
  }
}

/** Registers `serve` and `migrate`. */
export function registerServeCommands(program: Command): void {
  addConfigOptions(
    program
      .command('serve')
      .description('run the service: operator API, device RESTCONF (TLS) and image listeners')
      .option('--no-migrate', 'do not apply pending migrations on start'),
  ).action(action((opts: Record<string, unknown>) => serve(opts)));

  addConfigOptions(
    program
      .command('migrate')
      .description('apply pending database migrations and exit (non-zero naming a failed one)'),
  ).action(action((opts: Record<string, unknown>) => migrate(opts)));
}
