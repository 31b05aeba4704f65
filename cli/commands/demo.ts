/**
 * `dpu-ztp demo`: the lab's front door in one command. On one machine with only
 * Node.js it makes a lab PKI, starts `dpu-ztp serve` (a child process on the
 * embedded database), starts N emulated DPU BMCs (the `bmc emulate` personas,
 * over TLS) whose boot hook runs the real agent bundle (`dist/sztp-client.mjs`)
 * against the service, registers the BMCs and devices through the operator API,
 * provisions them all with one job while showing live progress, and ends with a
 * summary and the dashboard URL. Exit 0 only when every DPU reached
 * `bootstrap-complete`. SIGINT/SIGTERM stop everything it started: the agents,
 * the emulators (in this process) and the service.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  type WriteStream,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { createLabPki } from '../../pki/index.js';
import {
  type BmcEmulator,
  EMULATOR_FAULTS,
  EMULATOR_PERSONAS,
  type EmulatorFaultName,
  type EmulatorPersonaId,
  startBmcEmulator,
} from '../../redfish/index.js';
import { type ApiClient, apiClient, call } from '../api-client.js';
import { action, CliError } from '../exit.js';
import {
  type DeviceRow,
  FINISHED_JOB_STATES,
  formatSeconds,
  type JobJson,
  JobProgress,
  runSeconds,
} from '../job-progress.js';
import { type ServeChild, spawnServe } from '../serve-child.js';
import { selfSignedCert } from './bmc.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The agent bundle `npm install` (prepare) and `npm run build:agent` write. */
const AGENT_BUNDLE = join(here, '..', '..', 'sztp-client.mjs');

/**
 * `--personas mixed`: the DPU personas in turn (SystemType DPU) — BlueField pushes an image, the
 * generic DPU BMC boots virtual media. The host-BMC dialects (idrac, ilo, supermicro, xcc) can be
 * named too; openbmc takes only https:// images, and jobs hand out the http:// images listener.
 */
export const MIXED_PERSONAS: readonly EmulatorPersonaId[] = ['generic', 'bluefield'];
/** Largest `--dpus`. */
export const MAX_DEMO_DPUS = 1000;
const INSTALLER = 'demo-installer.iso';
const OS_IMAGE = 'demo-os.img';
const PROFILE = 'demo';

interface DemoFlags {
  dpus: string;
  personas: string;
  keep?: boolean;
  portBase?: string;
  dataDir?: string;
  failDpu?: string[];
  agents: string;
  timeout: string;
}

/** The demo's parsed flags. */
export interface DemoOptions {
  dpus: number;
  personas: EmulatorPersonaId[];
  keep: boolean;
  portBase: number | undefined;
  dataDir: string | undefined;
  /** 0-based DPU index -> the fault its BMC gets. */
  faults: Map<number, EmulatorFaultName>;
  /** Agent runs at once (booted DPUs beyond it wait their turn). */
  agents: number;
  /** Seconds a DPU may take from reset to first contact, and from there to bootstrap-complete. */
  timeoutS: number;
}

function int(v: string, flag: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new CliError('CLI_ERR_USAGE', `${flag} must be an integer ${min}..${max}, got ${v}`);
  return n;
}

