/**
 * Several `dpu-ztp serve` replicas on one PostgreSQL database and one shared
 * image directory (real processes, real TLS, the real agent bundle):
 *
 * - an image uploaded through replica A downloads byte-identical from B and C,
 *   and each replica's /readyz names an image the database knows but the
 *   directory lacks;
 * - the credentials live in the database (B and C have no PKI directory): an
 *   owner rotation on B is what C signs with one second later, and requests
 *   made during the rotation all succeed and verify (never an old signature
 *   beside a new owner certificate);
 * - a fleet of 20 emulated DPUs whose agents list all three replicas survives
 *   `kill -9` of one replica in the middle: every device is provisioned, every
 *   run succeeds, no BMC saw a reset twice (nor a prepare twice, unless the
 *   killed replica was inside that very step), and every progress report an
 *   agent saw acknowledged is in the database.
 *
 * PostgreSQL only (DATABASE_URL): the embedded PGlite serves one process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../bootstrap/index.js';
import { type DatabaseHandle, openDatabase } from '../../db/index.js';
import {
  createCertificate,
  decodeArtifact,
  generateKey,
  parseCertificate,
  parseCertificateBag,
  signerFromPrivateKey,
  toPem,
  verifyBootstrappingData,
} from '../../pki/index.js';
import { type BmcEmulator, startBmcEmulator } from '../../redfish/index.js';
import { PROGRESS_TYPES } from '../../sztp-server/index.js';
import { createPostgresDatabase } from '../helpers/db.js';
import {
  insertLabProfile,
  JOB_STEPS as STEPS,
  operatorApi,
  registerLabDevices,
  runAgentBundle,
  writeSshHostKey,
} from '../helpers/provision-lab.js';
import { childEnv, runCli, type ServeProcess, scaledTimeout, startServe } from '../helpers/serve.js';
import { FAST_EMULATOR } from '../redfish/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-replicas-'));
const pki = join(root, 'pki');
const images = join(root, 'shared-images');
const sshDir = join(root, 'ssh');
const SECRET = randomBytes(32).toString('hex');
const FLEET = Array.from({ length: 20 }, (_, i) => `REP-F-${String(i).padStart(2, '0')}`);
const SIGNER = 'REP-SIGN-1';

interface Replica {
  name: string;
  dataDir: string;
  serve: ServeProcess;
}

let pg: { url: string; drop(): Promise<void> } | undefined;
let env: NodeJS.ProcessEnv;
let db: DatabaseHandle | undefined;
const replicas: Replica[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startReplica(name: string, extra: string[] = []): Promise<Replica> {
  const dataDir = join(root, `data-${name}`);
  // Only A is given a PKI directory (it seeds the database on first start); B and C get
  // none, so whatever they sign with can only have come from the database.
  const pkiDir = name === 'a' ? pki : join(root, `no-pki-${name}`);
  const serve = await startServe(
    [
      '--data-dir',
      dataDir,
      '--pki-dir',
      pkiDir,
      '--images-dir',
      images,
      '--api-port',
      '0',
      '--device-port',
      '0',
      '--images-port',
      '0',
      '--host',
      '127.0.0.1',
      '--job-lease',
      '1',
      '--await-device-timeout',
      '120',
      '--await-complete-timeout',
      '120',
      '--max-concurrent-provisions',
      '8',
      ...extra,
    ],
    env,
    120_000,
  );
  const r = { name, dataDir, serve };
  replicas.push(r);
  return r;
}

const token = () => readFileSync(join(root, 'data-a', 'admin-token'), 'utf8').trim();

const api = (r: Replica, method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  operatorApi(r.serve.api, token(), method, path, body, headers);

/** A device's mTLS client (its IDevID) trusting the lab TLS CA. */
function deviceAgent(serial: string): Agent {
  return new Agent({
    connect: {
      ca: readFileSync(join(pki, 'tls-ca.crt')),
      cert: readFileSync(join(pki, 'devices', serial, 'idevid.crt')),
      key: readFileSync(join(pki, 'devices', serial, 'idevid.key')),
      servername: 'localhost',
    },
  });
}

