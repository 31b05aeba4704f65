/**
 * A small provisioning lab for end-to-end tests: a PKI from `dpu-ztp pki init`,
 * emulated BMCs whose boot hook runs the real agent bundle
 * (`dist/sztp-client.mjs`), devices and BMCs registered in the service's
 * database, and the operator API. The same steps as
 * test/e2e/provision-jobs.test.ts, packaged for tests that need one run of the
 * whole path (the dashboards test scrapes it).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BmcStore, loadOrCreateSecretKeyFile, SecretBox } from '../../bootstrap/index.js';
import { selfSignedCert } from '../../cli/commands/bmc.js';
import { openDatabase } from '../../db/index.js';
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
}

/** A device of the lab: its serial, emulated BMC and emulator persona. */
export interface LabDevice {
  serial: string;
  persona: EmulatorPersonaId;
  /** Extra emulator options (faults). */
  emulator?: Partial<BmcEmulatorOptions>;
}

/** The lab: PKI, data dir, emulators and (once started) the serve process. */
export class ProvisionLab {
  readonly root = mkdtempSync(join(tmpdir(), 'dpu-ztp-lab-'));
  readonly pki = join(this.root, 'pki');
  readonly dataDir = join(this.root, 'data');
  readonly emulators = new Map<string, BmcEmulator>();
  /** Agent runs started by the emulators' boot hooks. */
  readonly agents: Promise<AgentRun>[] = [];
  serve: ServeProcess | undefined;
  readonly #sshDir = join(this.root, 'ssh');
  readonly #bundle = join(repoRoot, 'dist', 'sztp-client.mjs');

  /** With `tls`: the PEM the emulated BMCs' certificate is (self-signed for 127.0.0.1). */
  bmcCa: string | undefined;

  /**
   * PKI for `devices`, migrated database (the run's template), emulators and registrations (serve not started yet).
   * `tls`: emulated BMCs answer over HTTPS (as the API's BMC inventory requires); `register: false`
   * leaves the BMCs and devices for the test to register through the API (the profile is stored).
   */
  async prepare(
    devices: readonly LabDevice[],
    opts: { tls?: boolean; register?: boolean } = {},
  ): Promise<void> {
    const tls = opts.tls ? await selfSignedCert(['127.0.0.1']) : undefined;
    this.bmcCa = tls?.cert;
    const init = runCli([
      'pki',
      'init',
      '--out',
      this.pki,
      '--devices',
      devices.map((d) => d.serial).join(','),
    ]);
    if (init.code !== 0) throw new Error(`pki init failed: ${init.stderr}`);
    seedDataDir(this.dataDir);
    mkdirSync(this.#sshDir, { recursive: true });
    const u32 = (n: number) => {
      const x = Buffer.alloc(4);
      x.writeUInt32BE(n);
      return x;
    };
    const blob = Buffer.concat([u32(11), Buffer.from('ssh-ed25519'), u32(32), randomBytes(32)]);
    writeFileSync(
      join(this.#sshDir, 'ssh_host_ed25519_key.pub'),
      `ssh-ed25519 ${blob.toString('base64')} root@dpu\n`,
    );
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
            if (!('error' in e.fetch)) this.agents.push(this.#runAgent(d.serial));
          },
        }),
      );
    }
    const db = await openDatabase({ dataDir: this.dataDir });
    try {
      const store = new BmcStore(
        db.db,
        new SecretBox(loadOrCreateSecretKeyFile(join(this.dataDir, 'secret.key')).key),
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
      for (const d of opts.register === false ? [] : devices) {
        const emu = this.emulators.get(d.serial) as BmcEmulator;
        await store.put(`bmc-${d.serial}`, { address: emu.url, username: 'admin', password: 'secret' });
        await db.db
          .insertInto('devices')
          .values({ serial: d.serial, profile: 'dpu', bmc: `bmc-${d.serial}`, updated_at: new Date() })
          .execute();
      }
    } finally {
      await db.close();
    }
  }

  /** Starts serve on random ports with `extra` flags, then uploads the OS and installer images. */
  async start(extra: string[] = [], env: NodeJS.ProcessEnv = childEnv()): Promise<ServeProcess> {
    this.serve = await startServe(
      [
        '--data-dir',
        this.dataDir,
        '--pki-dir',
        this.pki,
        '--api-port',
        '0',
        '--device-port',
        '0',
        '--images-port',
        '0',
        '--await-device-timeout',
        '90',
        '--await-complete-timeout',
        '90',
        ...extra,
      ],
      env,
      120_000,
    );
    for (const [name, size] of [
      ['os.img', 200_000],
      ['installer.iso', 100_000],
    ] as const) {
      const r = await this.api('PUT', `/api/v1/images/${name}`, new Uint8Array(randomBytes(size)));
      if (r.status >= 300) throw new Error(`uploading ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    return this.serve;
  }

  /** An operator API call with the admin token (503 "under pressure" retried for safe requests). */
  async api(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: any }> {
    const token = readFileSync(join(this.dataDir, 'admin-token'), 'utf8').trim();
    const raw = body instanceof Uint8Array;
    const send = () =>
      fetch(`${this.serve?.api}${path}`, {
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
    const retryable = method !== 'POST' || headers['idempotency-key'] !== undefined;
    let res = await send();
    for (let i = 0; res.status === 503 && retryable && i < 10; i++) {
      await res.text();
      await new Promise((r) => setTimeout(r, 1000));
      res = await send();
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
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

  /** Runs the agent bundle as the freshly booted installer of `serial` would. */
  #runAgent(serial: string): Promise<AgentRun> {
    const dir = join(this.root, 'dev', serial, randomBytes(4).toString('hex'));
    mkdirSync(join(dir, 'etc'), { recursive: true });
    const hook = join(dir, 'install.sh');
    writeFileSync(hook, `#!/bin/sh\ncp "$1" "${dir}/installed.img"\n`, { mode: 0o755 });
    const dev = (f: string) => join(this.pki, 'devices', serial, f);
    const args = [
      this.#bundle,
      'run',
      '--no-dhcp',
      '--once',
      '--backoff',
      '0.05',
      '--timeout',
      '15',
      '--idevid-cert',
      dev('idevid.crt'),
      '--idevid-key',
      dev('idevid.key'),
      '--manufacturer-trust-anchor',
      join(this.pki, 'masa-ca.crt'),
      '--trust-anchor',
      join(this.pki, 'tls-ca.crt'),
      '--bootstrap-url',
      this.serve?.device as string,
      '--install-hook',
      hook,
      '--config-path',
      join(dir, 'etc', 'running.conf'),
      '--ssh-host-keys-dir',
      this.#sshDir,
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
}
