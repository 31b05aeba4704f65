/**
 * get-bootstrapping-data throughput and latency with 200 concurrent devices,
 * each with its own IDevID over mTLS: (a) keep-alive, (b) a new TLS handshake
 * per request — against the bootstrap server (signed onboarding information,
 * PGlite) and, in the same run, against a bare Node `https` server with the
 * same certificates returning a precomputed body (the floor). The clients run
 * in a separate process (bench/https-load.ts), as real devices would; the
 * server's CPU per request is reported beside the throughput.
 */
import { createServer, type Server } from 'node:https';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { pino } from 'pino';
import { DeviceStateLifecycle } from '../bootstrap/index.js';
import { migrateToLatest, openDatabase } from '../db/index.js';
import { createLabPki, decodeArtifact, decodeArtifacts, signerFromPrivateKey } from '../pki/index.js';
import { BootstrapService, buildDeviceServer } from '../sztp-server/index.js';
import { startTelemetry } from '../otel/sdk.js';
import { runLoad } from './https-load.js';
import type { Report } from './run.js';

const DEVICES = 200;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PATH = '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
const BODY = JSON.stringify({ 'ietf-sztp-bootstrap-server:input': { 'signed-data-preferred': [null] } });

interface Device {
  cert: string;
  key: string;
}

async function load(port: number, ca: string, devices: Device[], keepAlive: boolean) {
  const cpu0 = process.cpuUsage();
  const r = await runLoad({ port, path: PATH, body: BODY, ca, devices, keepAlive, seconds: SECONDS });
  const cpu = process.cpuUsage(cpu0);
  // CPU this process (the server under test) spent per answered request, µs.
  const server_cpu_us_per_request = Math.round((cpu.user + cpu.system) / Math.max(1, r.requests));
  return { ...r, server_cpu_us_per_request };
}

function load1(port: number, ca: string, d: Device): Promise<void> {
  return new Promise((resolve, reject) => {
    const r = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: PATH,
        method: 'POST',
        agent: false,
        ca,
        cert: d.cert,
        key: d.key,
        servername: 'localhost',
        headers: { 'content-type': 'application/yang-data+json' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`warm-up got ${res.statusCode}`)),
        );
      },
    );
    r.on('error', reject);
    r.end(BODY);
  });
}

