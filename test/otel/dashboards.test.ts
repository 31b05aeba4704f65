/**
 * The Grafana dashboards (otel/grafana/): the committed JSON is what the
 * generator produces, and every Prometheus query of every panel holds against
 * a real Prometheus (Debian `prometheus`) that scraped `GET /metrics` of a
 * `dpu-ztp serve` while it provisioned two emulated DPUs end to end with the
 * real agent: each query parses, each metric name it uses was exported, and
 * the key fleet panels return data.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dashboardJson, dashboards, PROVISIONING_YAML, promName } from '../../otel/grafana/dashboards.js';
import { Attr, Metric } from '../../otel/index.js';
import { ProvisionLab } from '../helpers/provision-lab.js';
import { repoRoot, scaledTimeout } from '../helpers/serve.js';
import { haveTool } from '../helpers/tools.js';
import { repeatsPgliteRun } from '../helpers/db.js';

interface Target {
  expr?: string;
  query?: string;
  datasource?: { type?: string };
}
interface Panel {
  type: string;
  title?: string;
  targets?: Target[];
}

/** Every (dashboard, panel, target) of the generated dashboards. */
function targets(): Array<{ dashboard: string; panel: string; target: Target }> {
  return Object.entries(dashboards()).flatMap(([dashboard, d]) =>
    ((d as { panels: Panel[] }).panels ?? []).flatMap((p) =>
      (p.targets ?? []).map((target) => ({ dashboard, panel: p.title ?? p.type, target })),
    ),
  );
}

const promTargets = () => targets().filter((t) => t.target.datasource?.type === 'prometheus');

/** Grafana's variables as concrete values (the run is a few minutes old at most). */
function expand(expr: string, device: string): string {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '10m')
    .replaceAll('$device', device);
}

describe('dashboards as code (otel/grafana/)', () => {
  it('the committed JSON and provisioning file are what `npm run dashboards` writes', () => {
    for (const [name, d] of Object.entries(dashboards()))
      expect(
        readFileSync(join(repoRoot, 'otel', 'grafana', 'dashboards', `${name}.json`), 'utf8'),
        name,
      ).toBe(dashboardJson(d));
    expect(readFileSync(join(repoRoot, 'otel', 'grafana', 'provisioning', 'dashboards.yaml'), 'utf8')).toBe(
      PROVISIONING_YAML,
    );
  });

  it('every metric a panel names is a metric of otel/conventions.ts, every span attribute an Attr', () => {
    const known = new Set(
      Object.values(Metric).flatMap((m) => {
        const base = m.replaceAll('.', '_');
        return [base, `${base}_total`, `${base}_bucket`, `${base}_count`, `${base}_sum`];
      }),
    );
    const attrs = new Set<string>([...Object.values(Attr), 'dpu_ztp.job.attempt']);
    expect(promTargets().length).toBeGreaterThan(10);
    for (const { panel, target } of targets()) {
      for (const m of (target.expr ?? '').match(/\bdpu_ztp_\w+/g) ?? [])
        expect(known, `${panel}: ${m}`).toContain(m);
      for (const a of (target.query ?? '').match(/\bspan\.(dpu_ztp\.[\w.]+)/g) ?? [])
        expect(attrs, `${panel}: ${a}`).toContain(a.slice('span.'.length));
    }
    expect(promName(Metric.jobsFinished, 'counter')).toBe('dpu_ztp_jobs_finished_total');
  });
});

/** A loopback port nobody listens on now. */
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const SERIALS = ['DASH-1', 'DASH-2'];

