/**
 * `dpu-ztp bmc check|provision|emulate` (issue 7): the technician's first look
 * at a new DPU's BMC, a one-shot provisioning run, and the emulated DPU BMC for
 * development and demos. This file is the composition root for redfish/: it
 * reads flags/env, files and ports, spawns the boot hook, and handles signals.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  type BmcCheckReport,
  type BootEvent,
  checkBmc,
  DEFAULT_WAITS,
  EMULATOR_FAULTS,
  EMULATOR_PERSONAS,
  type EmulatorFaultName,
  type EmulatorPersonaId,
  type AuthMode,
  KEPT_CONTINUOUS,
  type PollOptions,
  provisionBmc,
  RedfishClient,
  type RedfishClientOptions,
  RedfishError,
  type RedfishMessage,
  STRATEGY_ORDER,
  type StepEvent,
  type StrategyName,
  startBmcEmulator,
  VENDOR_PROFILES,
} from '../../redfish/index.js';
import { createCertificate, generateKey, signerFromPrivateKey, toPem } from '../../pki/index.js';
import type { Telemetry } from '../../otel/sdk.js';
import { action, CliError } from '../exit.js';
import { readPackageVersion } from '../version.js';

interface ConnectFlags {
  bmc: string;
  username: string;
  password?: string;
  ca?: string;
  insecure?: boolean;
  system?: string;
  profile?: string;
  requestTimeout?: string;
  auth?: string;
}

const AUTH_MODES: readonly AuthMode[] = ['auto', 'session', 'basic'];

function authMode(v: string | undefined): AuthMode {
  const mode = (v ?? 'auto') as AuthMode;
  if (!AUTH_MODES.includes(mode))
    throw new CliError('CLI_ERR_USAGE', '--auth must be basic, session or auto');
  return mode;
}

function clientOptions(o: ConnectFlags): RedfishClientOptions {
  if (o.ca && o.insecure) throw new CliError('CLI_ERR_USAGE', '--ca and --insecure are mutually exclusive');
  // The password may come from the environment so that it stays out of `ps`.
  const password = o.password ?? process.env.DPU_ZTP_BMC_PASSWORD;
  if (password === undefined)
    throw new CliError('CLI_ERR_USAGE', '--password (or DPU_ZTP_BMC_PASSWORD) is required');
  let ca: string | undefined;
  if (o.ca) {
    try {
      ca = readFileSync(o.ca, 'utf8');
    } catch (err) {
      throw new CliError('CLI_ERR_FILE', `cannot read --ca ${o.ca}: ${(err as Error).message}`);
    }
  }
  const requestMs = o.requestTimeout ? Number(o.requestTimeout) * 1000 : undefined;
  if (requestMs !== undefined && !(requestMs > 0))
    throw new CliError('CLI_ERR_USAGE', '--request-timeout must be > 0 seconds');
  return {
    url: o.bmc,
    username: o.username,
    password,
    auth: authMode(o.auth),
    tls: { ...(ca ? { ca } : {}), ...(o.insecure ? { insecure: true } : {}) },
    ...(requestMs ? { timeouts: { requestMs } } : {}),
  };
}

const connectOptions = (cmd: Command) =>
  cmd
    .requiredOption('--bmc <url>', 'BMC base URL, e.g. https://10.0.0.5')
    .requiredOption('--username <user>', 'BMC user')
    .option('--password <password>', 'BMC password (or env DPU_ZTP_BMC_PASSWORD)')
    .option('--ca <file>', 'PEM CA bundle that signed the BMC certificate')
    .option('--insecure', 'do not verify the BMC TLS certificate (explicit opt-in)')
    .option('--system <id>', 'ComputerSystem Id to use (default: the SystemType DPU one, else the first)')
    .option('--profile <id>', `vendor profile override (${VENDOR_PROFILES.map((p) => p.id).join(', ')})`)
    .option('--request-timeout <seconds>', 'per-request timeout')
    .option(
      '--auth <mode>',
      'session (X-Auth-Token), basic, or auto: session, falling back to Basic as python-sushy does',
      'auto',
    );

/**
 * The `--json` failure object (stdout, exit non-zero): the stable code, the message, the provisioning
 * step it failed in (when there was one), and the BMC's own `@Message.ExtendedInfo` messages.
 */
export interface BmcJsonError {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly step?: string;
    readonly status?: number;
    readonly messages: readonly RedfishMessage[];
  };
}

