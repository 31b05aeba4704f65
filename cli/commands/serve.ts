/**
 * `dpu-ztp serve` and `dpu-ztp migrate`: the service's composition root.
 * Opens the database, migrates, builds the three listeners, listens, and
 * shuts down gracefully on SIGTERM/SIGINT.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import {
  BmcStore,
  type Credentials,
  CredentialStore,
  buildOperatorApi,
  DeviceStateLifecycle,
  databaseWakeSource,
  EventHub,
  EventLog,
  ensureAdminToken,
  ImageStore,
  JobRunner,
  JobStore,
  JobTraceIndex,
  loadOrCreateSecretKeyFile,
  openJobQueue,
  type ReadinessCheck,
  RevokedIdevids,
  SecretBox,
  WebhookSender,
} from '../../bootstrap/index.js';
import {
  checkDataDir,
  createNotifier,
  type DatabaseHandle,
  migrateToLatest,
  type Notifier,
  openDatabase,
  pendingMigrations,
} from '../../db/index.js';
import {
  BootstrapService,
  buildDeviceServer,
  buildImagesServer,
  conveyedImageResolver,
  ImageCatalog,
  ImageFetchLog,
  imageBaseResolver,
  imageUrl,
  type RevokedFingerprints,
  type ServerPki,
  setDeviceTls,
} from '../../sztp-server/index.js';
import { addConfigOptions, type ConnectionLimits, loadConfig, type ServiceConfig } from '../config.js';
import { action, CliError } from '../exit.js';
import { createLogger } from '../logger.js';
import { toPem } from '../../pki/index.js';
import { observeDevicesByState } from '../../otel/index.js';
import { startTelemetry } from '../../otel/sdk.js';
import { readPackageVersion } from '../version.js';
import { operatorRoutes } from './operator-routes.js';
import { ensurePki, fileOwnerStore, loadServerPki, readPkiDir, readRevokedFile } from './serve-pki.js';

/** SDK diagnostics (a collector that is down, a dropped batch) as warnings in the service log. */
function otelDiagLogger(log: Logger) {
  const l = log.child({ component: 'otel' });
  return {
    error: (msg: string, ...args: unknown[]) => l.warn({ args }, msg),
    warn: (msg: string, ...args: unknown[]) => l.warn({ args }, msg),
    info: (msg: string, ...args: unknown[]) => l.debug({ args }, msg),
    debug: () => {},
    verbose: () => {},
  };
}

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

/**
 * The secret box that seals BMC passwords: the key from DPU_ZTP_SECRET_KEY, else from
 * --secret-key-file (default `<data-dir>/secret.key`, made with mode 0600 on first start).
 */
function openSecretBox(config: ServiceConfig, log: Logger): SecretBox {
  if (config.secretKey) return new SecretBox(config.secretKey);
  const { key, created } = loadOrCreateSecretKeyFile(config.secretKeyFile);
  if (created)
    log.info(
      { file: config.secretKeyFile },
      'created the secret key that encrypts BMC passwords (mode 0600); back it up, and give every replica the same key',
    );
  return new SecretBox(key);
}

async function readiness(
  handle: DatabaseHandle,
  dataDir: string,
  images: ImageStore,
): Promise<ReadinessCheck[]> {
  const checks: ReadinessCheck[] = [];
  // The data directory holds images, the admin token and (embedded mode) the database.
  const dir = await checkDataDir(dataDir);
  checks.push({ name: 'data-dir', ok: dir.ok, detail: dir.detail });
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
  // Several replicas share one image volume: a replica that cannot see an image whole
  // (volume not mounted, lagging, damaged) says so instead of failing BMCs one by one.
  try {
    const f = await images.checkFiles();
    const bad = [...f.missing.map((n) => `${n} (missing)`), ...f.wrongSize.map((n) => `${n} (wrong size)`)];
    checks.push(
      bad.length === 0
        ? { name: 'images', ok: true, detail: `${f.checked} image file(s) present in ${images.dir}` }
        : {
            name: 'images',
            ok: false,
            detail: `${bad.length} of ${f.checked} image(s) not usable in ${images.dir}: ${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ', …' : ''}`,
          },
    );
  } catch (err) {
    checks.push({ name: 'images', ok: false, detail: (err as Error).message });
  }
  return checks;
}

/**
 * Bounds every connection of a listener: an idle socket (no traffic either way) is
 * destroyed, headers and (where requests are small) whole requests must arrive in
 * time, keep-alive connections close after a quiet spell, and connections past the
 * cap are closed on accept. A download that keeps moving is never idle.
 */
