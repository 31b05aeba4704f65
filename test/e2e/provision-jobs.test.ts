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
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BmcStore, loadOrCreateSecretKeyFile, SecretBox } from '../../bootstrap/index.js';
import { type DatabaseHandle, openDatabase } from '../../db/index.js';
import { type BmcEmulator, type EmulatorPersonaId, startBmcEmulator } from '../../redfish/index.js';
import { createPostgresDatabase } from '../helpers/db.js';
import { openSse, type SseFrame } from '../helpers/sse.js';
import { childEnv, repoRoot, runCli, type ServeProcess, seedDataDir, startServe } from '../helpers/serve.js';
import { FAST_EMULATOR } from '../redfish/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-jobs-e2e-'));
const pki = join(root, 'pki');
const sshDir = join(root, 'ssh');
const bundle = join(repoRoot, 'dist', 'sztp-client.mjs');
const OS_IMAGE = randomBytes(200_000);
const INSTALLER = randomBytes(100_000);
const SERIALS = [
  'JOB-VM-1',
  'JOB-BF-1',
  'JOB-KILL-1',
  'JOB-KILL-2',
  ...Array.from({ length: 6 }, (_, i) => `JOB-REP-${i}`),
];

beforeAll(() => {
  const init = runCli(['pki', 'init', '--out', pki, '--devices', SERIALS.join(',')]);
  expect(init.code, init.stderr).toBe(0);
  mkdirSync(sshDir, { recursive: true });
  const u32 = (n: number) => {
    const x = Buffer.alloc(4);
    x.writeUInt32BE(n);
    return x;
  };
  const blob = Buffer.concat([u32(11), Buffer.from('ssh-ed25519'), u32(32), randomBytes(32)]);
  writeFileSync(
    join(sshDir, 'ssh_host_ed25519_key.pub'),
    `ssh-ed25519 ${blob.toString('base64')} root@dpu\n`,
  );
});
afterAll(() => undefined);

/** Free loopback ports (so a restarted serve comes back on the same ones). */
async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++)
    out.push(
      await new Promise<number>((resolve) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      }),
    );
  return out;
}

/** A service under test: its data dir, database and fixed ports. */
interface Service {
  dataDir: string;
  ports: number[];
  env: NodeJS.ProcessEnv;
  extra?: string[];
  serve?: ServeProcess;
}

function serveArgs(s: Service): string[] {
  const [api, device, images] = s.ports as [number, number, number];
  return [
    '--data-dir',
    s.dataDir,
    '--pki-dir',
    pki,
    '--api-port',
    String(api),
    '--device-port',
    String(device),
    '--images-port',
    String(images),
    '--job-lease',
    '1',
    '--await-device-timeout',
    '60',
    '--await-complete-timeout',
    '60',
    ...(s.extra ?? []),
  ];
}

async function start(s: Service): Promise<ServeProcess> {
  // Generous: serve starts in seconds, but this machine is shared and often loaded.
  s.serve = await startServe(serveArgs(s), s.env, 120_000);
  return s.serve;
}

