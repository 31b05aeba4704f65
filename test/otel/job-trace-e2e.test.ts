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
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Attr, SpanName } from '../../otel/index.js';
import type { BmcEmulator } from '../../redfish/index.js';
import { repeatsPgliteRun } from '../helpers/db.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { JOB_STEPS as STEPS, LAB_IMAGE_BYTES, ProvisionLab } from '../helpers/provision-lab.js';
import { childEnv, runCli, scaledTimeout } from '../helpers/serve.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-trace-e2e-'));
const pki = join(root, 'pki');
const SERIALS = ['TRACE-1', 'TRACE-KILL-1'];

beforeAll(() => {
  const init = runCli(['pki', 'init', '--out', pki, '--devices', SERIALS.join(',')]);
  expect(init.code, init.stderr).toBe(0);
}, 120_000);

/** A loopback port nothing listens on. */
async function port(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** A lab whose serve and agents export to `rx` (agents: to `agentEnv`'s collector), with a job for `serial` created. */
async function setUp(
  serial: string,
  agentEnv: NodeJS.ProcessEnv,
  rx: OtlpReceiver,
  gate?: () => Promise<void>,
) {
  const lab = new ProvisionLab({ pki, agentEnv });
  await lab.prepare([{ serial, persona: 'generic', ...(gate ? { gate } : {}) }]);
  await lab.start(
    ['--job-lease', '1'],
    childEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_SERVICE_NAME: 'dpu-ztp' }),
  );
  const created = await lab.api(
    'POST',
    '/api/v1/jobs',
    { kind: 'provision', devices: [serial] },
    { 'idempotency-key': `trace-${serial}` },
  );
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  return { lab, emu: lab.emulators.get(serial) as BmcEmulator, jobId: created.body.id as string };
}

const waitJob = (lab: ProvisionLab, id: string, until: (j: any) => boolean) =>
  lab.waitJob(id, until, scaledTimeout(90_000));
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
      const { lab, emu, jobId } = await setUp('TRACE-1', agentEnv, rx);
      try {
        const job = await waitJob(lab, jobId, finished);
        const runs = await Promise.all(lab.agents);
        expect(job.state, runs.map((r) => r.out).join('\n')).toBe('succeeded');
        expect(runs.map((r) => r.code)).toEqual([0]);
      } finally {
        expect(await lab.serve?.stop()).toBe(0); // SIGTERM: the SDK flushes before exit
        await lab.close();
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
      expect(reads.some((r) => r.attributes[Attr.imageBytesSent] === LAB_IMAGE_BYTES['installer.iso'])).toBe(
        true,
      );
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
      const { lab, jobId } = await setUp('TRACE-KILL-1', agentEnv, rx, () => released);
      try {
        await waitJob(lab, jobId, (j) => j.devices[0]?.step === 'await-device');
        // The first process exported the run's root (ended at once) and its early steps within a second.
        const end = Date.now() + scaledTimeout(10_000);
        while (!rx.spans.some((x) => x.name === 'dpu-ztp.job.step.power-cycle') && Date.now() < end)
          await new Promise((r) => setTimeout(r, 100));
        const before = new Set(rx.spans.map((x) => x.spanId));
        expect(await lab.serve?.stop('SIGKILL')).toBe(null);
        await lab.restart();
        release();
        const job = await waitJob(lab, jobId, finished);
        const runs = await Promise.all(lab.agents);
        expect(job.state, runs.map((r) => r.out).join('\n')).toBe('succeeded');
        expect(runs.map((r) => r.code)).toEqual([0]);
        // A collector on a closed port costs the agent nothing noticeable: it exits within its 2 s flush budget.
        for (const r of runs) expect(r.exitLagMs).toBeLessThan(3_000);
        expect(await lab.serve?.stop()).toBe(0);

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
        await lab.close();
        await rx.close();
      }
    });
  },
);