export default async function bench(report: Report): Promise<void> {
  const serials = Array.from({ length: DEVICES }, (_, i) => `BENCH-${String(i).padStart(4, '0')}`);
  const lab = await createLabPki({ devices: serials, now: new Date() });
  const file = (p: string) => {
    const f = lab.files.find((x) => x.path === p);
    if (!f) throw new Error(`lab PKI lacks ${p}`);
    return typeof f.data === 'string' ? f.data : Buffer.from(f.data).toString('latin1');
  };
  const devices = serials.map((sn) => ({
    cert: file(`devices/${sn}/idevid.crt`),
    key: file(`devices/${sn}/idevid.key`),
  }));
  const ca = file('tls-ca.crt');
  const tls = { cert: file('server.crt'), key: file('server.key') };
  const manufacturer = file('manufacturer-ca.crt');

  // BENCH_DATABASE_URL=postgres://… runs against PostgreSQL in a throwaway database.
  const scratch = process.env.BENCH_DATABASE_URL
    ? await scratchPostgres(process.env.BENCH_DATABASE_URL)
    : undefined;
  const handle = await openDatabase(scratch ? { databaseUrl: scratch.url } : { inMemory: true });
  await migrateToLatest(handle.db);
  await handle.db
    .insertInto('profiles')
    .values({
      name: 'bench',
      spec: JSON.stringify({
        type: 'onboarding',
        configurationHandling: 'merge',
        configuration: 'x'.repeat(1500),
      }),
      updated_at: new Date(),
    })
    .execute();
  await handle.db
    .insertInto('devices')
    .values(serials.map((serial) => ({ serial, profile: 'bench', updated_at: new Date() })))
    .execute();
  // BENCH_SZTP_OTEL=export: the SDK on, spans and metrics exported over OTLP/HTTP
  // (protobuf) to a local sink, /metrics collection on; default `off`: no SDK.
  const otelMode = process.env.BENCH_SZTP_OTEL ?? 'off';
  const sink = otelMode === 'export' ? await otlpSink() : undefined;
  const telemetry = sink
    ? startTelemetry({
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_METRIC_EXPORT_INTERVAL: '1000' },
        defaultServiceName: 'dpu-ztp-bench',
        prometheus: true,
      })
    : undefined;
  const service = new BootstrapService({
    db: handle.db,
    lifecycle: new DeviceStateLifecycle(handle.db),
    pki: {
      tls,
      manufacturerAnchors: decodeArtifacts(manufacturer),
      owner: signerFromPrivateKey(file('owner.key'), { certificates: [decodeArtifact(file('owner.crt'))] }),
      pinnedDomainCert: decodeArtifact(file('owner-ca.crt')),
      masa: signerFromPrivateKey(file('masa.key'), { certificates: [decodeArtifact(file('masa.crt'))] }),
    },
    resolveImage: async () => undefined,
  });
  const app = await buildDeviceServer({
    logger: pino({ level: 'silent' }),
    tls: { ...tls, ca: [manufacturer] },
    service,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const appPort = (app.server.address() as AddressInfo).port;

  // One real response, precomputed for the floor server.
  const sample = await new Promise<string>((resolve, reject) => {
    const r = httpsRequest(
      {
        host: '127.0.0.1',
        port: appPort,
        path: PATH,
        method: 'POST',
        ca,
        cert: devices[0]!.cert,
        key: devices[0]!.key,
        servername: 'localhost',
        headers: { 'content-type': 'application/yang-data+json' },
      },
      (res) => {
        let b = '';
        res.on('data', (c) => {
          b += c;
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolve(b) : reject(new Error(`${res.statusCode} ${b}`)),
        );
      },
    );
    r.on('error', reject);
    r.end(BODY);
  });
  const floor: Server = createServer(
    { ...tls, ca: [manufacturer], requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, {
          'content-type': 'application/yang-data+json',
          'content-length': Buffer.byteLength(sample),
        });
        res.end(sample);
      });
    },
  );
  await new Promise<void>((r) => floor.listen(0, '127.0.0.1', r));
  const floorPort = (floor.address() as AddressInfo).port;

  try {
    // Warm-up: one request per device mints its voucher (lab MASA) and fills the caches;
    // the runs below measure the steady state a retry storm sees.
    const w0 = performance.now();
    const signaturesBeforeWarmup = service.signatures;
    await Promise.all(devices.map((d) => load1(appPort, ca, d)));
    report({
      name: 'sztp_gbd_warmup_first_request_per_device',
      devices: DEVICES,
      ms: Math.round(performance.now() - w0),
      signatures: service.signatures - signaturesBeforeWarmup,
    });
    // BENCH_SZTP_MODES=keepalive,new_tls_per_request selects modes (default both).
    const modes = (process.env.BENCH_SZTP_MODES ?? 'keepalive,new_tls_per_request').split(',');
    for (const keepAlive of [true, false]) {
      const mode = keepAlive ? 'keepalive' : 'new_tls_per_request';
      if (!modes.includes(mode)) continue;
      const base = await load(floorPort, ca, devices, keepAlive);
      const signaturesBefore = service.signatures;
      const ours = await load(appPort, ca, devices, keepAlive);
      const db = scratch ? 'postgres' : 'pglite';
      report({ name: `sztp_gbd_${mode}_floor_https`, devices: DEVICES, seconds: SECONDS, ...base });
      report({
        name: `sztp_gbd_${mode}_dpu_ztp`,
        devices: DEVICES,
        seconds: SECONDS,
        database: db,
        otel: otelMode,
        ...(sink ? { otlp_requests: sink.requests() } : {}),
        ...ours,
        ratio_to_floor: +(ours.rps / Math.max(1, base.rps)).toFixed(3),
        // The floor's server CPU per request over ours: independent of which side saturates.
        cpu_ratio_to_floor: +(
          base.server_cpu_us_per_request / Math.max(1, ours.server_cpu_us_per_request)
        ).toFixed(3),
        signatures_during_run: service.signatures - signaturesBefore,
        response_bytes: sample.length,
      });
    }
  } finally {
    await app.close();
    await telemetry?.shutdown();
    await sink?.close();
    await new Promise((r) => floor.close(r));
    await handle.close();
    await scratch?.drop();
  }
}

/** A local OTLP/HTTP sink: drains each export and answers 200 (what a healthy collector costs us). */
export async function otlpSink(): Promise<{ url: string; requests(): number; close(): Promise<void> }> {
  const { createServer: createHttpServer } = await import('node:http');
  let n = 0;
  const srv = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    requests: () => n,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

/** A new empty database on the server of `adminUrl`, dropped by `drop()`. */
async function scratchPostgres(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `dpuztp_bench_${process.pid}`;
  const admin = async (q: string) => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      await c.query(q);
    } finally {
      await c.end();
    }
  };
  await admin(`drop database if exists ${name} with (force)`);
  await admin(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) };
}