async function api(
  s: Service,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
  const raw = body instanceof Uint8Array;
  const send = () =>
    fetch(`${s.serve?.api}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined
          ? {}
          : { 'content-type': raw ? 'application/octet-stream' : 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: raw ? (body as Uint8Array) : JSON.stringify(body) }),
    });
  // 503 is the service's "under pressure, retry later" (its event-loop guard trips on a loaded
  // machine): retry as a client should — GET, PUT, and POSTs with an Idempotency-Key only.
  const retryable = method !== 'POST' || headers['idempotency-key'] !== undefined;
  let res = await send();
  for (let i = 0; res.status === 503 && retryable && i < 10; i++) {
    await res.text();
    await new Promise((r) => setTimeout(r, 1000));
    res = await send();
  }
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** Runs the agent bundle as the freshly booted installer of `serial` would (fresh state each boot). */
function runAgent(s: Service, serial: string): Promise<{ code: number | null; out: string }> {
  const dir = join(root, 'dev', serial, randomBytes(4).toString('hex'));
  mkdirSync(join(dir, 'etc'), { recursive: true });
  const hook = join(dir, 'install.sh');
  writeFileSync(hook, `#!/bin/sh\ncp "$1" "${dir}/installed.img"\n`, { mode: 0o755 });
  const device = `https://127.0.0.1:${s.ports[1]}`;
  const args = [
    bundle,
    'run',
    '--no-dhcp',
    '--once',
    '--backoff',
    '0.05',
    '--timeout',
    '15',
    '--idevid-cert',
    join(pki, 'devices', serial, 'idevid.crt'),
    '--idevid-key',
    join(pki, 'devices', serial, 'idevid.key'),
    '--manufacturer-trust-anchor',
    join(pki, 'masa-ca.crt'),
    '--trust-anchor',
    join(pki, 'tls-ca.crt'),
    '--bootstrap-url',
    device,
    '--install-hook',
    hook,
    '--config-path',
    join(dir, 'etc', 'running.conf'),
    '--ssh-host-keys-dir',
    sshDir,
    '--state-dir',
    join(dir, 'state'),
    '--os-name',
    'testos',
    '--os-version',
    '1.0',
    '--hw-model',
    'e2e-dpu',
  ];
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { env: childEnv(), cwd: dir });
    let out = '';
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    p.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    p.on('close', (code) => resolve({ code, out }));
  });
}

/** Registers BMCs and devices in the service's database (before serve starts, or on PostgreSQL beside it). */
async function register(
  s: Service,
  db: DatabaseHandle,
  devices: Array<{ serial: string; emu: BmcEmulator }>,
): Promise<void> {
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
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  for (const { serial, emu } of devices) {
    await store.put(`bmc-${serial}`, { address: emu.url, username: 'admin', password: 'secret' });
    await db.db
      .insertInto('devices')
      .values({ serial, profile: 'dpu', bmc: `bmc-${serial}`, updated_at: new Date() })
      .execute();
  }
}

async function uploadImages(s: Service): Promise<void> {
  expect((await api(s, 'PUT', '/api/v1/images/os.img', new Uint8Array(OS_IMAGE))).status).toBeLessThan(300);
  expect(
    (await api(s, 'PUT', '/api/v1/images/installer.iso', new Uint8Array(INSTALLER))).status,
  ).toBeLessThan(300);
}

/** An emulated BMC whose boot hook runs the agent once `gate` allows (default at once). */
async function emulated(
  s: Service,
  serial: string,
  persona: EmulatorPersonaId,
  agents: Promise<{ code: number | null; out: string }>[],
  gate: () => Promise<void> = async () => undefined,
): Promise<BmcEmulator> {
  return startBmcEmulator({
    ...FAST_EMULATOR,
    persona,
    serial,
    onBoot: (e) => {
      if ('error' in e.fetch) return;
      agents.push(gate().then(() => runAgent(s, serial)));
    },
  });
}

