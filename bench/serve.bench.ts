import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Report } from './run.js';
import { spawnServe } from './serve-process.js';

function rssKiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: get('VmRSS'), peak: get('VmHWM') };
}

async function startOnce(args: string[], env: NodeJS.ProcessEnv) {
  const t0 = performance.now();
  const s = await spawnServe(args, env);
  for (;;) {
    try {
      if ((await fetch(`${s.api}/healthz`)).ok) break;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = performance.now() - t0;
  const mem = rssKiB(s.child.pid as number);
  await s.stop();
  return {
    startup_ms: Math.round(ms),
    rss_mib: +(mem.rss / 1024).toFixed(1),
    peak_rss_mib: +(mem.peak / 1024).toFixed(1),
  };
}

async function postgresUrl(): Promise<string | undefined> {
  const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const c = new pg.Client({ connectionString: base, connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
    await c.end();
    return base;
  } catch {
    return undefined;
  }
}

export default async function bench(report: Report): Promise<void> {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-bench-serve-'));
  try {
    report({ name: 'serve_startup_pglite_fresh', ...(await startOnce(['--data-dir', dir], env)) });
    report({ name: 'serve_startup_pglite_reopen', ...(await startOnce(['--data-dir', dir], env)) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const base = await postgresUrl();
  if (!base) {
    report({ name: 'serve_startup_postgres', skipped: 'no PostgreSQL reachable' });
    return;
  }
  const name = `dpuztp_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const pgDir = mkdtempSync(join(tmpdir(), 'dpu-ztp-bench-serve-pg-'));
  try {
    const pgEnv = { ...env, DATABASE_URL: url.toString() };
    report({ name: 'serve_startup_postgres_fresh', ...(await startOnce(['--data-dir', pgDir], pgEnv)) });
    report({ name: 'serve_startup_postgres_migrated', ...(await startOnce(['--data-dir', pgDir], pgEnv)) });
  } finally {
    rmSync(pgDir, { recursive: true, force: true });
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}
