/**
 * `BENCH=fleet`: one provisioning job over N emulated DPUs (half virtual media,
 * half BlueField image push; emulators and their devices in their own process,
 * delays low) against `dpu-ztp serve`, on PGlite and, when DATABASE_URL is set,
 * on PostgreSQL. Reports the wall time from POST /jobs to the job's end, the
 * service's CPU per device (utime+stime of the serve process), its peak RSS,
 * and database time per device (PostgreSQL: `pg_stat_database.active_time`;
 * on PGlite the database runs inside serve, so its time is within the CPU
 * figure). Goal: 1,000 DPUs (`BENCH_FLEET_DPUS=1000`) in under 5 min, service
 * CPU under 50 ms per device. Default N = 50 keeps a run short.
 *
 * `BENCH_REPLICAS=1,2` (PostgreSQL only; default 1) runs the PostgreSQL part once per
 * count with that many serve replicas on the one database, sharing the image directory
 * and the secret key; devices are spread over the replicas' device listeners. On one
 * machine this measures the cost of coordination (leases, LISTEN/NOTIFY, pg-boss claims
 * across processes), not a speed-up: service CPU is summed over the replicas.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { BmcStore, loadOrCreateSecretKeyFile, SecretBox } from '../bootstrap/index.js';
import { type DatabaseHandle, openDatabase } from '../db/index.js';
import { createLabPki } from '../pki/index.js';
import type { Report } from './run.js';
import { dpuZtpBin, spawnServe } from './serve-process.js';

const N = Number(process.env.BENCH_FLEET_DPUS ?? 50);
const REPLICAS = (process.env.BENCH_REPLICAS ?? '1')
  .split(',')
  .map((x) => Number(x.trim()))
  .filter((x) => Number.isInteger(x) && x >= 1);
const here = dirname(fileURLToPath(import.meta.url));

function procTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const after = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(after[11]) + Number(after[12]); // utime + stime (fields 14, 15)
}

function peakRssMiB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

async function startEmulators(pkiDir: string, serials: string[]) {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(here, 'fleet-emulators.js'), pkiDir, ...serials],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  let done = 0;
  const urls = await new Promise<Record<string, string>>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`emulators exited with ${c}`)));
    lines.on('line', (l) => {
      const m = JSON.parse(l) as { urls?: Record<string, string>; done?: number };
      if (m.urls) resolve(m.urls);
      if (m.done) done = m.done;
    });
  });
  return {
    urls,
    done: () => done,
    setDevice: (url: string) => child.stdin?.write(`${url}\n`),
    stop: () =>
      new Promise<void>((r) => {
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

async function register(db: DatabaseHandle, dataDir: string, urls: Record<string, string>): Promise<void> {
  const store = new BmcStore(
    db.db,
    new SecretBox(loadOrCreateSecretKeyFile(join(dataDir, 'secret.key')).key),
  );
  await db.db
    .insertInto('profiles')
    .values({
      name: 'fleet',
      spec: JSON.stringify({
        type: 'onboarding',
        configurationHandling: 'replace',
        configuration: 'hostname fleet\n',
        installerImage: 'installer.iso',
      }),
      updated_at: new Date(),
    })
    .execute();
  for (const [serial, url] of Object.entries(urls)) {
    await store.put(`bmc-${serial}`, { address: url, username: 'admin', password: 'secret' });
    await db.db
      .insertInto('devices')
      .values({ serial, profile: 'fleet', bmc: `bmc-${serial}`, updated_at: new Date() })
      .execute();
  }
}

async function activeMs(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ t: number }>(
      'select active_time as t from pg_stat_database where datname = current_database()',
    );
    return Number(r.rows[0]?.t ?? 0);
  } finally {
    await c.end();
  }
}

async function run(report: Report, backend: 'pglite' | 'postgres', replicas = 1): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-fleet-'));
  const dataDir = join(root, 'data');
  const pkiDir = join(root, 'pki');
  mkdirSync(dataDir, { recursive: true });
  const serials = Array.from({ length: N }, (_, i) => `FLEET-${String(i).padStart(5, '0')}`);
  const lab = await createLabPki({ devices: serials, now: new Date() });
  for (const f of lab.files) {
    mkdirSync(dirname(join(pkiDir, f.path)), { recursive: true });
    writeFileSync(join(pkiDir, f.path), f.data, { mode: f.path.endsWith('.key') ? 0o600 : 0o644 });
  }
  let dbName: string | undefined;
  let databaseUrl: string | undefined;
  if (backend === 'postgres') {
    const admin = new URL(process.env.DATABASE_URL as string);
    dbName = `dpuztp_fleet_${Date.now()}`;
    const c = new pg.Client({ connectionString: admin.toString() });
    await c.connect();
    await c.query(`create database ${dbName}`);
    await c.end();
    admin.pathname = `/${dbName}`;
    databaseUrl = admin.toString();
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  const emus = await startEmulators(pkiDir, serials);
  try {
    const mig = spawnSync(process.execPath, [dpuZtpBin, 'migrate', '--data-dir', dataDir], {
      env,
      encoding: 'utf8',
    });
    if (mig.status !== 0) throw new Error(`migrate failed: ${mig.stderr}`);
    const db = await openDatabase(databaseUrl ? { databaseUrl } : { dataDir });
    await register(db, dataDir, emus.urls);
    await db.close();
    // Replicas share the data directory (secret key, admin token, images): on PostgreSQL
    // nothing locks it, as a volume every replica mounts would be.
    const serves: Awaited<ReturnType<typeof spawnServe>>[] = [];
    try {
      for (let i = 0; i < replicas; i++)
        serves.push(
          await spawnServe(
            [
              '--data-dir',
              dataDir,
              '--pki-dir',
              pkiDir,
              '--await-device-timeout',
              '120',
              '--await-complete-timeout',
              '120',
            ],
            env,
          ),
        );
      const serve = serves[0] as (typeof serves)[number];
      emus.setDevice(serves.map((s) => s.device).join(' '));
      const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
      const call = async (method: string, path: string, body?: unknown) => {
        // 503 is the service's "under pressure, retry later" (a loaded machine): retry
        // what is safe to repeat (the job POST is not retried).
        for (let i = 0; ; i++) {
          const r = await call1(method, path, body);
          if (r.status !== 503 || method === 'POST' || i >= 10) return r;
          await new Promise((res) => setTimeout(res, 1000));
        }
      };
      const call1 = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${serve.api}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json',
          },
          ...(body === undefined ? {} : { body: body instanceof Uint8Array ? body : JSON.stringify(body) }),
        });
        return { status: res.status, json: (await res.json().catch(() => undefined)) as any };
      };
      const up = await call('PUT', '/api/v1/images/installer.iso', new Uint8Array(64 * 1024).fill(7));
      if (up.status >= 300) throw new Error(`upload: ${up.status}`);
      const pids = serves.map((s) => s.child.pid as number);
      const ticks = () => pids.reduce((n, p) => n + procTicks(p), 0);
      const ticks0 = ticks();
      const db0 = databaseUrl ? await activeMs(databaseUrl) : 0;
      const t0 = performance.now();
      const job = await call('POST', '/api/v1/jobs', { kind: 'provision', devices: serials });
      if (job.status !== 202) throw new Error(`POST /jobs: ${job.status} ${JSON.stringify(job.json)}`);
      // Poll the job list (heads with counts): reading every device row each time would be the
      // benchmark's own load on the service, not the provisioning's.
      let shed = 0;
      for (;;) {
        await new Promise((r) => setTimeout(r, 500));
        const r = await call('GET', '/api/v1/jobs?limit=1');
        // A busy service may shed a poll (503 from its load guard): poll again, count it.
        if (r.status !== 200) {
          shed++;
          continue;
        }
        const head = r.json.items[0];
        if (['succeeded', 'failed', 'cancelled'].includes(head.state)) break;
      }
      const wallMs = performance.now() - t0;
      const cpuMs = ((ticks() - ticks0) * 1000) / CLK_TCK;
      const dbMs = databaseUrl ? (await activeMs(databaseUrl)) - db0 : undefined;
      const view = (await call('GET', `/api/v1/jobs/${job.json.id}`)).json;
      report({
        name: `fleet-${backend}${backend === 'postgres' ? `-${replicas}r` : ''}`,
        dpus: N,
        replicas,
        state: view.state,
        counts: view.counts,
        failures: view.devices
          .filter((d: any) => d.error)
          .slice(0, 3)
          .map((d: any) => `${d.serial}: ${d.error.code} ${d.error.message}`),
        devices_acting: emus.done(),
        polls_shed: shed,
        wall_s: +(wallMs / 1000).toFixed(1),
        devices_per_min: +((N / wallMs) * 60_000).toFixed(1),
        service_cpu_ms_per_device: +(cpuMs / N).toFixed(1),
        service_peak_rss_mib: +Math.max(...pids.map(peakRssMiB)).toFixed(1),
        db_ms_per_device: dbMs === undefined ? 'in-process (within service CPU)' : +(dbMs / N).toFixed(1),
        load_average_1m: +loadavg()[0]!.toFixed(1),
        goal: '1000 DPUs < 300 s, service CPU < 50 ms/device',
      });
    } finally {
      for (const s of serves) await s.stop();
    }
  } finally {
    await emus.stop();
    if (dbName) {
      const admin = new URL(process.env.DATABASE_URL as string);
      const c = new pg.Client({ connectionString: admin.toString() });
      await c.connect();
      await c.query(`drop database if exists ${dbName} with (force)`);
      await c.end();
    }
    rmSync(root, { recursive: true, force: true });
  }
}

export default async function bench(report: Report): Promise<void> {
  if (process.env.BENCH_FLEET_BACKENDS !== 'postgres') await run(report, 'pglite');
  if (process.env.DATABASE_URL) for (const n of REPLICAS) await run(report, 'postgres', n);
}