/** Parses and checks the flags. */
export function demoOptions(f: DemoFlags): DemoOptions {
  const dpus = int(f.dpus, '--dpus', 1, MAX_DEMO_DPUS);
  const names = f.personas === 'mixed' ? [...MIXED_PERSONAS] : f.personas.split(',').map((s) => s.trim());
  for (const p of names)
    if (!(p in EMULATOR_PERSONAS))
      throw new CliError(
        'CLI_ERR_USAGE',
        `--personas: unknown persona ${p} (mixed, or a list of ${Object.keys(EMULATOR_PERSONAS).join(', ')})`,
      );
  const portBase = f.portBase === undefined ? undefined : int(f.portBase, '--port-base', 1, 65535);
  if (portBase !== undefined && portBase + 2 + dpus > 65535)
    throw new CliError(
      'CLI_ERR_USAGE',
      `--port-base ${portBase} leaves no room for ${dpus} BMCs below 65536`,
    );
  const faults = new Map<number, EmulatorFaultName>();
  for (const spec of f.failDpu ?? []) {
    const [n, fault = 'reset-refused'] = spec.split(':');
    const i = int(n ?? '', '--fail-dpu', 1, dpus);
    if (!(fault in EMULATOR_FAULTS))
      throw new CliError(
        'CLI_ERR_USAGE',
        `--fail-dpu ${spec}: unknown fault ${fault} (${Object.keys(EMULATOR_FAULTS).join(', ')})`,
      );
    faults.set(i - 1, fault as EmulatorFaultName);
  }
  return {
    dpus,
    personas: names as EmulatorPersonaId[],
    keep: f.keep === true,
    portBase,
    dataDir: f.dataDir === undefined ? undefined : resolve(f.dataDir),
    faults,
    agents: int(f.agents, '--agents', 1, 256),
    timeoutS: int(f.timeout, '--timeout', 10, 24 * 3600),
  };
}

/** An ssh host public key for the agent's bootstrap-complete report (a real ed25519 key). */
function sshHostKey(): string {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const raw = der.subarray(der.length - 32);
  const blob = Buffer.concat([u32(11), Buffer.from('ssh-ed25519'), u32(32), raw]);
  return `ssh-ed25519 ${blob.toString('base64')} root@dpu-ztp-demo\n`;
}

/** One emulated DPU. */
interface Dpu {
  serial: string;
  persona: EmulatorPersonaId;
  fault?: EmulatorFaultName;
  emu?: BmcEmulator;
  /** How the agent run ended (exit code), when it ran. */
  agent?: number | null;
  bootError?: string;
}

/** Everything the demo started, stopped in reverse on the way out. */
class Lab {
  readonly agents = new Set<ChildProcess>();
  readonly emulators: BmcEmulator[] = [];
  serveChild: ChildProcess | undefined;
  serve: ServeChild | undefined;
  logs: WriteStream[] = [];
  stopping = false;
  #queue: Array<() => void> = [];
  #running = 0;

  constructor(
    readonly root: string,
    readonly temporary: boolean,
    readonly maxAgents: number,
  ) {}

