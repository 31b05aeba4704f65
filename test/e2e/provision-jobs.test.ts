/**
 * Provisioning jobs end to end: `dpu-ztp serve` (the built CLI) with emulated
 * BMCs — a virtual-media DPU and a BlueField that takes an image push — whose
 * boot hook runs the real agent bundle (`dist/sztp-client.mjs`) against the
 * service over mTLS with a PKI from `dpu-ztp pki init`. The job drives each
 * device from power-off to bootstrap-complete; afterwards media is ejected and
 * the boot override cleared. Then the faults: `kill -9` of serve while devices
 * are in await-device (restarted on the same ports, the runs resume and the
 * BMCs see one reset each), and two replicas on one PostgreSQL sharing a job
 * with every step run exactly once.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSecretKeyFile, SecretBox } from '../../bootstrap/index.js';
import { openDatabase } from '../../db/index.js';
import { type BmcEmulator, startBmcEmulator } from '../../redfish/index.js';
import { createPostgresDatabase, repeatsPgliteRun } from '../helpers/db.js';
import {
  type AgentRun,
  insertLabProfile,
  JOB_STEPS as STEPS,
  operatorApi,
  ProvisionLab,
  registerLabDevices,
  runAgentBundle,
  writeSshHostKey,
} from '../helpers/provision-lab.js';
import { openSse, type SseFrame } from '../helpers/sse.js';
import { childEnv, repoRoot, runCli, type ServeProcess, startServe } from '../helpers/serve.js';
import { FAST_EMULATOR } from '../redfish/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-jobs-e2e-'));
const pki = join(root, 'pki');
const SERIALS = [
  'JOB-VM-1',
  'JOB-BF-1',
  'JOB-KILL-1',
  'JOB-KILL-2',
  ...Array.from({ length: 6 }, (_, i) => `JOB-REP-${i}`),
];

// One PKI for every lab of this file.
beforeAll(() => {
  const init = runCli(['pki', 'init', '--out', pki, '--devices', SERIALS.join(',')]);
  expect(init.code, init.stderr).toBe(0);
});

const finished = (j: { state: string }) => ['succeeded', 'failed', 'cancelled'].includes(j.state);
const resets = (emu: BmcEmulator) =>
  emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('ComputerSystem.Reset')).length;
/** serve's flags here: a lease that a restarted or surviving process takes over within a second. */
const SERVE_FLAGS = ['--job-lease', '1'];

