/**
 * The provisioning lab of the end-to-end tests: a PKI from `dpu-ztp pki init`,
 * emulated BMCs whose boot hook runs the real agent bundle
 * (`dist/sztp-client.mjs`), devices and BMCs registered in the service's
 * database, `dpu-ztp serve` and the operator API.
 *
 * {@link ProvisionLab} is the whole lab around one embedded-database serve (restartable on
 * the same ports, for `kill -9` tests). Its parts are exported for tests that assemble
 * their own (several replicas on one PostgreSQL): {@link writeSshHostKey},
 * {@link insertLabProfile}, {@link registerLabDevices}, {@link runAgentBundle} and
 * {@link operatorApi}.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { BmcStore, loadOrCreateSecretKeyFile, SecretBox } from '../../bootstrap/index.js';
import { selfSignedCert } from '../../cli/commands/bmc.js';
import { openDatabase } from '../../db/index.js';
import type { Database } from '../../db/schema.js';
import {
  type BmcEmulator,
  type BmcEmulatorOptions,
  type EmulatorPersonaId,
  startBmcEmulator,
} from '../../redfish/index.js';
import { FAST_EMULATOR } from '../redfish/helpers.js';
import { childEnv, repoRoot, runCli, type ServeProcess, seedDataDir, startServe } from './serve.js';

/** The agent's outcome for one boot. */
export interface AgentRun {
  code: number | null;
  out: string;
  /** ms from its last output line to its exit. */
  exitLagMs: number;
}

/** A device of the lab: its serial, emulated BMC and emulator persona. */
export interface LabDevice {
  serial: string;
  persona: EmulatorPersonaId;
  /** Extra emulator options (faults). */
  emulator?: Partial<BmcEmulatorOptions>;
  /** The agent of a boot starts once this resolves (default at once). */
  gate?: () => Promise<void>;
}

/** The installer-ISO profile every lab device is registered with (`dpu`). */
export const LAB_PROFILE = {
  type: 'onboarding',
  bootImage: { osName: 'testos', osVersion: '2.0', image: 'os.img' },
  configurationHandling: 'replace',
  configuration: 'hostname provisioned\n',
  installerImage: 'installer.iso',
} as const;

/** The images {@link ProvisionLab.start} uploads (random bytes), by name: their sizes. */
export const LAB_IMAGE_BYTES = { 'os.img': 200_000, 'installer.iso': 100_000 } as const;

/** Provisioning job steps, in order. */
export const JOB_STEPS = [
  'preflight',
  'prepare',
  'boot-override',
  'power-cycle',
  'await-device',
  'await-complete',
  'finalize',
];

/** Writes the SSH host key an installed OS reports in bootstrap-complete (an ed25519 public key). */
export function writeSshHostKey(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  const blob = Buffer.concat([u32(11), Buffer.from('ssh-ed25519'), u32(32), randomBytes(32)]);
  writeFileSync(join(dir, 'ssh_host_ed25519_key.pub'), `ssh-ed25519 ${blob.toString('base64')} root@dpu\n`);
}

/** Stores {@link LAB_PROFILE} as profile `dpu` (kept if it is already there). */
export async function insertLabProfile(db: Kysely<Database>): Promise<void> {
  await db
    .insertInto('profiles')
    .values({ name: 'dpu', spec: JSON.stringify(LAB_PROFILE), updated_at: new Date() })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
}

/** Registers each device with `profile` and, when it has an emulated BMC, that BMC as `bmc-<serial>`. */
export async function registerLabDevices(
  db: Kysely<Database>,
  box: SecretBox,
  devices: ReadonlyArray<{ serial: string; emu?: BmcEmulator | undefined }>,
  profile = 'dpu',
): Promise<void> {
  const store = new BmcStore(db, box);
  for (const { serial, emu } of devices) {
    if (emu) await store.put(`bmc-${serial}`, { address: emu.url, username: 'admin', password: 'secret' });
    await db
      .insertInto('devices')
      .values({ serial, profile, bmc: emu ? `bmc-${serial}` : null, updated_at: new Date() })
      .execute();
  }
}

/** What {@link runAgentBundle} runs the agent with. */
export interface AgentBundleOptions {
  serial: string;
  /** The `dpu-ztp pki init` directory (IDevID, MASA CA, TLS CA). */
  pki: string;
  /** Directory of the SSH host keys the device reports ({@link writeSshHostKey}). */
  sshDir: string;
  /** Directory under which each boot gets a fresh state directory. */
  root: string;
  /** Bootstrap server URLs, in the order the agent tries them. */
  urls: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Retry and time limit flags (default a 0.05 s backoff and a 15 s timeout). */
  flags?: readonly string[];
}

