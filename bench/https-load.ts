/**
 * A load generator for the sztp benchmark that runs in its own process
 * (forked), so the server under test does not share its event loop with the
 * clients: N devices, each with its own client certificate, POST the same body
 * for `seconds`, either over one keep-alive connection each or with a new TLS
 * connection per request. The parent sends a LoadJob and receives a LoadResult.
 */
import { fork } from 'node:child_process';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface LoadDevice {
  cert: string;
  key: string;
}

export interface LoadJob {
  port: number;
  path: string;
  body: string;
  ca: string;
  devices: LoadDevice[];
  keepAlive: boolean;
  seconds: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** CPU the load generator itself used, ms (user + system). */
  client_cpu_ms: number;
}

async function run(job: LoadJob): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const until = performance.now() + job.seconds * 1000;
  const one = (agent: HttpsAgent | false, d: LoadDevice) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: job.port,
          path: job.path,
          method: 'POST',
          agent,
          ca: job.ca,
          cert: d.cert,
          key: d.key,
          servername: 'localhost',
          headers: {
            'content-type': 'application/yang-data+json',
            'content-length': Buffer.byteLength(job.body),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - t0);
            else errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(job.body);
    });
  const t0 = performance.now();
  await Promise.all(
    job.devices.map(async (d) => {
      const agent = job.keepAlive
        ? new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: job.ca, cert: d.cert, key: d.key })
        : false;
      while (performance.now() < until) await one(agent, d);
      if (agent) agent.destroy();
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    +(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0).toFixed(2);
  return {
    requests: latencies.length,
    errors,
    rps: Math.round(latencies.length / elapsed),
    p50_ms: q(0.5),
    p99_ms: q(0.99),
    client_cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
  };
}

/** Runs `job` in a forked process and returns its result. */
export function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL(import.meta.url), ['--child'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', (m) => resolve(m as LoadResult));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited ${code}`));
    });
    child.send(job);
  });
}

if (process.argv[2] === '--child' && process.send) {
  process.once('message', (job) => {
    run(job as LoadJob).then(
      (r) => process.send?.(r, () => process.exit(0)),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
}