// Several serve processes and agent runs per test: minutes on a loaded 2-core machine.
describe('provisioning jobs end to end (serve + emulated BMCs + the agent bundle)', {
  timeout: 240_000,
}, () => {
  // The lab's serve runs on embedded PGlite: once, not again in the PostgreSQL run (repeatsPgliteRun).
  it.skipIf(repeatsPgliteRun)(
    'provisions a virtual-media DPU and a BlueField to bootstrap-complete; media ejected, override cleared',
    async () => {
      const lab = new ProvisionLab({ pki });
      try {
        await lab.prepare([
          { serial: 'JOB-VM-1', persona: 'generic' },
          { serial: 'JOB-BF-1', persona: 'bluefield' },
        ]);
        const vm = lab.emulators.get('JOB-VM-1') as BmcEmulator;
        const bf = lab.emulators.get('JOB-BF-1') as BmcEmulator;
        const serve = await lab.start(SERVE_FLAGS);
        const api = lab.api.bind(lab);
        const body = { kind: 'provision', devices: ['JOB-VM-1', 'JOB-BF-1'] };
        const created = await api('POST', '/api/v1/jobs', body, { 'idempotency-key': 'e2e-1' });
        expect(created.status, JSON.stringify(created.body)).toBe(202);
        expect(created.headers.get('location')).toBe(`/api/v1/jobs/${created.body.id}`);
        // Same key, same body: the same job; same key, another body: 409.
        const again = await api('POST', '/api/v1/jobs', body, { 'idempotency-key': 'e2e-1' });
        expect(again.status).toBe(202);
        expect(again.body.id).toBe(created.body.id);
        expect(again.headers.get('idempotent-replayed')).toBe('true');
        const other = await api(
          'POST',
          '/api/v1/jobs',
          { ...body, devices: ['JOB-VM-1'] },
          { 'idempotency-key': 'e2e-1' },
        );
        expect(other.status).toBe(409);
        expect(other.body.code).toBe('API_ERR_IDEMPOTENCY_MISMATCH');
        const busy = await api(
          'POST',
          '/api/v1/jobs',
          { kind: 'provision', devices: ['JOB-VM-1'] },
          { 'idempotency-key': 'e2e-busy' },
        );
        expect(busy.status).toBe(409);

        const job = await lab.waitJob(created.body.id, finished, 90_000);
        const runs = await Promise.all(lab.agents);
        expect(
          job.state,
          `${JSON.stringify(job.devices, null, 1)}\n${runs.map((r) => r.out).join('\n')}`,
        ).toBe('succeeded');
        for (const d of job.devices) {
          expect(d).toMatchObject({ state: 'succeeded', step: 'done', attempt: 1, error: null });
          expect(d.steps.map((x: { step: string }) => x.step)).toEqual(STEPS);
          expect(d.steps.every((x: { result: string }) => x.result === 'done')).toBe(true);
        }
        for (const serial of ['JOB-VM-1', 'JOB-BF-1'])
          expect((await api('GET', `/api/v1/devices/${serial}`)).body.state).toBe('provisioned');
        expect(runs.map((r) => r.code)).toEqual([0, 0]);
        // The job's story in the event log, as an SSE client replaying it from the start sees it.
        const stream = await openSse(`${serve.api}/api/v1/events?job=${job.id}&after=0`, {
          authorization: `Bearer ${lab.token()}`,
        });
        try {
          expect(stream.status).toBe(200);
          const frames: SseFrame[] = [];
          while (!frames.some((f) => f.event === 'job.state' && JSON.parse(f.data).data.to === 'succeeded'))
            frames.push(...(await stream.take(1, 30_000)));
          expect(frames[0]?.event).toBe('job.created');
          expect(JSON.parse(frames[0]?.data ?? '{}').data).toMatchObject({ kind: 'provision', devices: 2 });
          for (const serial of ['JOB-VM-1', 'JOB-BF-1'])
            expect(
              frames.some(
                (f) =>
                  f.event === 'job.device.state' &&
                  JSON.parse(f.data).serial === serial &&
                  JSON.parse(f.data).data.to === 'succeeded',
              ),
            ).toBe(true);
        } finally {
          stream.close();
        }
        const insert = vm.requests.find((r) => r.path.endsWith('/Actions/VirtualMedia.InsertMedia'));
        expect(insert).toBeDefined();
        expect(
          vm.resource(String(insert?.path).replace('/Actions/VirtualMedia.InsertMedia', ''))?.Inserted,
        ).toBe(false);
        expect(vm.resource('/redfish/v1/Systems/DPU')?.Boot?.BootSourceOverrideTarget).toBe('None');
        expect(bf.boots[0]?.via).toBe('image-push');
        expect([resets(vm), resets(bf)]).toEqual([1, 1]);

        const list = await api('GET', '/api/v1/jobs?state=succeeded');
        expect(list.body.items.map((j: { id: string }) => j.id)).toContain(created.body.id);
        const spec = await api('GET', '/api/v1/openapi.json');
        const ops = JSON.stringify(spec.body.paths);
        for (const op of ['createJob', 'getJob', 'listJobs', 'cancelJob', 'retryJob'])
          expect(ops).toContain(`"operationId":"${op}"`);
        // The CLI on the same job: a plain line per device, exit 0.
        const show = runCli(['jobs', 'show', created.body.id, '--api', serve.api, '--data-dir', lab.dataDir]);
        expect(show.code, show.stderr).toBe(0);
        expect(show.stdout).toMatch(/JOB-BF-1 +succeeded +done +#1/);
        // `dpu-ztp provision --wait` provisions it again: plain progress lines (no terminal), exit 0.
        const cli = await new Promise<{ code: number | null; out: string }>((resolve) => {
          const p = spawn(
            process.execPath,
            [
              join(repoRoot, 'dist', 'cli', 'dpu-ztp.js'),
              'provision',
              'JOB-VM-1',
              '--wait',
              '--interval',
              '0.2',
              '--api',
              serve.api,
              '--data-dir',
              lab.dataDir,
            ],
            { env: childEnv() },
          );
          let out = '';
          p.stdout.on('data', (c: Buffer) => {
            out += c.toString();
          });
          p.stderr.on('data', (c: Buffer) => {
            out += c.toString();
          });
          p.on('close', (code) => resolve({ code, out }));
        });
        expect(cli.code, cli.out).toBe(0);
        expect(cli.out).toMatch(/^JOB-VM-1 +(queued|running) +[a-z-]+ +#1 /m);
        expect(cli.out).toMatch(/^JOB-VM-1 +succeeded +done +#1 /m);
        expect(cli.out).toMatch(/provision succeeded: 1 succeeded, 0 failed/);
        expect(resets(vm)).toBe(2);
      } finally {
        await lab.close();
      }
    },
  );

  it.skipIf(repeatsPgliteRun)(
    'kill -9 of serve while devices wait: restarted, the runs resume and each BMC saw one reset',
    async () => {
      let release!: () => void;
      const released = new Promise<void>((r) => {
        release = r;
      });
      const gate = () => released;
      const lab = new ProvisionLab({ pki });
      try {
        await lab.prepare([
          { serial: 'JOB-KILL-1', persona: 'generic', gate },
          { serial: 'JOB-KILL-2', persona: 'bluefield', gate },
        ]);
        const e1 = lab.emulators.get('JOB-KILL-1') as BmcEmulator;
        const e2 = lab.emulators.get('JOB-KILL-2') as BmcEmulator;
        const serve = await lab.start(SERVE_FLAGS);
        const created = await lab.api(
          'POST',
          '/api/v1/jobs',
          { kind: 'provision', devices: ['JOB-KILL-1', 'JOB-KILL-2'] },
          { 'idempotency-key': 'e2e-kill' },
        );
        expect(created.status).toBe(202);
        await lab.waitJob(
          created.body.id,
          (j) => j.devices.every((d: { step: string }) => d.step === 'await-device'),
          90_000,
        );
        expect(await serve.stop('SIGKILL')).toBe(null);
        // On the same ports: the agents, released now, call the URL the first process had.
        await lab.restart();
        release();
        const job = await lab.waitJob(created.body.id, finished, 90_000);
        const runs = await Promise.all(lab.agents);
        expect(
          job.state,
          `${JSON.stringify(job.devices, null, 1)}\n${runs.map((r) => r.out).join('\n')}`,
        ).toBe('succeeded');
        expect([resets(e1), resets(e2)]).toEqual([1, 1]);
        for (const d of job.devices) {
          expect(d.steps.map((x: { step: string }) => x.step)).toEqual(STEPS);
          const wait = d.steps.find((x: { step: string }) => x.step === 'await-device');
          expect(wait.detail).toMatch(/resumed by /);
        }
      } finally {
        await lab.close();
      }
    },
  );

  describe.skipIf(!process.env.DATABASE_URL)('on PostgreSQL (DATABASE_URL)', () => {
    it('two replicas share one job: every device step runs once, both replicas take runs', async () => {
      const pg = await createPostgresDatabase();
      const env = childEnv({ DATABASE_URL: pg.url });
      // One data directory for both: images live on a volume every replica mounts (DESIGN.md, Data).
      const dataDir = join(root, 'rep');
      const sshDir = join(root, 'ssh');
      writeSshHostKey(sshDir);
      const replicas: ServeProcess[] = [];
      const replica = async () => {
        const serve = await startServe(
          [
            ...['--data-dir', dataDir, '--pki-dir', pki, ...SERVE_FLAGS],
            ...['--await-device-timeout', '60', '--await-complete-timeout', '60'],
            ...['--max-concurrent-provisions', '2'],
          ],
          env,
          120_000,
        );
        replicas.push(serve);
        return serve;
      };
      const agents: Promise<AgentRun>[] = [];
      const serials = SERIALS.filter((x) => x.startsWith('JOB-REP-'));
      const emus = await Promise.all(
        serials.map((serial) =>
          startBmcEmulator({
            ...FAST_EMULATOR,
            persona: 'generic',
            serial,
            onBoot: (e) => {
              if ('error' in e.fetch) return;
              agents.push(
                runAgentBundle({ serial, pki, sshDir, root, urls: [replicas[0]?.device as string] }),
              );
            },
          }),
        ),
      );
      try {
        expect(runCli(['migrate'], env, 180_000).code).toBe(0);
        const db = await openDatabase({ databaseUrl: pg.url });
        mkdirSync(dataDir, { recursive: true });
        await insertLabProfile(db.db);
        await registerLabDevices(
          db.db,
          new SecretBox(loadOrCreateSecretKeyFile(join(dataDir, 'secret.key')).key),
          serials.map((serial, i) => ({ serial, emu: emus[i] })),
        );
        const a = await replica();
        const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
          operatorApi(
            a.api,
            readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(),
            method,
            path,
            body,
            headers,
          );
        for (const [name, size] of [
          ['os.img', 200_000],
          ['installer.iso', 100_000],
        ] as const)
          expect(
            (await api('PUT', `/api/v1/images/${name}`, new Uint8Array(randomBytes(size)))).status,
          ).toBeLessThan(300);
        await replica();
        // Each replica runs at most two devices at once, so both must take part.
        const created = await api(
          'POST',
          '/api/v1/jobs',
          { kind: 'provision', devices: serials },
          { 'idempotency-key': 'e2e-rep' },
        );
        expect(created.status).toBe(202);
        const end = Date.now() + 120_000;
        let job: any;
        for (;;) {
          job = (await api('GET', `/api/v1/jobs/${created.body.id}?steps=true`)).body;
          if (finished(job)) break;
          if (Date.now() > end) throw new Error(`job never finished: ${JSON.stringify(job)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        await Promise.all(agents);
        expect(job.state, JSON.stringify(job.devices, null, 1)).toBe('succeeded');
        for (const emu of emus) expect(resets(emu)).toBe(1);
        const steps = await db.db.selectFrom('job_steps').select(['run_id', 'step', 'owner']).execute();
        expect(steps).toHaveLength(serials.length * STEPS.length);
        expect(new Set(steps.map((x) => `${x.run_id}/${x.step}`)).size).toBe(steps.length);
        expect(new Set(steps.map((x) => x.owner)).size).toBe(2);
        await db.close();
      } finally {
        for (const r of replicas) await r.stop();
        for (const e of emus) await e.close();
        await pg.drop();
      }
    });
  });
});