/** get-bootstrapping-data from `r` as `serial`, verified as the device would (RFC 8572 §5.4); returns the owner's subject. */
async function signedFrom(r: Replica, agent: Agent, serial: string): Promise<string> {
  const res = await request(
    `${r.serve.device}/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data`,
    {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/yang-data+json', accept: 'application/yang-data+json' },
      body: JSON.stringify({ 'ietf-sztp-bootstrap-server:input': { 'signed-data-preferred': [null] } }),
    },
  );
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${r.name}: HTTP ${res.statusCode} ${text}`);
  const out = JSON.parse(text)['ietf-sztp-bootstrap-server:output'];
  const b = (k: string) => new Uint8Array(Buffer.from(out[k], 'base64'));
  verifyBootstrappingData({
    conveyedInformation: b('conveyed-information'),
    ownerCertificate: b('owner-certificate'),
    ownershipVoucher: b('ownership-voucher'),
    manufacturerTrustAnchors: [decodeArtifact(readFileSync(join(pki, 'masa-ca.crt'), 'utf8'))],
    serialNumber: serial,
    now: new Date(),
  });
  return parseCertificate(parseCertificateBag(b('owner-certificate'))[0] as Uint8Array).subject;
}

const registerDevices = (devices: Array<{ serial: string; emu?: BmcEmulator }>, profile = 'dpu') =>
  registerLabDevices((db as DatabaseHandle).db, new SecretBox(Buffer.from(SECRET, 'hex')), devices, profile);

/** The agent bundle as a freshly booted installer of `serial` runs it, listing `urls` in that order. */
const runAgent = (serial: string, urls: string[]) =>
  runAgentBundle({ serial, pki, sshDir, root, urls, flags: ['--timeout', '20', '--log-format', 'json'] });

/**
 * Progress reports the agent saw acknowledged (204), by type, from its JSON log: in each
 * attempt on a source, every progress line is followed by its report; a report that failed
 * ends the attempt with an error line, so only the last progress line before an error may
 * be unacknowledged. A successful run also had its final bootstrap-complete acknowledged.
 */
function acknowledged(out: string, succeeded: boolean): Map<string, number> {
  const types = new Set<string>(PROGRESS_TYPES);
  const acked = new Map<string, number>();
  const add = (t: string) => acked.set(t, (acked.get(t) ?? 0) + 1);
  let pending: string[] = [];
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { level: string; step: string; msg: string; code?: string };
    const t = /^([a-z-]+): /.exec(l.msg)?.[1];
    if (l.step === 'fetch' && l.msg.startsWith('got bootstrapping data')) {
      pending = [];
    } else if (t && types.has(t) && l.step !== 'fetch') {
      pending.push(t);
    } else if (l.level === 'error' && l.code) {
      pending.pop(); // the report that may have failed
      for (const p of pending) add(p);
      pending = [];
    }
  }
  if (succeeded) {
    for (const p of pending) add(p);
    add('bootstrap-complete');
  }
  return acked;
}

const count = (emu: BmcEmulator, suffix: string) =>
  emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith(suffix)).length;

describe.skipIf(!process.env.DATABASE_URL)(
  'three replicas on one PostgreSQL and one image volume',
  {
    timeout: 300_000,
  },
  () => {
    beforeAll(async () => {
      const init = runCli(['pki', 'init', '--out', pki, '--devices', [SIGNER, ...FLEET].join(',')]);
      expect(init.code, init.stderr).toBe(0);
      writeSshHostKey(sshDir);
      pg = await createPostgresDatabase();
      // Every replica: the same DATABASE_URL and the same secret key (never on a command line).
      env = childEnv({ DATABASE_URL: pg.url, DPU_ZTP_SECRET_KEY: SECRET });
      expect(runCli(['migrate'], env, 180_000).code).toBe(0);
      db = await openDatabase({ databaseUrl: pg.url });
      await insertLabProfile(db.db);
      await startReplica('a');
      await startReplica('b');
      await startReplica('c');
    }, 400_000);

    afterAll(async () => {
      for (const r of replicas) await r.serve.stop().catch(() => undefined);
      await db?.close();
      await pg?.drop();
    });

    it('an image uploaded through A downloads byte-identical from B and C; /readyz names an image the volume lacks', async () => {
      const [a, b, c] = replicas as [Replica, Replica, Replica];
      const bytes = randomBytes(3 * 1024 * 1024 + 17);
      const up = await api(a, 'PUT', '/api/v1/images/shared.img', new Uint8Array(bytes));
      expect(up.status, JSON.stringify(up.body)).toBe(201);
      for (const r of [b, c]) {
        const res = await fetch(`${r.serve.images}/images/shared.img`);
        expect(res.status).toBe(200);
        expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
        const https = await request(`${r.serve.device}/images/shared.img`, {
          dispatcher: new Agent({
            connect: { ca: readFileSync(join(pki, 'tls-ca.crt')), servername: 'localhost' },
          }),
          headers: { range: 'bytes=1000-1999' },
        });
        expect(https.statusCode).toBe(206);
        expect(Buffer.from(await https.body.arrayBuffer()).equals(bytes.subarray(1000, 2000))).toBe(true);
        expect((await api(r, 'GET', '/readyz')).body.checks).toContainEqual(
          expect.objectContaining({ name: 'images', ok: true }),
        );
      }
      // A row whose file the volume lacks (a replica with the volume unmounted sees every image
      // this way): every replica reports it, and is ready again once it is gone.
      await (db as DatabaseHandle).db
        .insertInto('images')
        .values({
          name: 'ghost.iso',
          size: '4096',
          sha256: '0'.repeat(64),
          sha384: '0'.repeat(96),
          sha512: '0'.repeat(128),
          content_type: 'application/x-iso9660-image',
          path: 'ghost.iso@0000',
        })
        .execute();
      for (const r of replicas) {
        const ready = await api(r, 'GET', '/readyz');
        expect(ready.status).toBe(503);
        const check = ready.body.checks.find((x: { name: string }) => x.name === 'images');
        expect(check).toMatchObject({ ok: false });
        expect(check.detail).toMatch(/ghost\.iso \(missing\)/);
      }
      await (db as DatabaseHandle).db.deleteFrom('images').where('name', '=', 'ghost.iso').execute();
      expect((await api(c, 'GET', '/readyz')).status).toBe(200);
      // Never a file of the wrong size: a file this replica sees shorter than its row (a volume
      // that lags, a damaged copy) is reported by /readyz and refused with 503, not served.
      expect(
        (await api(a, 'PUT', '/api/v1/images/short.img', new Uint8Array(randomBytes(8192)))).status,
      ).toBe(201);
      const row = await (db as DatabaseHandle).db
        .selectFrom('images')
        .select('path')
        .where('name', '=', 'short.img')
        .executeTakeFirstOrThrow();
      truncateSync(join(images, row.path), 4096);
      const short = await fetch(`${c.serve.images}/images/short.img`);
      expect(short.status).toBe(503);
      await short.text();
      const ready = await api(c, 'GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(JSON.stringify(ready.body.checks)).toMatch(/short\.img \(wrong size\)/);
      expect((await api(a, 'DELETE', '/api/v1/images/short.img')).status).toBeLessThan(300);
      expect((await api(c, 'GET', '/readyz')).status).toBe(200);
    });

    it('credentials come from the database: an owner rotation on B is what C signs with one second later', async () => {
      const [a, b, c] = replicas as [Replica, Replica, Replica];
      await (db as DatabaseHandle).db
        .insertInto('profiles')
        .values({
          name: 'config-only',
          spec: JSON.stringify({
            type: 'onboarding',
            configurationHandling: 'replace',
            configuration: 'x\n',
          }),
          updated_at: new Date(),
        })
        .execute();
      await registerDevices([{ serial: SIGNER }], 'config-only');
      const agent = deviceAgent(SIGNER);
      try {
        const before = await signedFrom(c, agent, SIGNER);
        expect(await signedFrom(b, agent, SIGNER)).toBe(before);
        expect((await api(c, 'GET', '/api/v1/owner')).body.keyReference).toMatch(/^database:/);
        // Requests to A and C keep coming while B rotates: each must verify, old owner or new.
        let stop = false;
        const seen: string[] = [];
        const failures: string[] = [];
        const load = [a, c].map(async (r) => {
          while (!stop) {
            try {
              seen.push(await signedFrom(r, agent, SIGNER));
            } catch (err) {
              failures.push(`${r.name}: ${(err as Error).message}`);
            }
          }
        });
        const k = await generateKey('ec-p256');
        const ca = signerFromPrivateKey(readFileSync(join(pki, 'owner-ca.key'), 'utf8'), {
          certificates: [decodeArtifact(readFileSync(join(pki, 'owner-ca.crt'), 'utf8'))],
        });
        const der = await createCertificate({
          profile: 'signing',
          subject: { commonName: 'Rotated Owner on B' },
          publicKey: k.publicKey,
          issuer: ca,
          notBefore: new Date(Date.now() - 60_000),
          notAfter: new Date(Date.now() + 86_400_000),
        });
        await sleep(300);
        const put = await api(b, 'PUT', '/api/v1/owner', {
          certificateChain: toPem(der, 'CERTIFICATE'),
          privateKey: k.privateKeyPem,
        });
        expect(put.status, JSON.stringify(put.body)).toBe(200);
        await sleep(scaledTimeout(1000));
        stop = true;
        await Promise.all(load);
        expect(failures).toEqual([]);
        expect(seen.length).toBeGreaterThan(2);
        expect(await signedFrom(c, agent, SIGNER)).toMatch(/Rotated Owner on B/);
        expect(await signedFrom(a, agent, SIGNER)).toMatch(/Rotated Owner on B/);
        expect((await api(c, 'GET', '/api/v1/owner')).body.subject).toMatch(/Rotated Owner on B/);
        // The key is sealed in the database, never stored in the clear.
        const row = await (db as DatabaseHandle).db
          .selectFrom('credentials')
          .selectAll()
          .where('role', '=', 'owner')
          .executeTakeFirstOrThrow();
        expect(Buffer.from(row.key_sealed as Uint8Array).toString('latin1')).not.toMatch(/PRIVATE KEY/);
        expect(Number(row.generation)).toBe(2);
      } finally {
        await agent.close();
      }
    });

    it('20 DPUs whose agents list all three replicas: kill -9 of one mid-fleet costs nothing', async () => {
      const [a, b, c] = replicas as [Replica, Replica, Replica];
      const os = randomBytes(50_000);
      expect((await api(a, 'PUT', '/api/v1/images/os.img', new Uint8Array(os))).status).toBeLessThan(300);
      expect(
        (await api(b, 'PUT', '/api/v1/images/installer.iso', new Uint8Array(randomBytes(20_000)))).status,
      ).toBeLessThan(300);
      const urls = replicas.map((r) => r.serve.device);
      const agents: Array<Promise<{ serial: string; code: number | null; out: string }>> = [];
      const emus = await Promise.all(
        FLEET.map((serial, i) =>
          startBmcEmulator({
            ...FAST_EMULATOR,
            persona: i % 2 === 0 ? 'generic' : 'bluefield',
            serial,
            onBoot: (e) => {
              if ('error' in e.fetch) return;
              // Each agent lists all three, starting at a different one (as a DHCP server might order them).
              const order = [...urls.slice(i % 3), ...urls.slice(0, i % 3)];
              agents.push(runAgent(serial, order).then((r) => ({ serial, ...r })));
            },
          }),
        ),
      );
      try {
        await registerDevices(FLEET.map((serial, i) => ({ serial, emu: emus[i] as BmcEmulator })));
        const created = await api(
          a,
          'POST',
          '/api/v1/jobs',
          { kind: 'provision', devices: FLEET },
          {
            'idempotency-key': 'replicas-fleet',
          },
        );
        expect(created.status, JSON.stringify(created.body)).toBe(202);
        // Mid-fleet: some devices done, others still on their way.
        const mid = Date.now() + scaledTimeout(120_000);
        for (;;) {
          const j = await api(c, 'GET', `/api/v1/jobs/${created.body.id}`);
          const done = j.body.devices.filter((d: { state: string }) => d.state === 'succeeded').length;
          if (done >= 4) break;
          if (Date.now() > mid)
            throw new Error(`the fleet never got going: ${JSON.stringify(j.body.counts)}`);
          await sleep(100);
        }
        const killed = await b.serve.stop('SIGKILL');
        expect(killed).toBe(null);
        const end = Date.now() + scaledTimeout(180_000);
        let job: any;
        for (;;) {
          job = (await api(c, 'GET', `/api/v1/jobs/${created.body.id}?steps=true`)).body;
          if (['succeeded', 'failed', 'cancelled'].includes(job.state)) break;
          if (Date.now() > end) throw new Error(`job never finished: ${JSON.stringify(job.counts)}`);
          await sleep(250);
        }
        const runs = await Promise.all(agents);
        const why = `${JSON.stringify(
          job.devices.filter((d: any) => d.state !== 'succeeded'),
          null,
          1,
        )}\n${runs
          .filter((r) => r.code !== 0)
          .map((r) => `${r.serial}: ${r.out.slice(-2000)}`)
          .join('\n')}`;
        expect(job.state, why).toBe('succeeded');
        expect(job.devices).toHaveLength(FLEET.length);
        const owners = await (db as DatabaseHandle).db
          .selectFrom('job_steps')
          .select('owner')
          .distinct()
          .execute();
        expect(owners.length).toBeGreaterThanOrEqual(2);
        for (const d of job.devices) {
          expect(d.state).toBe('succeeded');
          expect(d.steps.map((x: { step: string }) => x.step)).toEqual(STEPS);
          expect(d.steps.every((x: { result: string }) => x.result === 'done')).toBe(true);
        }
        const states = await (db as DatabaseHandle).db
          .selectFrom('devices')
          .select(['serial', 'state'])
          .where('serial', 'in', FLEET)
          .execute();
        expect(states.filter((s) => s.state !== 'provisioned')).toEqual([]);
        // No BMC saw a step twice: one reset each (a resumed power-cycle only confirms power), and
        // one insert or image push each unless the killed replica was inside that device's prepare.
        for (const [i, emu] of emus.entries()) {
          const serial = FLEET[i] as string;
          const prep = job.devices
            .find((d: { serial: string }) => d.serial === serial)
            .steps.find((x: { step: string }) => x.step === 'prepare');
          const allowed = /resumed by /.test(prep.detail ?? '') ? 2 : 1;
          expect(count(emu, 'ComputerSystem.Reset'), serial).toBe(1);
          const pushes = count(emu, 'VirtualMedia.InsertMedia') + count(emu, 'UpdateService.SimpleUpdate');
          expect(pushes, serial).toBeGreaterThanOrEqual(1);
          expect(pushes, serial).toBeLessThanOrEqual(allowed);
        }
        // Every agent finished, and every report it saw acknowledged is in the database.
        expect(runs.map((r) => [r.serial, r.code]).filter(([, code]) => code !== 0)).toEqual([]);
        const events = await (db as DatabaseHandle).db
          .selectFrom('bootstrap_events')
          .select(['serial', 'progress_type'])
          .where('kind', '=', 'progress')
          .where('serial', 'in', FLEET)
          .execute();
        for (const r of runs) {
          const stored = new Map<string, number>();
          for (const e of events)
            if (e.serial === r.serial && e.progress_type)
              stored.set(e.progress_type, (stored.get(e.progress_type) ?? 0) + 1);
          const acked = acknowledged(r.out, r.code === 0);
          expect(acked.get('bootstrap-complete'), r.serial).toBe(1);
          for (const [type, n] of acked)
            expect(stored.get(type) ?? 0, `${r.serial} ${type}`).toBeGreaterThanOrEqual(n);
        }
      } finally {
        for (const e of emus) await e.close();
      }
    });
  },
);