/** Runs the agent bundle as the freshly booted installer of a device would (fresh state each boot). */
export function runAgentBundle(o: AgentBundleOptions): Promise<AgentRun> {
  const dir = join(o.root, 'dev', o.serial, randomBytes(4).toString('hex'));
  mkdirSync(join(dir, 'etc'), { recursive: true });
  const hook = join(dir, 'install.sh');
  writeFileSync(hook, `#!/bin/sh\ncp "$1" "${dir}/installed.img"\n`, { mode: 0o755 });
  const dev = (f: string) => join(o.pki, 'devices', o.serial, f);
  const args = [
    join(repoRoot, 'dist', 'sztp-client.mjs'),
    'run',
    ...['--no-dhcp', '--once', ...(o.flags ?? ['--backoff', '0.05', '--timeout', '15'])],
    ...['--idevid-cert', dev('idevid.crt'), '--idevid-key', dev('idevid.key')],
    ...['--manufacturer-trust-anchor', join(o.pki, 'masa-ca.crt')],
    ...['--trust-anchor', join(o.pki, 'tls-ca.crt')],
    ...o.urls.flatMap((u) => ['--bootstrap-url', u]),
    ...['--install-hook', hook, '--config-path', join(dir, 'etc', 'running.conf')],
    ...['--ssh-host-keys-dir', o.sshDir, '--state-dir', join(dir, 'state')],
    ...['--os-name', 'testos', '--os-version', '1.0', '--hw-model', 'e2e-dpu'],
  ];
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { env: o.env ?? childEnv(), cwd: dir });
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

/** An operator API answer. */
export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/**
 * An operator API call with a bearer token. 503 is the service's "under pressure, retry later"
 * (its event-loop guard trips on a loaded machine): retried as a client should, for requests
 * that are safe to repeat (not a POST without an Idempotency-Key) and not `/readyz` (whose 503
 * is an answer).
 */
