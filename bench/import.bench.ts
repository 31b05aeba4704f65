/**
 * `POST /api/v1/devices:import` at size: N devices, each with its own BMC
 * (password sealed), imported row by row (one transaction each), then as one
 * atomic transaction, then re-imported (every row an update). Reports wall
 * time and the process's CPU time per row.
 *
 * Knobs (env; a bench module is its own composition root): IMPORT_BENCH_ROWS
 * (default 2000, at most the 10,000-row limit), BENCH_DATABASE_URL=postgres://…
 * to run on PostgreSQL in a throwaway database instead of in-memory PGlite.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import {
  BmcStore,
  buildOperatorApi,
  createToken,
  deviceImportRoutes,
  SecretBox,
} from '../bootstrap/index.js';
import { migrateToLatest, openDatabase } from '../db/index.js';
import type { Report } from './run.js';

async function scratchPostgres(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `dpuztp_bench_import_${process.pid}`;
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

export default async function bench(report: Report): Promise<void> {
  const rows = Math.min(10_000, Number(process.env.IMPORT_BENCH_ROWS ?? 2000));
  const scratch = process.env.BENCH_DATABASE_URL
    ? await scratchPostgres(process.env.BENCH_DATABASE_URL)
    : undefined;
  const handle = await openDatabase(scratch ? { databaseUrl: scratch.url } : { inMemory: true });
  try {
    await migrateToLatest(handle.db);
    const store = new BmcStore(handle.db, new SecretBox(randomBytes(32)));
    const app = await buildOperatorApi({
      logger: pino({ level: 'silent' }),
      db: handle.db,
      readiness: async () => [],
      routes: [deviceImportRoutes({ store })],
    });
    await app.ready();
    const { token } = await createToken(handle.db, 'operator', 'bench');
    const csv = (prefix: string, pw: string) =>
      `serial,labels,bmcAddress,bmcUsername,bmcPassword,bmcInsecure\n${Array.from(
        { length: rows },
        (_, i) =>
          `${prefix}-${i},rack=r${i % 40};slot=${i % 16},https://${prefix.toLowerCase()}-${i}.bmc.lab,root,${pw}-${i},true`,
      ).join('\n')}\n`;
    const run = async (name: string, body: string, query = '') => {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await app.inject({
        method: 'POST',
        url: `/api/v1/devices:import${query}`,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
        payload: body,
      });
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const out = r.json() as { counts: Record<string, number> };
      if (r.statusCode !== 200 || out.counts.refused)
        throw new Error(`${name}: ${r.statusCode} ${r.body.slice(0, 300)}`);
      report({
        name,
        database: handle.kind,
        rows,
        ...out.counts,
        wallMs: Math.round(ms),
        msPerRow: +(ms / rows).toFixed(3),
        cpuMsPerRow: +((cpu.user + cpu.system) / 1000 / rows).toFixed(3),
      });
    };
    await run('import_rows', csv('ROW', 'pw'));
    await run('import_atomic', csv('ATOM', 'pw'), '?atomic=true');
    await run('reimport_updates', csv('ROW', 'pw2'));
    await run('dry_run', csv('DRY', 'pw'), '?dryRun=true');
    await app.close();
  } finally {
    await handle.close();
    await scratch?.drop();
  }
}