function limitConnections(app: FastifyInstance, l: ConnectionLimits, wholeRequest: boolean): void {
  const server = app.server;
  server.headersTimeout = l.headersTimeoutMs;
  // The operator API takes multi-GB image uploads: there the idle timeout bounds a stalled one.
  server.requestTimeout = wholeRequest ? l.requestTimeoutMs : 0;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxConnections = l.maxConnections;
  // No 'timeout' listener on the server: Node destroys the idle socket.
  server.timeout = l.idleTimeoutMs;
}

async function listen(
  app: FastifyInstance,
  host: string,
  port: number,
  scheme: string,
  name: string,
  log: Logger,
  limits: ConnectionLimits,
  wholeRequest = true,
) {
  limitConnections(app, limits, wholeRequest);
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
  // Before anything that records: instruments bind to the provider present when made.
  const telemetry = startTelemetry({
    env: process.env,
    defaultServiceName: 'dpu-ztp',
    serviceVersion: readPackageVersion(),
    prometheus: flags.metrics !== false,
    diagLogger: otelDiagLogger(log),
    instrument: true,
  });
  const handle = await open(config);
  const apps: FastifyInstance[] = [];
  const background: Array<{ stop(): Promise<void> }> = [];
  let stopping = false;
  let runner: JobRunner | undefined;
  let notifier: Notifier | undefined;
  let boss: Awaited<ReturnType<typeof openJobQueue>> | undefined;

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
    // Runs in progress are interrupted and their leases released: another replica (or this one after a
    // restart) takes each over from the step it was in.
    await runner?.stop().catch((err: unknown) => log.error({ err }, 'stopping the job runner failed'));
    await boss?.stop({ graceful: true, wait: true, close: true }).catch(() => undefined);
    await notifier?.close().catch(() => undefined);
    await telemetry.shutdown(); // bounded: a down collector costs at most 2 s here
    await handle.close().catch((err: unknown) => log.error({ err }, 'closing the database failed'));
    log.info('stopped');
    process.exit(0);
  };

  try {
    log.info({ database: handle.kind, dataDir: config.dataDir }, 'database open');
    log.info(
      {
        tracing: telemetry.tracing,
        otlpMetrics: telemetry.otlpMetrics,
        prometheus: telemetry.scrape !== undefined,
      },
      'telemetry',
    );
    if (telemetry.scrape) {
      // One grouped count, reused for 5 s and cut at 1 s (otel/metrics.ts); every state reported, 0 included.
      observeDevicesByState(
        async () =>
          (
            await handle.db
              .selectFrom('devices')
              .select(['state', (eb) => eb.fn.countAll<string>().as('n')])
              .groupBy('state')
              .execute()
          ).map((r) => ({ state: r.state, count: Number(r.n) })),
        { states: ['registered', 'pending', 'bootstrapping', 'provisioned', 'failed'] },
      );
    }
    if (config.migrate) {
      const { applied } = await migrateToLatest(handle.db);
      log.info({ applied }, applied.length ? 'migrations applied' : 'schema is current');
    }
    // The image service: files under --images-dir (default <data-dir>/images; with several
    // replicas a volume each mounts), metadata in the database, served on the images
    // listener (HTTP) and the device listener (HTTPS).
    const imagesDir = config.imagesDir;
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
    // One secret key seals BMC passwords, webhook secrets and (PostgreSQL) the PKI's keys.
    const secretBox = openSecretBox(config, log);
    const migrated = (await pendingMigrations(handle.db)).length === 0;
    if (migrated) notifier = createNotifier(handle);
    // PKI: on PostgreSQL the credentials every replica shares live in the database (the
    // first replica to start seeds them from its --pki-dir); the embedded database serves
    // one process, which reads --pki-dir as before.
    let pki: ServerPki;
    let credStore: CredentialStore | undefined;
    let live: Credentials | undefined;
    if (handle.kind === 'postgres' && migrated) {
      credStore = new CredentialStore({ db: handle.db, box: secretBox, notifier });
      if (!(await credStore.present())) {
        await ensurePki(config.pkiDir, log);
        const r = await credStore.import(await readPkiDir(config.pkiDir), { ifEmpty: true });
        if (r.written.length)
          log.info(
            { pkiDir: config.pkiDir, roles: r.written },
            'stored the PKI directory in the database: every replica uses these credentials from now on',
          );
      }
      live = await credStore.load();
      pki = {
        tls: live.tls,
        manufacturerAnchors: live.manufacturerAnchors,
        owner: live.owner,
        pinnedDomainCert: live.pinnedDomainCert,
        masa: live.masa,
      };
      log.info(
        {
          credentials: live.stamp,
          owner: Boolean(live.owner),
          labMasa: Boolean(live.masa),
        },
        'PKI loaded from the database',
      );
    } else {
      await ensurePki(config.pkiDir, log);
      ({ pki } = await loadServerPki(config.pkiDir, log));
    }
    // Revoked IDevIDs: rows every replica shares, followed live (NOTIFY, and a re-check every
    // 10 s); <pki-dir>/revoked-idevids.txt, when there, is imported into them on every start
    // (a line already stored is left alone), so a set-up that used the file loses nothing.
    const revokedFile = await readRevokedFile(config.pkiDir);
    for (const b of revokedFile.bad)
      log.warn(
        { file: revokedFile.path, line: b.line, text: b.text },
        'not a SHA-256 fingerprint: line skipped',
      );
    let revoked: RevokedFingerprints;
    let revokedIdevids: RevokedIdevids | undefined;
    if (migrated) {
      const list = new RevokedIdevids({
        db: handle.db,
        notifier,
        onError: (err) =>
          log.warn({ err }, 'reloading the revoked IDevIDs failed; retrying on the next change or check'),
      });
      const imported = await list.importList(
        revokedFile.fingerprints,
        `file:${revokedFile.path}`,
        `listed in ${revokedFile.path}`,
      );
      if (imported.length)
        log.info(
          { file: revokedFile.path, imported: imported.length },
          'imported revoked IDevIDs from the file',
        );
      await list.start();
      background.push({ stop: async () => list.stop() });
      log.info({ revoked: list.size }, 'revoked IDevIDs loaded from the database');
      revoked = list;
      revokedIdevids = list;
    } else {
      // No table yet (--no-migrate with migrations pending): the file alone, as before.
      revoked = new Set(revokedFile.fingerprints);
    }
    // Events: one log, one tail per process (woken by LISTEN/NOTIFY or PGlite's
    // in-process notifications) feeding SSE streams and the webhook sender.
    const events = new EventLog(handle.db);
    const hub = new EventHub(events, {
      wake: databaseWakeSource(handle),
      onError: (err) => log.warn({ err }, 'reading the event log failed; retrying on the next wake'),
    });
    const webhooks = new WebhookSender({
      db: handle.db,
      box: secretBox,
      onError: (err, d) => log.warn({ err, delivery: d?.id, webhook: d?.webhook }, 'webhook delivery failed'),
    });
    const lifecycle = new DeviceStateLifecycle(handle.db, { events });
    // Joins a device's RESTCONF calls and its BMC's image reads to the device's provisioning trace
    // (built with the job runner below; only when spans are exported at all).
    let traces: JobTraceIndex | undefined;
    const imageTraces = {
      forImageToken: (token: string) => traces?.forImageToken(token),
      forImageTokenWaiting: async (token: string) => traces?.forImageTokenWaiting(token),
    };
    const service = new BootstrapService({
      db: handle.db,
      activeTraceparent: (serial) => traces?.forSerial(serial),
      lifecycle,
      pki,
      revokedFingerprints: revoked,
      unknownDevicePolicy: config.unknownDevices,
      basicThrottle: config.basicAuthThrottle,
      resolveImage: conveyedImageResolver(imageCatalog),
      onEventWriteError: (err, rows) =>
        log.warn({ err, dropped: rows }, 'could not record bootstrap requests'),
    });
    // A credentials change (PUT /api/v1/owner or `pki import --replace` on any replica) is
    // one new immutable object: the signing snapshot is swapped whole, and the device
    // listener's TLS context only when the TLS row moved.
    const apply = (next: Credentials): void => {
      const prev = live as Credentials;
      if (next.stamp === prev.stamp) return;
      live = next;
      service.replaceSigning({ owner: next.owner, pinned: next.pinnedDomainCert, masa: next.masa });
      const device = apps[1];
      if (next.tlsGeneration !== prev.tlsGeneration && device)
        setDeviceTls(device, {
          cert: next.tls.cert,
          key: next.tls.key,
          ca: next.manufacturerAnchors.map((d) => toPem(d, 'CERTIFICATE')),
        });
      log.info({ credentials: next.stamp }, 'credentials changed: signing and serving with the new ones');
    };
    const apiHttps = config.apiTlsCert
      ? {
          cert: await readFile(config.apiTlsCert),
          key: await readFile(config.apiTlsKey as string),
          handshakeTimeout: config.connections.tlsHandshakeTimeoutMs,
        }
      : undefined;

    const bmcStore = new BmcStore(handle.db, secretBox);
    if (migrated) {
      // A key that does not open the stored passwords (changed, or another replica's) would
      // fail every BMC later, one by one; refuse to start instead.
      await bmcStore.verifyKey();
      // Provisioning jobs: pg-boss on the same database, device events across replicas by NOTIFY.
      // The secret key opens BMC passwords (the BMC inventory's routes wire the same key).
      mkdirSync(config.dataDir, { recursive: true });
      boss = await openJobQueue(handle, (err) => log.warn({ err }, 'job queue error'));
      const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
      if (telemetry.tracing) {
        traces = new JobTraceIndex({
          store: new JobStore(handle.db),
          notifier,
          owner,
          onError: (err) => log.debug({ err }, 'job trace lookup failed'),
        });
        await traces.start();
        background.push({ stop: async () => traces?.stop() });
      }
      runner = new JobRunner({
        owner,
        ...(traces ? { traces } : {}),
        db: handle.db,
        boss,
        notifier: notifier as Notifier,
        lifecycle,
        bmcs: bmcStore,
        installerImageUrl: async (name, token) => {
          if (!(await imageCatalog.get(name))) return undefined;
          const base =
            config.imagesAdvertiseUrl ??
            `http://${config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host}:${ports.http}`;
          return imageUrl(base, name, token);
        },
        maxConcurrent: config.maxConcurrentProvisions,
        leaseMs: config.jobLease * 1000,
        timeouts: {
          awaitDeviceMs: config.awaitDeviceTimeout * 1000,
          awaitCompleteMs: config.awaitCompleteTimeout * 1000,
        },
        log: log.child({ component: 'jobs' }),
      });
      if (!config.imagesAdvertiseUrl)
        log.warn(
          'provisioning jobs hand BMCs installer URLs on the images listener at the bind address; set --images-advertise-url to the address BMCs reach',
        );
    }
    if (migrated) {
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
        readiness: () => readiness(handle, config.dataDir, imageStore),
        version: readPackageVersion(),
        rateLimitPerMinute: config.apiRateLimit,
        https: apiHttps,
        ...(telemetry.scrape ? { metrics: telemetry.scrape } : {}),
        // The dashboard Vite built into dist/dashboard (`npm run build`); not dist/web, where tsc
        // emits web/api (the typed client the CLI uses).
        dashboard: {
          root: join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dashboard'),
          traceUiUrl: config.traceUiUrl,
        },
        owner: credStore
          ? credStore.ownerStore(
              () => live as Credentials,
              async () => apply(await (credStore as CredentialStore).load()),
            )
          : fileOwnerStore(config.pkiDir, pki, (owner, pinned) => service.replaceOwner(owner, pinned)),
        routes: operatorRoutes({
          events,
          hub,
          secretBox,
          onWebhookChange: () => webhooks.refresh(),
          imageStore,
          imageUrls: (name, origin) => {
            const b = imageBases(origin);
            return { https: imageUrl(b.https, name), http: imageUrl(b.http, name) };
          },
          onImageChange: (name) => imageCatalog.invalidate(name),
          bmcStore,
          runner,
          revokedIdevids,
        }),
      }),
      await buildDeviceServer({
        logger: log.child({ listener: 'device' }),
        tls: { ...pki.tls, ca: pki.manufacturerAnchors.map((d) => toPem(d, 'CERTIFICATE')) },
        handshakeTimeoutMs: config.connections.tlsHandshakeTimeoutMs,
        service,
        imageBase: (req) => imageBases({ host: req.headers.host, localAddress: req.socket.localAddress }),
        images: { catalog: imageCatalog, fetchLog, traces: imageTraces },
      }),
      buildImagesServer({
        logger: log.child({ listener: 'images' }),
        images: { catalog: imageCatalog, fetchLog, traces: imageTraces },
      }),
    );
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
    const limits = config.connections;
    await listen(
      apps[0]!,
      config.host,
      config.apiPort,
      apiHttps ? 'https' : 'http',
      'operator API',
      log,
      limits,
      false,
    );
    ports.https = await listen(
      apps[1]!,
      config.host,
      config.devicePort,
      'https',
      'device RESTCONF',
      log,
      limits,
    );
    ports.http = await listen(apps[2]!, config.host, config.imagesPort, 'http', 'images', log, limits);
    await runner?.start();
    if (credStore && live) {
      const stop = await credStore.watch(live, apply, {
        onError: (err) =>
          log.warn({ err }, 'reloading credentials failed; retrying on the next change or check'),
      });
      background.push({ stop: async () => stop() });
    }
    log.info({ owner: runner?.owner }, 'dpu-ztp ready');
  } catch (err) {
    await Promise.allSettled(apps.map((a) => a.close()));
    await Promise.allSettled(background.map((b) => b.stop()));
    await runner?.stop().catch(() => {});
    await boss?.stop({ graceful: false, wait: true, close: true }).catch(() => {});
    await notifier?.close().catch(() => {});
    await handle.close().catch(() => {});
    await telemetry.shutdown();
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
      .option('--no-migrate', 'do not apply pending migrations on start')
      .option('--no-metrics', 'do not serve GET /metrics (Prometheus) on the operator listener'),
  ).action(action((opts: Record<string, unknown>) => serve(opts)));

  addConfigOptions(
    program
      .command('migrate')
      .description('apply pending database migrations and exit (non-zero naming a failed one)'),
  ).action(action((opts: Record<string, unknown>) => migrate(opts)));
}