  /** Runs `fn` when fewer than `maxAgents` agents run (booted DPUs wait their turn). */
  async agentSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.maxAgents) await new Promise<void>((r) => this.#queue.push(r));
    this.#running++;
    try {
      return await fn();
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  /** Stops the agents, the emulators and the service; removes a temporary lab directory. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const r of this.#queue.splice(0)) r();
    const exited = (c: ChildProcess) =>
      c.exitCode !== null || c.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((r) => c.once('exit', () => r()));
    const kill = async (c: ChildProcess, graceMs: number) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
      await exited(c);
      clearTimeout(t);
    };
    await Promise.all([...this.agents].map((c) => kill(c, 2_000)));
    await Promise.allSettled(this.emulators.map((e) => e.close()));
    // serve finishes in-flight requests and closes the database on SIGTERM; cut it off after 20 s.
    if (this.serveChild) await kill(this.serveChild, 20_000);
    await Promise.all(this.logs.map((l) => new Promise<void>((r) => l.end(() => r()))));
    if (this.temporary) rmSync(this.root, { recursive: true, force: true });
  }

  /** A second signal: no more grace. */
  killNow(): void {
    for (const c of this.agents) c.kill('SIGKILL');
    this.serveChild?.kill('SIGKILL');
  }
}

/** Writes the lab PKI (or reuses the one a previous `--data-dir` run made for these serials). */
async function labPki(pkiDir: string, serials: string[]): Promise<'created' | 'reused'> {
  if (existsSync(join(pkiDir, 'tls-ca.crt'))) {
    const missing = serials.filter((s) => !existsSync(join(pkiDir, 'devices', s, 'idevid.crt')));
    if (missing.length)
      throw new CliError(
        'CLI_ERR_DEMO',
        `${pkiDir} was made for fewer DPUs (no IDevID for ${missing[0]}); use another --data-dir`,
      );
    return 'reused';
  }
  const lab = await createLabPki({ devices: serials, now: new Date() });
  for (const f of lab.files) {
    mkdirSync(dirname(join(pkiDir, f.path)), { recursive: true });
    writeFileSync(join(pkiDir, f.path), f.data, { mode: f.mode });
  }
  return 'created';
}

/** The agent as the freshly booted installer of `serial` would run it. */
function agentArgs(root: string, serial: string, deviceUrl: string): string[] {
  const pki = join(root, 'pki');
  const dir = join(root, 'devices', serial);
  return [
    AGENT_BUNDLE,
    'run',
    '--no-dhcp',
    '--bootstrap-url',
    deviceUrl,
    '--max-attempts',
    '5',
    '--backoff',
    '0.5:4',
    '--timeout',
    '30',
    '--idevid-cert',
    join(pki, 'devices', serial, 'idevid.crt'),
    '--idevid-key',
    join(pki, 'devices', serial, 'idevid.key'),
    '--manufacturer-trust-anchor',
    join(pki, 'masa-ca.crt'),
    '--trust-anchor',
    join(pki, 'tls-ca.crt'),
    '--install-hook',
    join(root, 'agent', 'install.sh'),
    '--config-path',
    join(dir, 'etc', 'running.conf'),
    '--ssh-host-keys-dir',
    join(root, 'agent', 'ssh'),
    '--state-dir',
    join(dir, 'state'),
    '--os-name',
    'demo-installer',
    '--os-version',
    '1.0',
    '--hw-model',
    'dpu-ztp-demo',
    '--log-format',
    'json',
  ];
}

/** Runs the agent for one booted DPU; resolves with its exit code. */
function runAgent(lab: Lab, dpu: Dpu, deviceUrl: string, env: NodeJS.ProcessEnv): Promise<number | null> {
  return lab.agentSlot(
    () =>
      new Promise<number | null>((resolveRun) => {
        if (lab.stopping) return resolveRun(null);
        const dir = join(lab.root, 'devices', dpu.serial);
        mkdirSync(join(dir, 'etc'), { recursive: true });
        const log = openSync(join(dir, 'agent.log'), 'a');
        const child = spawn(process.execPath, agentArgs(lab.root, dpu.serial, deviceUrl), {
          cwd: dir,
          env,
          stdio: ['ignore', log, log],
        });
        closeSync(log);
        lab.agents.add(child);
        child.once('error', () => undefined);
        child.once('exit', (code) => {
          lab.agents.delete(child);
          resolveRun(code);
        });
      }),
  );
}

/** The environment of the children: no settings of the caller's own service leak in. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  for (const k of Object.keys(env)) if (k.startsWith('DPU_ZTP_')) delete env[k];
  return env;
}

/** What one device's run came to, for the summary. */
export interface DemoDeviceResult {
  serial: string;
  persona: string;
  complete: boolean;
  state: string;
  seconds: number | undefined;
  strategy: string;
  /** Steps done of the seven, with retries. */
  steps: string;
  /** Where and why it stopped, when it did not complete. */
  failure?: { step: string; code: string; message: string };
}

/** The per-device summary rows of a finished job (read with `?steps=true`). */
export function demoResults(job: JobJson, personaOf: (serial: string) => string): DemoDeviceResult[] {
  const now = Date.now();
  return job.devices.map((d: DeviceRow) => {
    const steps = d.steps ?? [];
    const done = new Set(steps.filter((s) => s.result === 'done').map((s) => s.step));
    const retries = steps.length - new Set(steps.map((s) => s.step)).size;
    const failedStep = [...steps].reverse().find((s) => s.result === 'failed')?.step ?? d.step;
    const bmc = (d.error?.bmcMessages?.[0] ?? undefined) as { Message?: string } | undefined;
    return {
      serial: d.serial,
      persona: personaOf(d.serial),
      complete: d.state === 'succeeded',
      state: d.state,
      seconds: runSeconds(d, now),
      strategy: d.strategy ?? '-',
      steps: `${done.size}/7${retries > 0 ? ` (+${retries} retried)` : ''}`,
      ...(d.error
        ? {
            failure: {
              step: failedStep,
              code: d.error.code,
              message:
                bmc?.Message && !d.error.message.includes(bmc.Message)
                  ? `${d.error.message} (BMC: ${bmc.Message})`
                  : d.error.message,
            },
          }
        : d.state !== 'succeeded'
          ? { failure: { step: d.step, code: d.state, message: `the run ended ${d.state}` } }
          : {}),
    };
  });
}

/** The summary printed at the end: a row per DPU, the totals, and a line per failure. */
export function summaryLines(results: DemoDeviceResult[], wallS: number): string[] {
  const lines = [
    '',
    `${'DPU'.padEnd(12)} ${'persona'.padEnd(11)} ${'result'.padEnd(19)} ${'time'.padStart(7)}  ${'strategy'.padEnd(14)} steps`,
  ];
  for (const r of results)
    lines.push(
      `${r.serial.padEnd(12)} ${r.persona.padEnd(11)} ${(r.complete ? 'bootstrap-complete' : r.state.toUpperCase()).padEnd(19)} ${(r.seconds === undefined ? '-' : `${r.seconds.toFixed(1)}s`).padStart(7)}  ${r.strategy.padEnd(14)} ${r.steps}${r.failure ? `  stopped in ${r.failure.step}: ${r.failure.code}` : ''}`,
    );
  const ok = results.filter((r) => r.complete);
  const times = ok.map((r) => r.seconds ?? 0).sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] ?? 0;
  const byStrategy = new Map<string, number>();
  for (const r of results) byStrategy.set(r.strategy, (byStrategy.get(r.strategy) ?? 0) + 1);
  lines.push('');
  lines.push(
    `${ok.length} of ${results.length} DPUs reached bootstrap-complete; the job took ${formatSeconds(wallS)}` +
      (times.length
        ? ` (per DPU: median ${median.toFixed(1)}s, slowest ${(times[times.length - 1] ?? 0).toFixed(1)}s)`
        : '') +
      `; strategies: ${[...byStrategy].map(([s, n]) => `${s} ${n}`).join(', ')}`,
  );
  for (const r of results)
    if (r.failure)
      lines.push(
        `FAILED ${r.serial} (${r.persona}) at step ${r.failure.step}: ${r.failure.code}: ${r.failure.message}`,
      );
  return lines;
}