describe.skipIf(repeatsPgliteRun || !haveTool('prometheus'))(
  'dashboards against a real Prometheus scraping serve',
  {
    timeout: 300_000,
  },
  () => {
    const lab = new ProvisionLab();
    let prom: ChildProcess | undefined;
    let promUrl = '';
    let promLog = '';

    afterAll(async () => {
      prom?.kill('SIGTERM');
      await lab.close();
    });

    async function query(
      expr: string,
    ): Promise<{ status: string; error?: string; data?: { result: any[] } }> {
      const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
      return (await res.json()) as { status: string; error?: string; data?: { result: any[] } };
    }

    /** Waits until `check` holds, polling every 250 ms. */
    async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
      const end = Date.now() + scaledTimeout(ms);
      while (!(await check().catch(() => false))) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${promLog.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }

    it('every panel query parses, names only exported metrics, and the key fleet panels have data', async () => {
      // Two DPUs of one persona, one at a time (one run in flight): each step's histogram series then
      // moves twice, as in a fleet, so the quantile panels have a rate to show. The first BMC answers
      // one GET 503 (the client retries it) and its firmware inventory 404 (a Redfish error the probe
      // tolerates), so the Redfish panel's retries and errors are real.
      const t0 = Date.now();
      const phase = (what: string) =>
        console.log(`dashboards e2e: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      await lab.prepare([
        {
          serial: 'DASH-1',
          persona: 'generic',
          emulator: {
            faults: [
              { method: 'GET', path: /\/Systems\/[^/]+$/, times: 1, status: 503, retryAfter: 0 },
              { method: 'GET', path: /\/FirmwareInventory$/, times: 1, status: 404 },
            ],
          },
        },
        { serial: 'DASH-2', persona: 'generic' },
      ]);
      phase('lab prepared');
      const serve = await lab.start(['--max-concurrent-provisions', '1']);
      phase('serve started');

      // Prometheus on a random port, scraping the operator listener's /metrics every second.
      const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-prom-'));
      const port = await freePort();
      promUrl = `http://127.0.0.1:${port}`;
      writeFileSync(
        join(dir, 'prometheus.yml'),
        [
          'global:',
          '  scrape_interval: 1s',
          '  evaluation_interval: 1s',
          'scrape_configs:',
          '  - job_name: dpu-ztp',
          '    metrics_path: /metrics',
          '    static_configs:',
          `      - targets: ['${new URL(serve.api).host}']`,
          '',
        ].join('\n'),
      );
      prom = spawn(
        '/usr/bin/env',
        [
          'prometheus',
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      prom.stdout?.on('data', (c: Buffer) => {
        promLog += c.toString();
      });
      prom.stderr?.on('data', (c: Buffer) => {
        promLog += c.toString();
      });
      await until('prometheus ready', async () => (await fetch(`${promUrl}/-/ready`)).ok, 30_000);
      // The counters' zero starts must be scraped before the runs, or rate() has no first sample.
      await until(
        'the first scrape of serve',
        async () => (await query('dpu_ztp_jobs_started_total')).data?.result.length !== 0,
        30_000,
      );

      phase('prometheus scraped');
      const created = await lab.api(
        'POST',
        '/api/v1/jobs',
        { kind: 'provision', devices: SERIALS },
        { 'idempotency-key': 'dash-1' },
      );
      expect(created.status, JSON.stringify(created.body)).toBe(202);
      const job = await lab.waitJob(
        created.body.id,
        (j) => ['succeeded', 'failed', 'cancelled'].includes(j.state),
        scaledTimeout(120_000),
      );
      const runs = await Promise.all(lab.agents);
      phase('job finished');
      expect(job.state, `${JSON.stringify(job.devices, null, 1)}\n${runs.map((r) => r.out).join('\n')}`).toBe(
        'succeeded',
      );
      // Both runs finished and scraped.
      await until(
        'the finished runs in Prometheus',
        async () =>
          Number(
            (await query('sum(dpu_ztp_jobs_finished_total{kind="provision",outcome="succeeded"})')).data
              ?.result[0]?.value[1],
          ) === 2,
        30_000,
      );

      phase('runs scraped');
      const names = new Set<string>(
        ((await (await fetch(`${promUrl}/api/v1/label/__name__/values`)).json()) as { data: string[] }).data,
      );
      const problems: string[] = [];
      const withData = new Set<string>();
      for (const { dashboard, panel, target } of promTargets()) {
        const expr = expand(target.expr as string, 'DASH-1');
        const r = await query(expr);
        if (r.status !== 'success') problems.push(`${dashboard} / ${panel}: ${expr}: ${r.error}`);
        for (const m of expr.match(/\bdpu_ztp_\w+/g) ?? [])
          if (!names.has(m)) problems.push(`${dashboard} / ${panel}: ${m} was never exported`);
        if (r.data?.result.some((s: { value: [number, string] }) => Number.isFinite(Number(s.value[1]))))
          withData.add(panel);
      }
      expect(problems).toEqual([]);
      for (const key of [
        'Devices by state',
        'Provisioning rate',
        'Success ratio',
        'Step duration p50 / p95',
        'Image throughput',
        'RESTCONF error rate',
        'Progress reports by type',
        'Redfish requests, errors and retries by vendor profile',
      ])
        expect([...withData], key).toContain(key);
      // The values behind them, not only their presence.
      // The gauge reuses its count for 5 s: both devices show within a few scrapes.
      await until(
        'both devices provisioned in the devices gauge',
        async () =>
          Number(
            (await query('max by (state) (dpu_ztp_devices{state="provisioned"})')).data?.result[0]?.value[1],
          ) === 2,
        30_000,
      );
      const ratio = await query(
        expand(
          'sum(increase(dpu_ztp_jobs_finished_total{kind="provision",outcome="succeeded"}[$__range])) / sum(increase(dpu_ztp_jobs_finished_total{kind="provision"}[$__range]))',
          '',
        ),
      );
      expect(Number(ratio.data?.result[0]?.value[1])).toBe(1);
    });
  },
);
