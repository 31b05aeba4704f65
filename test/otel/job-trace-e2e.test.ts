/**
 * One trace per provisioning job per device, end to end (issue 14): `dpu-ztp
 * serve` (the built CLI, exporting OTLP/protobuf) drives an emulated BMC whose
 * boot hook runs the real agent bundle (`dist/sztp-client.mjs`, exporting
 * OTLP/JSON) — both to a real OTLP/HTTP receiver that decodes what the real
 * exporters send. One trace holds the run's step spans, the Redfish requests,
 * the BMC's reads of the installer image (by its URL token), the device's
 * RESTCONF spans with its progress events, and the agent's own spans, every
 * parent present. Then `kill -9` of serve mid-run: the spans after the restart
 * land in the same trace, and agents whose collector is a closed port still
 * provision and exit promptly.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BmcStore, loadOrCreateSecretKeyFile, SecretBox } from '../../bootstrap/index.js';
import { openDatabase } from '../../db/index.js';
import { Attr, SpanName } from '../../otel/index.js';
import { type BmcEmulator, startBmcEmulator } from '../../redfish/index.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver.js';
import {
  childEnv,
  repoRoot,
  runCli,
  type ServeProcess,
  scaledTimeout,
  seedDataDir,
  startServe,
} from '../helpers/serve.js';
import { FAST_EMULATOR } from '../redfish/helpers.js';
import { repeatsPgliteRun } from '../helpers/db.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-trace-e2e-'));
const pki = join(root, 'pki');
const sshDir = join(root, 'ssh');
const bundle = join(repoRoot, 'dist', 'sztp-client.mjs');
const SERIALS = ['TRACE-1', 'TRACE-KILL-1'];
const STEPS = [
  'preflight',
  'prepare',
  'boot-override',
  'power-cycle',
  'await-device',
  'await-complete',
  'finalize',
];

beforeAll(() => {
  const init = runCli(['pki', 'init', '--out', pki, '--devices', SERIALS.join(',')]);
  expect(init.code, init.stderr).toBe(0);
  mkdirSync(sshDir, { recursive: true });
  const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  const blob = Buffer.concat([u32(11), Buffer.from('ssh-ed25519'), u32(32), randomBytes(32)]);
  writeFileSync(
    join(sshDir, 'ssh_host_ed25519_key.pub'),
    `ssh-ed25519 ${blob.toString('base64')} root@dpu\n`,
  );
}, 120_000);

async function port(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

interface Service {
  dataDir: string;
  ports: number[];
  env: NodeJS.ProcessEnv;
  serve?: ServeProcess;
}

async function start(s: Service): Promise<void> {
  const [api, device, images] = s.ports as [number, number, number];
  s.serve = await startServe(
    [
      ...['--data-dir', s.dataDir, '--pki-dir', pki, '--api-port', String(api)],
      ...['--device-port', String(device), '--images-port', String(images), '--job-lease', '1'],
      ...['--await-device-timeout', '60', '--await-complete-timeout', '60'],
    ],
    s.env,
    120_000,
  );
}

async function api(s: Service, method: string, path: string, body?: unknown): Promise<any> {
  const token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
  const raw = body instanceof Uint8Array;
  for (let i = 0; ; i++) {
    const res = await fetch(`${s.serve?.api}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        'idempotency-key': `k-${path}-${JSON.stringify(body ?? '').length}`,
        ...(body === undefined
          ? {}
          : { 'content-type': raw ? 'application/octet-stream' : 'application/json' }),
      },
      ...(body === undefined ? {} : { body: raw ? (body as Uint8Array) : JSON.stringify(body) }),
    });
    const text = await res.text();
    // 503: the service's event-loop guard on a loaded machine; every call here is safe to repeat.
    if (res.status === 503 && i < 10) {
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }
}

/** The agent bundle as the booted installer runs it; resolves with its exit, output and how long it took to exit after its last line. */
function runAgent(s: Service, serial: string, env: NodeJS.ProcessEnv) {
  const dir = join(root, 'dev', serial, randomBytes(4).toString('hex'));
  mkdirSync(dir, { recursive: true });
  const hook = join(dir, 'install.sh');
  writeFileSync(hook, `#!/bin/sh\ncp "$1" "${dir}/installed.img"\n`, { mode: 0o755 });
  const args = [
    bundle,
    'run',
    ...['--no-dhcp', '--once', '--backoff', '0.05', '--timeout', '15'],
    ...['--idevid-cert', join(pki, 'devices', serial, 'idevid.crt')],
    ...['--idevid-key', join(pki, 'devices', serial, 'idevid.key')],
    ...['--manufacturer-trust-anchor', join(pki, 'masa-ca.crt'), '--trust-anchor', join(pki, 'tls-ca.crt')],
    ...['--bootstrap-url', `https://127.0.0.1:${s.ports[1]}`, '--install-hook', hook],
    ...['--config-path', join(dir, 'running.conf'), '--ssh-host-keys-dir', sshDir],
    ...['--state-dir', join(dir, 'state'), '--os-name', 'testos', '--os-version', '1.0'],
  ];
  return new Promise<{ code: number | null; out: string; exitLagMs: number }>((resolve) => {
    const p = spawn(process.execPath, args, { env, cwd: dir });
    let out = '';
    let last = performance.now();
    const take = (c: Buffer) => {
      out += c.toString();
      last = performance.now();
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    p.on('close', (code) => resolve({ code, out, exitLagMs: performance.now() - last }));
  });
}

async function setUp(
  name: string,
  serial: string,
  agentEnv: NodeJS.ProcessEnv,
  rx: OtlpReceiver,
  gate: () => Promise<void> = async () => undefined,
) {
  const s: Service = {
    dataDir: join(root, name),
    ports: [await port(), await port(), await port()],
    env: childEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_SERVICE_NAME: 'dpu-ztp' }),
  };
  seedDataDir(s.dataDir);
  const agents: Promise<{ code: number | null; out: string; exitLagMs: number }>[] = [];
  const emu: BmcEmulator = await startBmcEmulator({
    ...FAST_EMULATOR,
    persona: 'generic',
    serial,
    onBoot: (e) => {
      if (!('error' in e.fetch)) agents.push(gate().then(() => runAgent(s, serial, agentEnv)));
    },
  });
  const db = await openDatabase({ dataDir: s.dataDir });
  const store = new BmcStore(
    db.db,
    new SecretBox(loadOrCreateSecretKeyFile(join(s.dataDir, 'secret.key')).key),
  );
  await db.db
    .insertInto('profiles')
    .values({
      name: 'dpu',
      spec: JSON.stringify({
        type: 'onboarding',
        bootImage: { osName: 'testos', osVersion: '2.0', image: 'os.img' },
        configurationHandling: 'replace',
        configuration: 'hostname provisioned\n',
        installerImage: 'installer.iso',
      }),
      updated_at: new Date(),
    })
    .execute();
  await store.put(`bmc-${serial}`, { address: emu.url, username: 'admin', password: 'secret' });
  await db.db
    .insertInto('devices')
    .values({ serial, profile: 'dpu', bmc: `bmc-${serial}`, updated_at: new Date() })
    .execute();
  await db.close();
  await start(s);
  for (const [image, size] of [
    ['os.img', 150_000],
    ['installer.iso', 80_000],
  ] as const)
    expect(
      (await api(s, 'PUT', `/api/v1/images/${image}`, new Uint8Array(randomBytes(size)))).status,
    ).toBeLessThan(300);
  const created = await api(s, 'POST', '/api/v1/jobs', { kind: 'provision', devices: [serial] });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  return { s, emu, agents, jobId: created.body.id as string };
}

