/**
 * `BENCH=otel`: the cost of tracing, measured in one run. (a) The
 * get-bootstrapping-data benchmark (bench/sztp.bench.ts, keep-alive) with no
 * SDK, then with spans and metrics exported over OTLP/HTTP (protobuf) to a local
 * sink; (b) a fleet provisioning run (bench/fleet.bench.ts, PGlite,
 * `BENCH_OTEL_FLEET_DPUS` devices, default 200) with `serve` started without
 * an endpoint, then with `OTEL_EXPORTER_OTLP_ENDPOINT` at a local sink. Prints
 * each run and one line of ratios (export / off) for throughput and CPU per
 * request or device, with the load average beside them: on a shared machine
 * the noise can exceed the difference. Goal: export within 10% of off.
 */
import { loadavg } from 'node:os';
import type { BenchResult, Report } from './run.js';
import { otlpSink } from './sztp.bench.js';

const FLEET_DPUS = process.env.BENCH_OTEL_FLEET_DPUS ?? '200';
/** `BENCH_OTEL_PARTS=rpc,fleet` (default both). */
const PARTS = (process.env.BENCH_OTEL_PARTS ?? 'rpc,fleet').split(',');

const load = () => loadavg().map((x) => +x.toFixed(1));

/**
 * Runs `bench` and returns its result lines (also printed through `report`). A run that fails
 * before measuring (a loaded machine's 503 "under pressure" at start-up) is tried once more.
 */
async function collect(
  bench: (r: Report) => Promise<void>,
  report: Report,
  tag: string,
): Promise<BenchResult[]> {
  for (let attempt = 1; ; attempt++) {
    const out: BenchResult[] = [];
    const loadavg_before = load();
    try {
      await bench((r) => {
        const line = { ...r, otel_mode: tag, loadavg_before };
        out.push(line);
        report(line);
      });
      return out;
    } catch (err) {
      if (attempt >= 2 || out.length > 0) throw err;
      report({ name: 'otel_run_retried', otel_mode: tag, error: String((err as Error).message) });
    }
  }
}

const num = (r: BenchResult | undefined, k: string) => Number(r?.[k] ?? Number.NaN);
const ratio = (a: number, b: number) => +(a / b).toFixed(3);

export default async function bench(report: Report): Promise<void> {
  const saved = { ...process.env };
  try {
    if (PARTS.includes('rpc')) await rpc(report);
    if (PARTS.includes('fleet')) await fleet(report);
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

/** (a) The bootstrap RPC, in process: off first (the SDK, once registered, stays global). */
async function rpc(report: Report): Promise<void> {
  {
    process.env.BENCH_SZTP_MODES = 'keepalive';
    delete process.env.BENCH_DATABASE_URL;
    const sztp = (await import('./sztp.bench.js')).default;
    process.env.BENCH_SZTP_OTEL = 'off';
    const rpcOff = (await collect(sztp, report, 'off')).find((r) => r.name.endsWith('_dpu_ztp'));
    process.env.BENCH_SZTP_OTEL = 'export';
    const rpcOn = (await collect(sztp, report, 'export')).find((r) => r.name.endsWith('_dpu_ztp'));
    report({
      name: 'otel_overhead_bootstrap_rpc',
      rps_off: num(rpcOff, 'rps'),
      rps_export: num(rpcOn, 'rps'),
      throughput_ratio: ratio(num(rpcOn, 'rps'), num(rpcOff, 'rps')),
      cpu_us_per_request_off: num(rpcOff, 'server_cpu_us_per_request'),
      cpu_us_per_request_export: num(rpcOn, 'server_cpu_us_per_request'),
      cpu_ratio: ratio(num(rpcOn, 'server_cpu_us_per_request'), num(rpcOff, 'server_cpu_us_per_request')),
      loadavg: load(),
      goal: 'throughput_ratio >= 0.9, cpu_ratio <= 1.1',
    });
  }
}

/** (b) A fleet run against `serve`. */
async function fleet(report: Report): Promise<void> {
  {
    // (b) the fleet: serve is a child process, so the SDK is switched by its environment.
    process.env.BENCH_FLEET_DPUS = FLEET_DPUS;
    delete process.env.DATABASE_URL; // PGlite only: one backend is enough for a ratio
    const run = (await import('./fleet.bench.js')).default;
    for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) delete process.env[k];
    const fleetOff = (await collect(run, report, 'off'))[0];
    const sink = await otlpSink();
    let fleetOn: BenchResult | undefined;
    try {
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.url;
      process.env.OTEL_METRIC_EXPORT_INTERVAL = '10000';
      fleetOn = (await collect(run, report, 'export'))[0];
    } finally {
      await sink.close();
    }
    report({
      name: 'otel_overhead_fleet',
      dpus: Number(FLEET_DPUS),
      otlp_requests: sink.requests(),
      devices_per_min_off: num(fleetOff, 'devices_per_min'),
      devices_per_min_export: num(fleetOn, 'devices_per_min'),
      throughput_ratio: ratio(num(fleetOn, 'devices_per_min'), num(fleetOff, 'devices_per_min')),
      cpu_ms_per_device_off: num(fleetOff, 'service_cpu_ms_per_device'),
      cpu_ms_per_device_export: num(fleetOn, 'service_cpu_ms_per_device'),
      cpu_ratio: ratio(num(fleetOn, 'service_cpu_ms_per_device'), num(fleetOff, 'service_cpu_ms_per_device')),
      loadavg: load(),
      goal: 'throughput_ratio >= 0.9, cpu_ratio <= 1.1',
    });
  }
}