/** Builds the {@link BmcJsonError} of a failure. */
export function jsonError(err: unknown, step?: string): BmcJsonError {
  const e = err as { code?: unknown; message?: unknown };
  return {
    error: {
      code: typeof e?.code === 'string' ? e.code : 'ERR_UNEXPECTED',
      message: typeof e?.message === 'string' ? e.message : String(err),
      ...(step ? { step } : {}),
      ...(err instanceof RedfishError && err.status !== undefined ? { status: err.status } : {}),
      messages: err instanceof RedfishError ? err.messages : [],
    },
  };
}

/**
 * With `--json`, a failure is printed as {@link BmcJsonError} on stdout before the usual one-line error
 * on stderr, so scripts parse stdout whatever happens.
 */
async function jsonOnFailure(
  json: () => boolean | undefined,
  step: () => string | undefined,
  fn: () => Promise<void>,
) {
  try {
    await fn();
  } catch (err) {
    if (json()) process.stdout.write(`${JSON.stringify(jsonError(err, step()))}\n`);
    throw err;
  }
}

/** Human-readable check report. */
export function formatCheckReport(r: BmcCheckReport): string {
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`${k.padEnd(14)} ${v}`);
  row('BMC', `${r.bmc} (Redfish ${r.redfishVersion || '?'}, auth ${r.authMode ?? '?'})`);
  row(
    'Vendor',
    `${r.manufacturer || '?'} ${r.model || ''}${r.firmwareVersion ? ` firmware ${r.firmwareVersion}` : ''}${r.product ? ` [${r.product}]` : ''}`,
  );
  row('Profile', `${r.profile.id} (${r.profile.name})${r.profile.overridden ? ' [override]' : ''}`);
  for (const n of r.profile.notes) row('', `note: ${n}`);
  row(
    'Systems',
    r.systems
      .map(
        (s) =>
          `${s.id}${s.systemType ? `[${s.systemType}]` : ''}${s.serial ? ` SN ${s.serial}` : ''}${s.chosen ? ' *' : ''}`,
      )
      .join(', '),
  );
  row('Power', `${r.system.powerState}; reset types: ${r.system.resetTypes.join(', ') || 'unknown'}`);
  row(
    'Boot',
    `targets: ${r.system.bootTargets.join(', ') || 'unknown'}; CD target ${r.system.cdBootTarget}; modes: ${r.system.bootModes.join(', ') || 'not reported'}; HTTP boot: ${r.system.httpBoot ? 'yes' : 'no'}${r.system.settingsObject ? `; settings ${r.system.settingsObject}` : ''}`,
  );
  if (r.virtualMedia.length === 0) row('Virtual media', 'none');
  for (const m of r.virtualMedia)
    row(
      'Virtual media',
      `${m.id} (${m.under} ${m.path}; ${m.mediaTypes.join('/') || '?'}; insert: ${m.insert}${m.transferProtocols.length ? `; ${m.transferProtocols.join('/')}` : ''}) ${m.inserted ? `holds ${m.image}` : 'empty'}`,
    );
  row(
    'SimpleUpdate',
    r.simpleUpdate
      ? `${r.simpleUpdate.target}; protocols ${r.simpleUpdate.protocols.join('/') || 'unspecified'}; OS targets: ${r.simpleUpdate.osTargets.join(', ') || 'none'}`
      : 'none',
  );
  lines.push('Strategies');
  for (const s of r.strategies)
    lines.push(
      `  ${s.usable ? 'ok  ' : 'no  '} ${s.strategy.padEnd(14)} ${s.reasons.join('; ')}${s.strategy === r.recommended ? '  (recommended)' : ''}`,
    );
  return `${lines.join('\n')}\n`;
}

function printStep(e: StepEvent): void {
  if (e.status === 'start') process.stdout.write(`[${e.strategy}] ${e.step} ...\n`);
  else if (e.status === 'done')
    process.stdout.write(`[${e.strategy}] ${e.step} done${e.detail ? `: ${e.detail}` : ''}\n`);
  else if (e.status === 'fallback')
    process.stdout.write(
      `[${e.strategy}] gave up at ${e.step} (${e.detail ?? 'failed'}); trying ${e.next} next\n`,
    );
  else process.stdout.write(`[${e.strategy}] ${e.step} FAILED\n`);
}

/**
 * Self-signed certificate for `bmc emulate --tls` (and the demo's BMCs), made with pki/ (the
 * emulator itself takes PEMs); valid for localhost and `ipAddresses`.
 */