async function demo(o: DemoOptions, lab: Lab, out: (line: string) => void): Promise<number> {
  const t0 = performance.now();
  const at = () => `[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
  const serials = Array.from({ length: o.dpus }, (_, i) => `DEMO-${String(i + 1).padStart(4, '0')}`);
  const dpus: Dpu[] = serials.map((serial, i) => ({
    serial,
    persona: o.personas[i % o.personas.length] as EmulatorPersonaId,
    ...(o.faults.has(i) ? { fault: o.faults.get(i) } : {}),
  }));
  const personaOf = new Map(dpus.map((d) => [d.serial, d.persona]));
  const env = childEnv();

  out(
    `dpu-ztp demo: ${o.dpus} DPU(s) in ${lab.root}; demo pid ${process.pid}, process group ${processGroup()}`,
  );
  const pkiDir = join(lab.root, 'pki');
  const made = await labPki(pkiDir, serials);
  mkdirSync(join(lab.root, 'agent', 'ssh'), { recursive: true });
  writeFileSync(join(lab.root, 'agent', 'ssh', 'ssh_host_ed25519_key.pub'), sshHostKey());
  // The installer's "write the OS to disk": the agent has already checked the image's SHA-256.
  writeFileSync(
    join(lab.root, 'agent', 'install.sh'),
    '#!/bin/sh\n# dpu-ztp demo: stands in for writing the verified boot image ($1) to the DPU\nexit 0\n',
    { mode: 0o755 },
  );
  out(`${at()} lab PKI ${made} in ${pkiDir} (manufacturer, MASA, owner and TLS CAs; an IDevID per DPU)`);

  if (lab.stopping) return 130;
  const serveLog = createWriteStream(join(lab.root, 'serve.log'), { flags: 'a' });
  lab.logs.push(serveLog);
  const p = o.portBase;
  lab.serve = await spawnServe(
    [
      '--data-dir',
      join(lab.root, 'data'),
      '--pki-dir',
      pkiDir,
      ...(p === undefined
        ? []
        : ['--api-port', String(p), '--device-port', String(p + 1), '--images-port', String(p + 2)]),
      '--max-concurrent-provisions',
      String(Math.max(64, o.dpus)),
      '--log-level',
      'info',
    ],
    env,
    {
      timeoutMs: 180_000,
      stderr: 'collect',
      onLog: (text) => serveLog.write(text.endsWith('\n') ? text : `${text}\n`),
      onSpawn: (child) => {
        lab.serveChild = child;
      },
    },
  );
  const serve = lab.serve;
  out(
    `${at()} service up (embedded PGlite): operator API ${serve.api}, device ${serve.device}, images ${serve.images}; pid ${serve.child.pid}; log ${join(lab.root, 'serve.log')}`,
  );

  const tls = await selfSignedCert(['127.0.0.1']);
  for (const [i, dpu] of dpus.entries()) {
    if (lab.stopping) return 130;
    const emu = await startBmcEmulator({
      host: '127.0.0.1',
      port: p === undefined ? 0 : p + 3 + i,
      persona: dpu.persona,
      serial: dpu.serial,
      username: 'admin',
      password: 'demo-password',
      tls,
      // Short but visible: power transitions, the BlueField image write and its OS boot take a moment.
      powerTransitionMs: 300,
      taskDurationMs: 600,
      osBootMs: 800,
      recordRequests: false,
      onBoot: async (e) => {
        if ('error' in e.fetch) {
          dpu.bootError = `the BMC could not fetch ${e.imageUrl}: ${e.fetch.error}`;
          return;
        }
        dpu.agent = await runAgent(lab, dpu, serve.device, env);
      },
    });
    lab.emulators.push(emu);
    dpu.emu = emu;
    if (dpu.fault) EMULATOR_FAULTS[dpu.fault].apply(emu.faults);
  }
  const counts = new Map<string, number>();
  for (const d of dpus) counts.set(d.persona, (counts.get(d.persona) ?? 0) + 1);
  out(
    `${at()} ${o.dpus} emulated DPU BMCs over TLS: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}; booting runs ${AGENT_BUNDLE}` +
      dpus
        .filter((d) => d.fault)
        .map((d) => `; ${d.serial} (${d.persona}) set to fail: ${d.fault}`)
        .join(''),
  );

  const token = readFileSync(join(lab.root, 'data', 'admin-token'), 'utf8').trim();
  const api = await apiClient({ api: serve.api, token });
  await registerLab(api, dpus, tls.cert);
  out(
    `${at()} registered through ${serve.api}/api/v1: images ${INSTALLER} and ${OS_IMAGE}, profile ${PROFILE}, ${o.dpus} BMCs and devices (one devices:import)`,
  );

  if (lab.stopping) return 130;
  const key = randomUUID();
  const created: JobJson = await patient(() =>
    api.http.POST('/api/v1/jobs', {
      body: {
        kind: 'provision',
        devices: serials,
        timeouts: { awaitDevice: o.timeoutS, awaitComplete: o.timeoutS },
      },
      params: { header: { 'Idempotency-Key': key } },
    }),
  );
  out(`${at()} job ${created.id}: provisioning ${o.dpus} DPU(s) from power-off to bootstrap-complete`);
  const tJob = performance.now();
  const view = new JobProgress(process.stdout, { label: (s) => personaOf.get(s) ?? '' });
  let job = created;
  for (;;) {
    if (lab.stopping) return 130;
    job = await patient(() => api.http.GET('/api/v1/jobs/{id}', { params: { path: { id: created.id } } }));
    view.render(job);
    if (FINISHED_JOB_STATES.has(job.state)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  view.end(job);
  const wallS = (performance.now() - tJob) / 1000;
  const full: JobJson = await patient(() =>
    api.http.GET('/api/v1/jobs/{id}', { params: { path: { id: created.id }, query: { steps: true } } }),
  );
  const results = demoResults(full, (s) => personaOf.get(s) ?? '');
  for (const line of summaryLines(results, wallS)) out(line);
  for (const d of dpus)
    if (d.bootError || (d.agent !== undefined && d.agent !== 0))
      out(
        `  ${d.serial}: ${d.bootError ?? `the agent exited ${d.agent}`}; its log: ${join(lab.root, 'devices', d.serial, 'agent.log')}`,
      );
  out('');
  out(`dashboard: ${serve.api}/  (sign in with the API token in ${join(lab.root, 'data', 'admin-token')})`);
  out(
    `API: ${serve.api}/api/v1 (OpenAPI browser at ${serve.api}/docs); job: ${serve.api}/api/v1/jobs/${created.id}`,
  );
  return results.every((r) => r.complete) ? 0 : 1;
}

/** This process's group id (children share it: `kill -- -PGID` reaches everything the demo started). */
function processGroup(): string {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2] ?? '?';
  } catch {
    return '?';
  }
}

/**
 * The operator API with patience: a loaded machine makes the service answer 503 (its event-loop
 * guard) or 429 for a moment. Every call the demo makes is safe to repeat (PUTs, GETs, an import of
 * the same rows, POST /jobs under one Idempotency-Key), so it is repeated for up to a minute.
 * `request` is a function so that each try sends afresh (through the typed client, web/api).
 */
async function patient<T>(request: () => Promise<{ data?: T; error?: unknown; response: Response }>) {
  const end = Date.now() + 60_000;
  for (;;) {
    try {
      return await call(request());
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== 'API_ERR_UNAVAILABLE' && code !== 'API_ERR_RATE_LIMITED') || Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Images, the profile, then every BMC and device in one `devices:import` (NDJSON). */
async function registerLab(api: ApiClient, dpus: Dpu[], bmcCa: string): Promise<void> {
  const put = (name: string, bytes: Buffer, os?: { name: string; version: string }) =>
    patient(() =>
      api.http.PUT('/api/v1/images/{name}', {
        params: { path: { name }, query: os ? { osName: os.name, osVersion: os.version } : {} },
        // Raw bytes (the document types a binary body as a string).
        body: bytes as unknown as string,
        bodySerializer: (b: unknown) => b,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
      } as never),
    );
  // Random bytes: the BMCs fetch the installer (HEAD, a Range read, the whole file), the agents
  // download the OS image over mTLS and check its SHA-256.
  await put(INSTALLER, randomBytes(1024 * 1024));
  await put(OS_IMAGE, randomBytes(512 * 1024), { name: 'demo-os', version: '2.0' });
  await patient(() =>
    api.http.PUT('/api/v1/profiles/{name}', {
      params: { path: { name: PROFILE } },
      body: {
        type: 'onboarding',
        bootImage: { osName: 'demo-os', osVersion: '2.0', image: OS_IMAGE },
        configurationHandling: 'merge',
        configuration: 'hostname dpu-ztp-demo\n',
        installerImage: INSTALLER,
      },
    } as never),
  );
  const rows = dpus.map((d) =>
    JSON.stringify({
      serial: d.serial,
      profile: PROFILE,
      labels: { demo: 'true', persona: d.persona },
      bmc: `bmc-${d.serial.toLowerCase()}`,
      bmcAddress: d.emu?.url,
      bmcUsername: 'admin',
      bmcPassword: 'demo-password',
      bmcCaCertificate: bmcCa,
    }),
  );
  const json = await patient(() =>
    api.http.POST('/api/v1/devices:import', {
      body: `${rows.join('\n')}\n`,
      bodySerializer: (b: string) => b,
      headers: { 'content-type': 'application/x-ndjson' },
    }),
  );
  const refused = json.rows.find((r) => r.error);
  if (refused)
    throw new CliError(
      'CLI_ERR_DEMO',
      `registering ${refused.serial} was refused: ${refused.error?.code}: ${refused.error?.message}`,
    );
}

/** Registers `dpu-ztp demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'a whole lab in one command: lab PKI, the service, N emulated DPU BMCs booting the real agent, one provisioning job with live progress',
    )
    .option('--dpus <N>', `emulated DPUs (1-${MAX_DEMO_DPUS})`, '5')
    .option(
      '--personas <LIST>',
      `mixed (${MIXED_PERSONAS.join(', ')} in turn) or a comma list of ${Object.keys(EMULATOR_PERSONAS).join(', ')}`,
      'mixed',
    )
    .option('--keep', 'leave the service and BMCs running after the job (for the dashboard) until Ctrl-C')
    .option(
      '--port-base <P>',
      'fixed ports: API P, device P+1, images P+2, BMCs from P+3 (default: free ports)',
    )
    .option('--data-dir <DIR>', 'keep the lab (PKI, database, logs) here instead of a temporary directory')
    .option(
      '--fail-dpu <N[:FAULT]>',
      `make DPU N's BMC fail (repeatable); FAULT: ${Object.keys(EMULATOR_FAULTS).join(', ')} (default reset-refused)`,
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--agents <N>', 'agent runs at once (booted DPUs beyond it wait their turn)', '8')
    .option(
      '--timeout <SECONDS>',
      'per DPU: reset to first sZTP contact, and from there to bootstrap-complete',
      '600',
    )
    .action(
      action(async (f: DemoFlags) => {
        const o = demoOptions(f);
        if (!existsSync(AGENT_BUNDLE))
          throw new CliError(
            'CLI_ERR_DEMO',
            `the agent bundle ${AGENT_BUNDLE} is missing: run \`npm run build:agent\` (npm install builds it)`,
          );
        const root = o.dataDir ?? mkdtempSync(join(tmpdir(), 'dpu-ztp-demo-'));
        mkdirSync(root, { recursive: true });
        const lab = new Lab(root, o.dataDir === undefined, o.agents);
        const out = (line: string) => process.stdout.write(`${line}\n`);
        let outcome: number | undefined;
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals++;
          if (signals > 1) {
            lab.killNow();
            process.exit(130);
          }
          process.stderr.write(`\n${signal}: stopping the agents, the BMCs and the service…\n`);
          void lab.stop().finally(() => {
            process.stderr.write(`stopped${lab.temporary ? `; removed ${root}` : ''}\n`);
            // With --keep, Ctrl-C is how the demo ends: its exit code is still the job's outcome.
            process.exit(outcome ?? (signal === 'SIGINT' ? 130 : 143));
          });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          outcome = await demo(o, lab, out);
        } catch (err) {
          if (lab.stopping) return; // the signal handler ends the process
          await lab.stop();
          throw err;
        }
        if (lab.stopping) return;
        if (o.keep) {
          out(
            `--keep: the service and ${o.dpus} BMCs keep running${lab.temporary ? '' : ` (lab in ${root})`}; Ctrl-C stops everything`,
          );
          return; // the signal handler ends the process
        }
        await lab.stop();
        process.exit(outcome);
      }),
    );
}
