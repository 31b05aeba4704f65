/**
 * Redfish controller at fleet scale (issue 7): provision 500 emulated BMCs
 * concurrently — half virtual media (generic DPU BMC), half image push
 * (BlueField BMC) — with the emulators in child processes, and report wall
 * time, requests per BMC, and the controller's own CPU time and RSS.
 * Goal: under 5 ms of controller CPU per BMC operation.
 *
 * Knobs (env, read here because a bench module is its own composition root):
 * REDFISH_BENCH_BMCS (default 500), REDFISH_BENCH_CHILDREN (default 2).
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  type BmcEmulator,
  type EmulatorPersonaId,
  provisionBmc,
  RedfishClient,
  SessionCache,
  startBmcEmulator,
} from '../redfish/index.js';
import type { Report } from './run.js';

interface ChildReady {
  urls: { url: string; persona: EmulatorPersonaId }[];
  image: string;
}

/** Child mode: run `count` emulators and an image server, report their URLs, serve until told to stop. */
async function childMain(count: number, offset: number): Promise<void> {
  const data = Buffer.alloc(256 * 1024, 1);
  const img = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m) {
      const s = Number(m[1]);
      const e = Math.min(Number(m[2]), data.length - 1);
      res.writeHead(206, {
        'Content-Length': String(e - s + 1),
        'Content-Range': `bytes ${s}-${e}/${data.length}`,
      });
      res.end(req.method === 'HEAD' ? undefined : data.subarray(s, e + 1));
      return;
    }
    res.writeHead(200, { 'Content-Length': String(data.length), 'Accept-Ranges': 'bytes' });
    res.end(req.method === 'HEAD' ? undefined : data);
  });
  await new Promise<void>((r) => img.listen(0, '127.0.0.1', () => r()));
  const emus: BmcEmulator[] = [];
  const urls: ChildReady['urls'] = [];
  for (let i = 0; i < count; i++) {
    const persona: EmulatorPersonaId = (offset + i) % 2 === 0 ? 'generic' : 'bluefield';
    const emu = await startBmcEmulator({
      persona,
      serial: `BENCH-${offset + i}`,
      powerTransitionMs: 50,
      taskDurationMs: 50,
      recordRequests: false,
      username: 'admin',
      password: 'bench',
    });
    emus.push(emu);
    urls.push({ url: emu.url, persona });
  }
  process.send?.({
    urls,
    image: `http://127.0.0.1:${(img.address() as AddressInfo).port}`,
  } satisfies ChildReady);
  await new Promise<void>((r) => process.once('message', () => r()));
  await Promise.all(emus.map((e) => e.close()));
  img.closeAllConnections();
  img.close();
  process.exit(0);
}

if (process.env.REDFISH_BENCH_CHILD) {
  await childMain(Number(process.env.REDFISH_BENCH_COUNT), Number(process.env.REDFISH_BENCH_OFFSET));
}

/** The benchmark. */
export default async function bench(report: Report): Promise<void> {
  const total = Number(process.env.REDFISH_BENCH_BMCS ?? 500);
  const nChildren = Math.max(1, Number(process.env.REDFISH_BENCH_CHILDREN ?? 2));
  const self = fileURLToPath(import.meta.url);
  const per = Math.ceil(total / nChildren);
  const children = Array.from({ length: nChildren }, (_, i) =>
    fork(self, [], {
      env: {
        ...process.env,
        REDFISH_BENCH_CHILD: '1',
        REDFISH_BENCH_COUNT: String(Math.min(per, total - i * per)),
        REDFISH_BENCH_OFFSET: String(i * per),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  try {
    const ready = await Promise.all(
      children.map(
        (c) =>
          new Promise<ChildReady>((resolve, reject) => {
            c.once('message', (m) => resolve(m as ChildReady));
            c.once('exit', (code) => reject(new Error(`emulator child exited ${code}`)));
          }),
      ),
    );
    const targets = ready.flatMap((r) =>
      r.urls.map((u) => ({ ...u, image: `${r.image}/os-${u.persona}.img` })),
    );
    const waits = {
      power: { timeoutMs: 60_000, intervalMs: 50, maxIntervalMs: 400 },
      media: { timeoutMs: 30_000, intervalMs: 50, maxIntervalMs: 400 },
      task: { timeoutMs: 120_000, intervalMs: 50, maxIntervalMs: 400 },
    };
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 50);
    const cache = new SessionCache();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const results = await Promise.allSettled(
      targets.map(async (t) => {
        const client = new RedfishClient({
          url: t.url,
          username: 'admin',
          password: 'bench',
          sessionCache: cache,
          timeouts: { connectMs: 10_000, requestMs: 30_000 },
          retry: { attempts: 5, baseDelayMs: 100, maxDelayMs: 2_000, maxRetryAfterMs: 5_000 },
          taskPoll: waits.task,
        });
        try {
          const r = await provisionBmc(client, { image: { url: t.image }, waits });
          await client.logout();
          return { strategy: r.strategy, requests: client.requestCount };
        } finally {
          await client.close();
        }
      }),
    );
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    const ok = results
      .filter((r) => r.status === 'fulfilled')
      .map((r) => (r as PromiseFulfilledResult<{ strategy: string; requests: number }>).value);
    const failed = results.length - ok.length;
    const requests = ok.reduce((a, r) => a + r.requests, 0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const firstError = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    report({
      name: 'provision-concurrent',
      bmcs: total,
      succeeded: ok.length,
      failed,
      virtualMedia: ok.filter((r) => r.strategy === 'virtual-media').length,
      imagePush: ok.filter((r) => r.strategy === 'image-push').length,
      wallMs: Math.round(wallMs),
      requestsPerBmc: ok.length ? Math.round((requests / ok.length) * 10) / 10 : 0,
      controllerCpuMs: Math.round(cpuMs),
      controllerCpuMsPerBmc: ok.length ? Math.round((cpuMs / ok.length) * 100) / 100 : 0,
      controllerCpuMsPerRequest: requests ? Math.round((cpuMs / requests) * 1000) / 1000 : 0,
      peakRssMb: Math.round(peakRss / 1048576),
      goalCpuMsPerBmcOperation: 5,
      ...(firstError
        ? { firstError: String((firstError.reason as Error)?.message ?? firstError.reason) }
        : {}),
    });
  } finally {
    for (const c of children) {
      if (c.connected) c.send('stop');
    }
    await Promise.all(
      children.map((c) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once('exit', () => r())))),
    );
  }
}
