/**
 * `BENCH=demo`: `dpu-ztp demo --dpus N` (`BENCH_DEMO_DPUS`, default 100) as a
 * technician runs it, start to exit: lab PKI, serve on embedded PGlite, N
 * emulated BMCs, the real agent bundle per DPU, one job. Reports the wall time
 * of the whole command and of its job, and the peak RSS of the whole demo —
 * every process of its process group (the demo with its emulators, serve, the
 * agents), sampled from /proc every 200 ms and summed. Goal: 100 DPUs in under
 * 60 s.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { Report } from './run.js';
import { dpuZtpBin } from './serve-process.js';

const N = Number(process.env.BENCH_DEMO_DPUS ?? 100);

/** RSS (KiB) of every process in group `pgid`, and how many there are. */
function groupRss(pgid: number): { kib: number; processes: number } {
  let kib = 0;
  let processes = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
      kib += Number(m?.[1] ?? 0);
      processes++;
    } catch {
      // exited between the listing and the read
    }
  }
  return { kib, processes };
}

export default async function bench(report: Report): Promise<void> {
  const load = loadavg().map((l) => +l.toFixed(1));
  const t0 = performance.now();
  const child = spawn(process.execPath, [dpuZtpBin, 'demo', '--dpus', String(N)], {
    detached: true, // its own process group: the demo and everything it starts
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pgid = child.pid as number;
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  let peakKib = 0;
  let peakProcesses = 0;
  const sampler = setInterval(() => {
    const s = groupRss(pgid);
    peakKib = Math.max(peakKib, s.kib);
    peakProcesses = Math.max(peakProcesses, s.processes);
  }, 200);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearInterval(sampler);
  const wallS = (performance.now() - t0) / 1000;
  const done = /^(\d+) of (\d+) DPUs reached bootstrap-complete; the job took (\S+)/m.exec(out);
  const ready = /^\[\s*([\d.]+)s\] service up/m.exec(out);
  report({
    name: 'demo',
    dpus: N,
    exit_code: code,
    complete: done ? Number(done[1]) : 0,
    wall_s: +wallS.toFixed(1),
    service_up_s: ready ? Number(ready[1]) : null,
    job: done?.[3] ?? null,
    peak_rss_mib_all_processes: +(peakKib / 1024).toFixed(0),
    peak_processes: peakProcesses,
    load_avg_at_start: load,
    load_avg_at_end: loadavg().map((l) => +l.toFixed(1)),
    goal: '100 DPUs < 60 s',
    ...(code === 0
      ? {}
      : {
          failures: out
            .split('\n')
            .filter((l) => l.startsWith('FAILED'))
            .slice(0, 3),
          stderr: err.slice(-500),
        }),
  });
}