async function waitJob(s: Service, id: string, until: (j: any) => boolean): Promise<any> {
  const end = Date.now() + scaledTimeout(90_000);
  for (;;) {
    const r = await api(s, 'GET', `/api/v1/jobs/${id}?steps=true`);
    if (r.status === 200 && until(r.body)) return r.body;
    if (Date.now() > end) throw new Error(`job ${id} never got there: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
const finished = (j: { state: string }) => ['succeeded', 'failed', 'cancelled'].includes(j.state);

/** The run's root span and every span of its trace. */
function runTrace(rx: OtlpReceiver, serial: string): { root: ReceivedSpan; spans: ReceivedSpan[] } {
  const roots = rx.spans.filter(
    (x) => x.name === SpanName.jobRun && x.attributes[Attr.deviceSerial] === serial,
  );
  expect(roots, 'one root span per run').toHaveLength(1);
  const root = roots[0] as ReceivedSpan;
  return { root, spans: rx.spans.filter((x) => x.traceId === root.traceId) };
}

/** Names of `span`'s ancestors, nearest first. */
function ancestors(span: ReceivedSpan, byId: Map<string, ReceivedSpan>): string[] {
  const out: string[] = [];
  for (let p = byId.get(span.parentSpanId); p; p = byId.get(p.parentSpanId)) out.push(p.name);
  return out;
}

describe.skipIf(repeatsPgliteRun)(
  'one trace per provisioning job per device (serve + emulated BMC + agent bundle, real exporters)',
  {
    timeout: 240_000,
  },
  () => {
    it('holds the steps, Redfish requests, BMC image reads, RESTCONF spans with progress events and the agent spans, all parented', async () => {
      const rx = await startOtlpReceiver();
      const agentEnv = childEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url });
      const { s, emu, agents, jobId } = await setUp('data-one', 'TRACE-1', agentEnv, rx);
      try {
        const job = await waitJob(s, jobId, finished);
        const runs = await Promise.all(agents);
        expect(job.state, runs.map((r) => r.out).join('\n')).toBe('succeeded');
        expect(runs.map((r) => r.code)).toEqual([0]);
      } finally {
        expect(await s.serve?.stop()).toBe(0); // SIGTERM: the SDK flushes before exit
        await emu.close();
        await rx.close();
      }
      const { root, spans } = runTrace(rx, 'TRACE-1');
      const byId = new Map(spans.map((x) => [x.spanId, x]));
      // Correctly parented: the root has no parent, every other span's parent is in the trace.
      expect(root.parentSpanId).toBe('');
      const orphans = spans.filter((x) => x !== root && !byId.has(x.parentSpanId));
      expect(orphans.map((x) => `${x.service}:${x.name}`)).toEqual([]);

      const drive = spans.filter((x) => x.name === SpanName.jobDrive('provision'));
      expect(drive).toHaveLength(1);
      expect(drive[0]?.parentSpanId).toBe(root.spanId);
      const steps = spans.filter((x) => x.name.startsWith('dpu-ztp.job.step.'));
      expect(steps.map((x) => x.attributes[Attr.jobStep])).toEqual(expect.arrayContaining(STEPS));
      for (const st of steps) expect(st.parentSpanId).toBe(drive[0]?.spanId);

      // Redfish: under steps, with profile and strategy, never credentials.
      const redfish = spans.filter((x) => x.name === SpanName.redfishRequest);
      expect(redfish.length).toBeGreaterThan(5);
      for (const r of redfish)
        expect(ancestors(r, byId).some((n) => n.startsWith('dpu-ztp.job.step.'))).toBe(true);
      const insert = redfish.find((r) =>
        String(r.attributes[Attr.redfishPath]).endsWith('VirtualMedia.InsertMedia'),
      );
      expect(insert?.attributes).toMatchObject({
        [Attr.redfishMethod]: 'POST',
        [Attr.redfishStatus]: expect.any(Number),
        [Attr.bmcVendorProfile]: expect.any(String),
        [Attr.redfishStrategy]: 'virtual-media',
      });
      expect(JSON.stringify(redfish)).not.toContain('secret');

      // The BMC's reads of the installer image, by the token in its URL: HEAD, a range and the full GET.
      const reads = spans.filter(
        (x) => x.name === SpanName.imageServe && x.attributes[Attr.image] === 'installer.iso',
      );
      expect(reads.map((x) => x.attributes[Attr.httpRequestMethod]).sort()).toEqual(
        expect.arrayContaining(['GET', 'GET', 'HEAD']),
      );
      for (const r of reads) {
        expect(r.attributes[Attr.imageToken]).toBe(true);
        expect(r.parentSpanId).toBe(root.spanId);
      }
      expect(reads.some((r) => r.attributes[Attr.httpStatusCode] === 206)).toBe(true);
      expect(reads.some((r) => r.attributes[Attr.imageBytesSent] === 80_000)).toBe(true);
      expect(emu.boots.length).toBe(1);

      // The device's RESTCONF calls, with its progress reports as events.
      const gbd = spans.filter((x) => x.name === SpanName.getBootstrappingData);
      expect(gbd.length).toBeGreaterThanOrEqual(1);
      expect(gbd[0]?.attributes[Attr.sztpJoined]).toBe(true);
      const reports = spans.filter((x) => x.name === SpanName.reportProgress);
      const events = reports.flatMap((x) => x.events);
      expect(events).toEqual(
        expect.arrayContaining([
          'bootstrap-initiated',
          'boot-image-complete',
          'config-complete',
          'bootstrap-complete',
        ]),
      );
      // Each report is a child of the agent's own report span (the agent sent its span's traceparent).
      for (const r of reports) expect(byId.get(r.parentSpanId)?.name).toBe(SpanName.agentReportProgress);

      // The agent's spans (its own service, OTLP/JSON) continue the handed-over trace.
      const agent = spans.filter((x) => x.service === 'sztp-client');
      expect(agent.every((x) => x.encoding === 'json')).toBe(true);
      expect(spans.filter((x) => x.service === 'dpu-ztp').every((x) => x.encoding === 'protobuf')).toBe(true);
      const names = new Set(agent.map((x) => x.name));
      for (const n of [
        SpanName.agentBootstrap,
        SpanName.agentVerify,
        SpanName.agentOnboard,
        SpanName.agentBootImage,
        SpanName.agentDownload,
        SpanName.agentInstall,
        SpanName.agentConfig,
        SpanName.agentReportProgress,
      ])
        expect(names, n).toContain(n);
      const boot = agent.find((x) => x.name === SpanName.agentBootstrap);
      expect(boot?.parentSpanId).toBe(root.spanId);
      // The agent's download of the boot image, served by the device listener, as a child of it.
      const download = agent.find((x) => x.name === SpanName.agentDownload) as ReceivedSpan;
      const served = spans.find(
        (x) => x.name === SpanName.imageServe && x.attributes[Attr.image] === 'os.img',
      );
      expect(served?.parentSpanId).toBe(download.spanId);
    });

    it('kill -9 of serve mid-run: spans after the restart join the same trace; agents with a dead collector still provision and exit promptly', async () => {
      const rx = await startOtlpReceiver();
      const dead = await port(); // nothing listens there
      const agentEnv = childEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${dead}` });
      let release!: () => void;
      const released = new Promise<void>((r) => {
        release = r;
      });
      const { s, emu, agents, jobId } = await setUp(
        'data-kill',
        'TRACE-KILL-1',
        agentEnv,
        rx,
        () => released,
      );
      try {
        await waitJob(s, jobId, (j) => j.devices[0]?.step === 'await-device');
        // The first process exported the run's root (ended at once) and its early steps within a second.
        const end = Date.now() + scaledTimeout(10_000);
        while (!rx.spans.some((x) => x.name === 'dpu-ztp.job.step.power-cycle') && Date.now() < end)
          await new Promise((r) => setTimeout(r, 100));
        const before = new Set(rx.spans.map((x) => x.spanId));
        expect(await s.serve?.stop('SIGKILL')).toBe(null);
        await start(s);
        release();
        const job = await waitJob(s, jobId, finished);
        const runs = await Promise.all(agents);
        expect(job.state, runs.map((r) => r.out).join('\n')).toBe('succeeded');
        expect(runs.map((r) => r.code)).toEqual([0]);
        // A collector on a closed port costs the agent nothing noticeable: it exits within its 2 s flush budget.
        for (const r of runs) expect(r.exitLagMs).toBeLessThan(3_000);
        expect(await s.serve?.stop()).toBe(0);

        const { root, spans } = runTrace(rx, 'TRACE-KILL-1');
        const after = spans.filter((x) => !before.has(x.spanId));
        const drives = spans.filter((x) => x.name === SpanName.jobDrive('provision'));
        // The killed process never ended its drive span; the restarted one's is resumed, under the same root.
        const resumed = drives.find((x) => x.attributes[Attr.jobResumed] === true);
        expect(resumed?.parentSpanId).toBe(root.spanId);
        const laterSteps = after.filter((x) => x.name.startsWith('dpu-ztp.job.step.'));
        expect(laterSteps.map((x) => x.attributes[Attr.jobStep])).toEqual(
          expect.arrayContaining(['await-device', 'await-complete', 'finalize']),
        );
        for (const st of laterSteps) expect(st.parentSpanId).toBe(resumed?.spanId);
        // The device's calls after the restart are in the run's trace too.
        expect(
          after.some((x) => x.name === SpanName.reportProgress && x.events.includes('bootstrap-complete')),
        ).toBe(true);
      } finally {
        await s.serve?.stop();
        await emu.close();
        await rx.close();
      }
    });
  },
);