export async function selfSignedCert(
  ipAddresses: readonly string[] = ['127.0.0.1', '::1'],
): Promise<{ key: string; cert: string }> {
  const k = await generateKey('ec-p256');
  const now = Date.now();
  const der = await createCertificate({
    profile: 'tls-server',
    subject: { commonName: 'dpu-ztp emulated BMC' },
    publicKey: k.publicKey,
    issuer: signerFromPrivateKey(k.privateKeyPem), // no certificate: self-signed
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + 30 * 86_400_000),
    dnsNames: ['localhost'],
    ipAddresses: [...ipAddresses],
  });
  return { key: k.privateKeyPem, cert: toPem(der, 'CERTIFICATE') };
}

/** Runs `--boot-hook` with the booted image in its environment. */
function bootHook(cmd: string): (e: BootEvent) => Promise<void> {
  return (e) =>
    new Promise<void>((resolve) => {
      const child = spawn('sh', ['-c', cmd], {
        stdio: 'inherit',
        env: {
          ...process.env,
          BMC_BOOTED_IMAGE_URL: e.imageUrl,
          BMC_SYSTEM_SERIAL: e.serial,
          BMC_SYSTEM_ID: e.systemId,
          BMC_BOOT_VIA: e.via,
          BMC_IMAGE_FETCH: 'error' in e.fetch ? `error: ${e.fetch.error}` : `ok ${e.fetch.bytes} bytes`,
        },
      });
      child.on('error', (err) => {
        process.stderr.write(`boot hook failed to start: ${err.message}\n`);
        resolve();
      });
      child.on('exit', (code) => {
        if (code !== 0) process.stderr.write(`boot hook exited with ${code}\n`);
        resolve();
      });
    });
}