async function waitJob(s: Service, id: string, until: (j: any) => boolean, ms = 90_000): Promise<any> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await api(s, 'GET', `/api/v1/jobs/${id}?steps=true`);
    if (r.status === 200 && until(r.body)) return r.body;
    if (Date.now() > end) throw new Error(`job ${id} never got there: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

const finished = (j: { state: string }) => ['succeeded', 'failed', 'cancelled'].includes(j.state);
const resets = (emu: BmcEmulator) =>
  emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('ComputerSystem.Reset')).length;
const STEPS = [
  'preflight',
  'prepare',
  'boot-override',
  'power-cycle',
  'await-device',
  'await-complete',
  'finalize',
];

// Several serve processes and agent runs per test: minutes on a loaded 2-core machine.
describe('provisioning jobs end to end (serve + emulated BMCs + the agent bundle)', {
  timeout: 240_000,
}, () => {
  it('provisions a virtual-media DPU and a BlueField to bootstrap-complete; media ejected, override cleared', async () => {
    const s: Service = { dataDir: join(root, 'data-ok'), ports: await freePorts(3), env: childEnv() };
    seedDataDir(s.dataDir);
    const agents: Promise<{ code: number | null; out: string }>[] = [];
    const vm = await emulated(s, 'JOB-VM-1', 'generic', agents);
    const bf = await emulated(s, 'JOB-BF-1', 'bluefield', agents);
    try {
      const db = await openDatabase({ dataDir: s.dataDir });
      await register(s, db, [
        { serial: 'JOB-VM-1', emu: vm },
        { serial: 'JOB-BF-1', emu: bf },
      ]);
      await db.close();
      await start(s);
      await uploadImages(s);
      const body = { kind: 'provision', devices: ['JOB-VM-1', 'JOB-BF-1'] };
      const created = await api(s, 'POST', '/api/v1/jobs', body, { 'idempotency-key': 'e2e-1' });
      expect(created.status, JSON.stringify(created.body)).toBe(202);
      expect(created.headers.get('location')).toBe(`/api/v1/jobs/${created.body.id}`);
      // Same key, same body: the same job; same key, another body: 409.
      const again = await api(s, 'POST', '/api/v1/jobs', body, { 'idempotency-key': 'e2e-1' });
      expect(again.status).toBe(202);
      expect(again.body.id).toBe(created.body.id);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      const other = await api(
        s,
        'POST',
        '/api/v1/jobs',
        { ...body, devices: ['JOB-VM-1'] },
        { 'idempotency-key': 'e2e-1' },
      );
      expect(other.status).toBe(409);
      expect(other.body.code).toBe('API_ERR_IDEMPOTENCY_MISMATCH');
      const busy = await api(
        s,
        'POST',
        '/api/v1/jobs',
        { kind: 'provision', devices: ['JOB-VM-1'] },
        { 'idempotency-key': 'e2e-busy' },
      );
      expect(busy.status).toBe(409);

      const job = await waitJob(s, created.body.id, finished);
      const runs = await Promise.all(agents);
      expect(job.state, `${JSON.stringify(job.devices, null, 1)}\n${runs.map((r) => r.out).join('\n')}`).toBe(
        'succeeded',
      );
      for (const d of job.devices) {
        expect(d).toMatchObject({ state: 'succeeded', step: 'done', attempt: 1, error: null });
        expect(d.steps.map((x: { step: string }) => x.step)).toEqual(STEPS);
        expect(d.steps.every((x: { result: string }) => x.result === 'done')).toBe(true);
      }
      for (const serial of ['JOB-VM-1', 'JOB-BF-1'])
        expect((await api(s, 'GET', `/api/v1/devices/${serial}`)).body.state).toBe('provisioned');
      expect(runs.map((r) => r.code)).toEqual([0, 0]);
      // The job's story in the event log, as an SSE client replaying it from the start sees it.
      const token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
      const stream = await openSse(`${s.serve?.api}/api/v1/events?job=${job.id}&after=0`, {
        authorization: `Bearer ${token}`,
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

      const list = await api(s, 'GET', '/api/v1/jobs?state=succeeded');
      expect(list.body.items.map((j: { id: string }) => j.id)).toContain(created.body.id);
      const spec = await api(s, 'GET', '/api/v1/openapi.json');
      const ops = JSON.stringify(spec.body.paths);
      for (const op of ['createJob', 'getJob', 'listJobs', 'cancelJob', 'retryJob'])
        expect(ops).toContain(`"operationId":"${op}"`);
      // The CLI on the same job: a plain line per device, exit 0.
      const show = runCli([
        'jobs',
        'show',
        created.body.id,
        '--api',
        s.serve?.api as string,
        '--data-dir',
        s.dataDir,
      ]);
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
            s.serve?.api as string,
            '--data-dir',
            s.dataDir,
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
      await s.serve?.stop();
      await vm.close();
      await bf.close();
    }
  });

  it('kill -9 of serve while devices wait: restarted, the runs resume and each BMC saw one reset', async () => {
    const s: Service = { dataDir: join(root, 'data-kill'), ports: await freePorts(3), env: childEnv() };
    seedDataDir(s.dataDir);
    const agents: Promise<{ code: number | null; out: string }>[] = [];
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const gate = () => released;
    const e1 = await emulated(s, 'JOB-KILL-1', 'generic', agents, gate);
    const e2 = await emulated(s, 'JOB-KILL-2', 'bluefield', agents, gate);
    try {
      const db = await openDatabase({ dataDir: s.dataDir });
      await register(s, db, [
        { serial: 'JOB-KILL-1', emu: e1 },
        { serial: 'JOB-KILL-2', emu: e2 },
      ]);
      await db.close();
      await start(s);
      await uploadImages(s);
      const created = await api(
        s,
        'POST',
        '/api/v1/jobs',
        { kind: 'provision', devices: ['JOB-KILL-1', 'JOB-KILL-2'] },
        { 'idempotency-key': 'e2e-kill' },
      );
      expect(created.status).toBe(202);
      await waitJob(s, created.body.id, (j) =>
        j.devices.every((d: { step: string }) => d.step === 'await-device'),
      );
      expect(await s.serve?.stop('SIGKILL')).toBe(null);
      await start(s);
      release();
      const job = await waitJob(s, created.body.id, finished);
      const runs = await Promise.all(agents);
      expect(job.state, `${JSON.stringify(job.devices, null, 1)}\n${runs.map((r) => r.out).join('\n')}`).toBe(
        'succeeded',
      );
      expect([resets(e1), resets(e2)]).toEqual([1, 1]);
      for (const d of job.devices) {
        expect(d.steps.map((x: { step: string }) => x.step)).toEqual(STEPS);
        const wait = d.steps.find((x: { step: string }) => x.step === 'await-device');
        expect(wait.detail).toMatch(/resumed by /);
      }
    } finally {
      await s.serve?.stop();
      await e1.close();
      await e2.close();
    }
  });

  describe.skipIf(!process.env.DATABASE_URL)('on PostgreSQL (DATABASE_URL)', () => {
    it('two replicas share one job: every device step runs once, both replicas take runs', async () => {
      const pg = await createPostgresDatabase();
      const env = childEnv({ DATABASE_URL: pg.url });
      // One data directory for both: images live on a volume every replica mounts (DESIGN.md, Data).
      const extra = ['--max-concurrent-provisions', '2'];
      const a: Service = { dataDir: join(root, 'rep'), ports: await freePorts(3), env, extra };
      const b: Service = { dataDir: join(root, 'rep'), ports: await freePorts(3), env, extra };
      const agents: Promise<{ code: number | null; out: string }>[] = [];
      const serials = SERIALS.filter((x) => x.startsWith('JOB-REP-'));
      const emus = await Promise.all(serials.map((serial) => emulated(a, serial, 'generic', agents)));
      try {
        expect(runCli(['migrate'], env, 180_000).code).toBe(0);
        const db = await openDatabase({ databaseUrl: pg.url });
        mkdirSync(a.dataDir, { recursive: true });
        await register(
          a,
          db,
          serials.map((serial, i) => ({ serial, emu: emus[i] as BmcEmulator })),
        );
        await start(a);
        await uploadImages(a);
        await start(b);
        // Each replica runs at most two devices at once, so both must take part.
        const created = await api(
          a,
          'POST',
          '/api/v1/jobs',
          { kind: 'provision', devices: serials },
          { 'idempotency-key': 'e2e-rep' },
        );
        expect(created.status).toBe(202);
        const job = await waitJob(a, created.body.id, finished, 120_000);
        await Promise.all(agents);
        expect(job.state, JSON.stringify(job.devices, null, 1)).toBe('succeeded');
        for (const emu of emus) expect(resets(emu)).toBe(1);
        const steps = await db.db.selectFrom('job_steps').select(['run_id', 'step', 'owner']).execute();
        expect(steps).toHaveLength(serials.length * STEPS.length);
        expect(new Set(steps.map((x) => `${x.run_id}/${x.step}`)).size).toBe(steps.length);
        expect(new Set(steps.map((x) => x.owner)).size).toBe(2);
        await db.close();
      } finally {
        await a.serve?.stop();
        await b.serve?.stop();
        for (const e of emus) await e.close();
        await pg.drop();
      }
    });
  });
});