export async function operatorApi(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiAnswer> {
  const raw = body instanceof Uint8Array;
  const send = () =>
    fetch(`${base}${path}`, {
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
  const retryable = (method !== 'POST' || headers['idempotency-key'] !== undefined) && path !== '/readyz';
  let res = await send();
  for (let i = 0; res.status === 503 && retryable && i < 10; i++) {
    await res.text();
    await new Promise((r) => setTimeout(r, 1000));
    res = await send();
  }
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** Options of a {@link ProvisionLab}. */
export interface ProvisionLabOptions {
  /**
   * A directory `dpu-ztp pki init` already made for every serial the lab will use (several labs
   * of one file can share one); by default {@link ProvisionLab.prepare} makes one.
   */
  pki?: string;
  /** The agents' environment (e.g. OTEL_*); default {@link childEnv}. */
  agentEnv?: NodeJS.ProcessEnv;
}

/** The lab: PKI, data dir, emulators and (once started) the serve process. */
export class ProvisionLab {
  readonly root = mkdtempSync(join(tmpdir(), 'dpu-ztp-lab-'));
  readonly pki: string;
  readonly dataDir = join(this.root, 'data');
  readonly emulators = new Map<string, BmcEmulator>();
  /** Agent runs started by the emulators' boot hooks. */
  readonly agents: Promise<AgentRun>[] = [];
  serve: ServeProcess | undefined;
  readonly #sshDir = join(this.root, 'ssh');
  readonly #ownPki: boolean;
  readonly #agentEnv: NodeJS.ProcessEnv | undefined;
  #serveArgs: { extra: string[]; env: NodeJS.ProcessEnv } | undefined;

  /** With `tls`: the PEM the emulated BMCs' certificate is (self-signed for 127.0.0.1). */
  bmcCa: string | undefined;

  constructor(opts: ProvisionLabOptions = {}) {
    this.pki = opts.pki ?? join(this.root, 'pki');
    this.#ownPki = opts.pki === undefined;
    this.#agentEnv = opts.agentEnv;
  }

  /**
   * PKI for `devices`, migrated database (the run's template), emulators and registrations
   * (serve not started yet). `tls`: emulated BMCs answer over HTTPS (as the API's BMC inventory
   * requires); `register: false` leaves the BMCs and devices for the test to register through
   * the API (the profile is stored).
   */
  async prepare(
    devices: readonly LabDevice[],
    opts: { tls?: boolean; register?: boolean } = {},
  ): Promise<void> {
    const tls = opts.tls ? await selfSignedCert(['127.0.0.1']) : undefined;
    this.bmcCa = tls?.cert;
    if (this.#ownPki) {
      const serials = devices.map((d) => d.serial).join(',');
      const init = runCli(['pki', 'init', '--out', this.pki, '--devices', serials]);
      if (init.code !== 0) throw new Error(`pki init failed: ${init.stderr}`);
    }
    seedDataDir(this.dataDir);
    writeSshHostKey(this.#sshDir);
    for (const d of devices) {
      this.emulators.set(
        d.serial,
        await startBmcEmulator({
          ...FAST_EMULATOR,
          ...d.emulator,
          persona: d.persona,
          serial: d.serial,
          ...(tls ? { tls } : {}),
          onBoot: (e) => {
            if ('error' in e.fetch) return;
            const gate = d.gate ?? (async () => undefined);
            this.agents.push(gate().then(() => this.#runAgent(d.serial)));
          },
        }),
      );
    }
    const db = await openDatabase({ dataDir: this.dataDir });
    try {
      await insertLabProfile(db.db);
      const box = new SecretBox(loadOrCreateSecretKeyFile(join(this.dataDir, 'secret.key')).key);
      await registerLabDevices(
        db.db,
        box,
        (opts.register === false ? [] : devices).map((d) => ({
          serial: d.serial,
          emu: this.emulators.get(d.serial),
        })),
      );
    } finally {
      await db.close();
    }
  }

  /** Starts serve on random ports with `extra` flags, then uploads the OS and installer images. */
  async start(extra: string[] = [], env: NodeJS.ProcessEnv = childEnv()): Promise<ServeProcess> {
    this.#serveArgs = { extra, env };
    await this.#spawn(['--api-port', '0', '--device-port', '0', '--images-port', '0']);
    for (const [name, size] of Object.entries(LAB_IMAGE_BYTES)) {
      const r = await this.api('PUT', `/api/v1/images/${name}`, new Uint8Array(randomBytes(size)));
      if (r.status >= 300) throw new Error(`uploading ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    return this.serve as ServeProcess;
  }

  /**
   * Starts serve again, with the flags of {@link start} and on the ports it had (agents already
   * told its URL reach the new process), e.g. after `kill -9` of the last one.
   */
  async restart(): Promise<ServeProcess> {
    const last = this.serve;
    if (!last || !this.#serveArgs) throw new Error('restart before start');
    const port = (url: string) => new URL(url).port;
    await this.#spawn([
      ...['--api-port', port(last.api), '--device-port', port(last.device)],
      ...['--images-port', port(last.images)],
    ]);
    return this.serve as ServeProcess;
  }

  async #spawn(ports: string[]): Promise<void> {
    const { extra, env } = this.#serveArgs as { extra: string[]; env: NodeJS.ProcessEnv };
    this.serve = await startServe(
      [
        ...['--data-dir', this.dataDir, '--pki-dir', this.pki, ...ports],
        ...['--await-device-timeout', '90', '--await-complete-timeout', '90', ...extra],
      ],
      env,
      120_000,
    );
  }

  /** The admin API token serve created in the data dir. */
  token(): string {
    return readFileSync(join(this.dataDir, 'admin-token'), 'utf8').trim();
  }

  /** An operator API call with the admin token ({@link operatorApi}: 503 retried for safe requests). */
  api(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiAnswer> {
    return operatorApi(this.serve?.api as string, this.token(), method, path, body, headers);
  }

  /** Polls a job until `until` holds (or throws after `ms`). */
  async waitJob(id: string, until: (j: any) => boolean, ms: number): Promise<any> {
    const end = Date.now() + ms;
    for (;;) {
      const r = await this.api('GET', `/api/v1/jobs/${id}?steps=true`);
      if (r.status === 200 && until(r.body)) return r.body;
      if (Date.now() > end) throw new Error(`job ${id} never got there: ${JSON.stringify(r.body)}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** Stops serve and the emulators. */
  async close(): Promise<void> {
    await this.serve?.stop().catch(() => undefined);
    await Promise.allSettled([...this.emulators.values()].map((e) => e.close()));
  }

  /** Runs the agent bundle as the freshly booted installer of `serial` would, against this serve. */
  #runAgent(serial: string): Promise<AgentRun> {
    return runAgentBundle({
      serial,
      pki: this.pki,
      sshDir: this.#sshDir,
      root: this.root,
      urls: [this.serve?.device as string],
      ...(this.#agentEnv ? { env: this.#agentEnv } : {}),
    });
  }
}