/** Registers `dpu-ztp bmc …`. */
export function registerBmcCommands(program: Command): void {
  const bmc = program
    .command('bmc')
    .description('Redfish BMC tools: check what a BMC offers, provision through it, emulate one');
  // The SDK for every `bmc …` command (OTEL_* settings; nothing without an endpoint): Redfish request
  // and provisioning spans are exported, and flushed (at most 2 s) when the command ends.
  let telemetry: Telemetry | undefined;
  bmc.hook('preAction', async () => {
    // Loaded when a `bmc` command runs, not with the module: `dpu-ztp bmcs` reuses this file's report format.
    const { startTelemetry } = await import('../../otel/sdk.js');
    telemetry ??= startTelemetry({
      env: process.env,
      defaultServiceName: 'dpu-ztp',
      serviceVersion: readPackageVersion(),
    });
  });
  bmc.hook('postAction', async () => {
    await telemetry?.shutdown();
  });

  connectOptions(
    bmc
      .command('check')
      .description('probe a BMC: what it offers and which provisioning strategies will work'),
  )
    .option('--image <url>', 'also judge strategies for this image URL')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (o: ConnectFlags & { json?: boolean; image?: string }) => {
        let stage = 'connect';
        // Once the report is on stdout it is the JSON document (its `recommended` is null when no
        // strategy works); an error object is printed only when there is no report.
        let printed = false;
        await jsonOnFailure(
          () => o.json && !printed,
          () => stage,
          async () => {
            const client = new RedfishClient(clientOptions(o));
            try {
              stage = 'probe';
              const report = await checkBmc(client, {
                ...(o.system ? { systemId: o.system } : {}),
                ...(o.profile ? { profileId: o.profile } : {}),
                ...(o.image ? { imageUrl: o.image } : {}),
              });
              stage = 'assess';
              process.stdout.write(
                o.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheckReport(report),
              );
              printed = true;
              if (!report.recommended)
                throw new RedfishError(
                  'REDFISH_ERR_NO_STRATEGY',
                  'no provisioning strategy will work on this BMC',
                );
            } finally {
              await client.close();
            }
          },
        );
      }),
    );

  connectOptions(
    bmc
      .command('provision')
      .description('provision through a BMC: boot the system into an image, printing each step'),
  )
    .requiredOption(
      '--image <url>',
      'image URL the BMC fetches (ISO for virtual media, BFB/OS image for push, EFI for HTTP boot)',
    )
    .option('--strategy <name>', `auto|${STRATEGY_ORDER.join('|')}`, 'auto')
    .option(
      '--timeout <seconds>',
      'bound on the whole run (probe, every step, wait and request); REDFISH_ERR_DEADLINE when it passes',
      '1800',
    )
    .option('--image-username <user>', 'user for the image server, if it needs one')
    .option('--image-password <password>', 'password for the image server')
    .option('--json', 'print steps as JSON lines and the result (or the error object) as JSON')
    .action(
      action(
        async (
          o: ConnectFlags & {
            image: string;
            strategy: string;
            timeout: string;
            imageUsername?: string;
            imagePassword?: string;
            json?: boolean;
          },
        ) => {
          let step: string | undefined;
          await jsonOnFailure(
            () => o.json,
            () => step,
            async () => {
              if (o.strategy !== 'auto' && !STRATEGY_ORDER.includes(o.strategy as StrategyName))
                throw new CliError(
                  'CLI_ERR_USAGE',
                  `--strategy must be auto or one of ${STRATEGY_ORDER.join(', ')}`,
                );
              const timeoutMs = Number(o.timeout) * 1000;
              if (!(timeoutMs > 0)) throw new CliError('CLI_ERR_USAGE', '--timeout must be > 0 seconds');
              const client = new RedfishClient(clientOptions(o));
              let keptContinuous = false;
              try {
                step = 'probe';
                // Each wait keeps its default bound; --timeout bounds the whole run. Polls start at 0.5 s.
                const polled = (w: PollOptions) => ({ ...w, intervalMs: 500 });
                const res = await provisionBmc(client, {
                  image: {
                    url: o.image,
                    ...(o.imageUsername !== undefined
                      ? { username: o.imageUsername, password: o.imagePassword ?? '' }
                      : {}),
                  },
                  strategy: o.strategy as StrategyName | 'auto',
                  ...(o.system ? { systemId: o.system } : {}),
                  ...(o.profile ? { profileId: o.profile } : {}),
                  waits: {
                    power: polled(DEFAULT_WAITS.power),
                    media: polled(DEFAULT_WAITS.media),
                    task: polled(DEFAULT_WAITS.task),
                    os: polled(DEFAULT_WAITS.os),
                  },
                  timeoutMs,
                  onStep: (e) => {
                    if (e.status === 'start') step = `${e.strategy}/${e.step}`;
                    if (e.detail?.includes(KEPT_CONTINUOUS)) keptContinuous = true;
                    if (o.json)
                      process.stdout.write(
                        `${JSON.stringify({ strategy: e.strategy, step: e.step, status: e.status, ...(e.detail ? { detail: e.detail } : {}), ...(e.next ? { next: e.next } : {}) })}\n`,
                      );
                    else printStep(e);
                  },
                });
                step = undefined;
                if (o.json)
                  process.stdout.write(
                    `${JSON.stringify({ result: { strategy: res.strategy, systemId: res.systemId, serial: res.serial, profile: res.profile, image: o.image, bootOverrideKeptContinuous: keptContinuous } })}\n`,
                  );
                else {
                  process.stdout.write(
                    `provisioned: system ${res.systemId}${res.serial ? ` (SN ${res.serial})` : ''} reset into ${o.image} via ${res.strategy} [profile ${res.profile}]\n`,
                  );
                  if (keptContinuous)
                    process.stdout.write(
                      'note: the BMC keeps the boot override Continuous; clear it after the install (finishProvisioning, or PATCH Boot.BootSourceOverrideEnabled Disabled)\n',
                    );
                }
              } finally {
                await client.close();
              }
            },
          );
        },
      ),
    );

  bmc
    .command('emulate')
    .description(
      'run an emulated DPU BMC (sessions, virtual media, boot override, reset, SimpleUpdate, tasks)',
    )
    .option('--port <port>', 'listen port (0 = any free port)', '8000')
    .option('--host <addr>', 'listen address', '127.0.0.1')
    .option('--profile <id>', `emulated BMC (${Object.keys(EMULATOR_PERSONAS).join('|')})`, 'generic')
    .option(
      '--mockup <dir>',
      'serve a DMTF mockup tree instead (e.g. ../shared/redfish-mockups/public-smartnic)',
    )
    .option('--serial <sn>', 'serial number of the DPU system')
    .option('--boot-hook <cmd>', 'run on each boot with BMC_BOOTED_IMAGE_URL and BMC_SYSTEM_SERIAL set')
    .option('--tls', 'serve HTTPS with a self-signed certificate (or --tls-cert/--tls-key)')
    .option('--tls-cert <file>', 'PEM certificate for --tls')
    .option('--tls-key <file>', 'PEM key for --tls')
    .option('--username <user>', 'account user', 'admin')
    .option('--password <password>', 'account password', 'password')
    .option('--password-change-required', 'answer 403 PasswordChangeRequired until the password is changed')
    .option('--transition-ms <ms>', 'duration of each power transition', '1500')
    .option('--task-ms <ms>', 'duration of a SimpleUpdate task after the image fetch', '1000')
    .option(
      '--os-boot-ms <ms>',
      'time from power On to the OS running, as BootProgress reports it (bluefield)',
      '3000',
    )
    .option('--image-insecure', 'fetch https images without verifying the image server certificate')
    .option(
      '--auth <mode>',
      'session (sessions and Basic) or basic (no Links.Sessions, Basic only, like sushy-tools with an auth file)',
      'session',
    )
    .option(
      '--fault <name>',
      `make provisioning fail: ${Object.entries(EMULATOR_FAULTS)
        .map(([k, v]) => `${k} (${v.description})`)
        .join('; ')}`,
    )
    .action(
      action(
        async (o: {
          port: string;
          host: string;
          profile: string;
          mockup?: string;
          serial?: string;
          bootHook?: string;
          tls?: boolean;
          tlsCert?: string;
          tlsKey?: string;
          username: string;
          password: string;
          passwordChangeRequired?: boolean;
          transitionMs: string;
          taskMs: string;
          osBootMs: string;
          imageInsecure?: boolean;
          auth: string;
          fault?: string;
        }) => {
          if (o.fault !== undefined && !(o.fault in EMULATOR_FAULTS))
            throw new CliError(
              'CLI_ERR_USAGE',
              `--fault must be one of ${Object.keys(EMULATOR_FAULTS).join(', ')}`,
            );
          if (o.auth !== 'session' && o.auth !== 'basic')
            throw new CliError('CLI_ERR_USAGE', '--auth must be session or basic');
          const port = Number(o.port);
          if (!Number.isInteger(port) || port < 0 || port > 65535)
            throw new CliError('CLI_ERR_USAGE', '--port must be 0..65535');
          if (!o.mockup && !(o.profile in EMULATOR_PERSONAS))
            throw new CliError(
              'CLI_ERR_USAGE',
              `--profile must be one of ${Object.keys(EMULATOR_PERSONAS).join(', ')}`,
            );
          let tls: { key: string; cert: string } | undefined;
          if (o.tlsCert || o.tlsKey) {
            if (!o.tlsCert || !o.tlsKey)
              throw new CliError('CLI_ERR_USAGE', '--tls-cert and --tls-key go together');
            tls = { cert: readFileSync(o.tlsCert, 'utf8'), key: readFileSync(o.tlsKey, 'utf8') };
          } else if (o.tls) tls = await selfSignedCert();
          const emu = await startBmcEmulator({
            host: o.host,
            port,
            ...(o.mockup ? { mockupDir: o.mockup } : { persona: o.profile as EmulatorPersonaId }),
            ...(o.serial ? { serial: o.serial } : {}),
            ...(tls ? { tls } : {}),
            username: o.username,
            password: o.password,
            passwordChangeRequired: o.passwordChangeRequired === true,
            powerTransitionMs: Number(o.transitionMs),
            taskDurationMs: Number(o.taskMs),
            osBootMs: Number(o.osBootMs),
            imageFetch: { insecure: o.imageInsecure === true },
            recordRequests: false,
            auth: o.auth,
            onBoot: async (e) => {
              const fetched =
                'error' in e.fetch ? `fetch failed: ${e.fetch.error}` : `fetched ${e.fetch.bytes} bytes`;
              process.stdout.write(
                `boot: system ${e.systemId} (SN ${e.serial}) via ${e.via} from ${e.imageUrl}; ${fetched}\n`,
              );
              if (o.bootHook) await bootHook(o.bootHook)(e);
            },
          });
          if (o.fault) EMULATOR_FAULTS[o.fault as EmulatorFaultName].apply(emu.faults);
          process.stdout.write(
            `bmc emulator (${o.mockup ? `mockup ${o.mockup}` : o.profile}) listening on ${emu.url} (user ${o.username})${o.fault ? ` with fault ${o.fault}` : ''}\n`,
          );
          await new Promise<void>((resolve) => {
            const stop = () => resolve();
            process.once('SIGINT', stop);
            process.once('SIGTERM', stop);
          });
          await emu.close();
        },
      ),
    );
}
