/**
 * `sztp-client run`: the device agent (RFC 8572 §5). Parses flags into an
 * `AgentConfig` and runs the procedure; exits 0 only after bootstrap-complete
 * (or at once when SZTP is disabled), 10 when the install hook asked for a
 * reboot, 1 when it gave up. Imports `sztp-client/` and the verifying `pki/`
 * modules only, so the agent bundle stays free of the certificate-issuing side.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { parseCertificate, decodeCertificates, decodeArtifacts } from '../../pki/verify.js';
import {
  type AgentConfig,
  createLog,
  type LogFormat,
  isTraceparent,
  readOsRelease,
  runAgent,
} from '../../sztp-client/index.js';
import { startAgentTelemetry } from '../../otel/agent-sdk.js';
import { CliError, action } from '../exit.js';
import { readPackageVersion } from '../version.js';

/** Exit status of `run` when the boot image was installed and the device reboots. */
export const EXIT_REBOOTING = 10;

interface RunOptions {
  traceparent?: string;
  bootstrapUrl: string[];
  dhcpLeaseFile?: string[];
  dhcp: boolean;
  dnsDomain: string[];
  bootstrapDir: string[];
  serialNumber?: string;
  idevidCert?: string;
  idevidKey?: string;
  basicPassword?: string;
  basicPasswordFile?: string;
  trustAnchor: string[];
  manufacturerTrustAnchor: string[];
  hwModel?: string;
  osName?: string;
  osVersion?: string;
  installHook?: string;
  configPath?: string;
  configHook?: string;
  scriptTimeout: string;
  sshHostKeysDir: string;
  reportTrustAnchor?: string;
  stateDir: string;
  once?: boolean;
  maxAttempts?: string;
  backoff: string;
  timeout: string;
  sourceDeadline: string;
  maxImageSize: string;
  minDownloadRate: string;
  maxRedirectEntries: string;
  maxRedirectHops: string;
  voucherSignerEku?: string;
  nonce: boolean;
  logFormat: LogFormat;
  now?: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

async function read(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new CliError('SZTP_CLIENT_ERR_BAD_CONFIG', `${flag} ${path}: ${(err as Error).message}`);
  }
}

/** Certificates from a PEM bundle, a DER certificate, or a degenerate SignedData. */
async function certificates(path: string, flag: string): Promise<Uint8Array[]> {
  const bytes = await read(path, flag);
  try {
    return decodeCertificates(new Uint8Array(bytes));
  } catch (err) {
    throw new CliError('SZTP_CLIENT_ERR_BAD_CONFIG', `${flag} ${path}: ${(err as Error).message}`);
  }
}

/** A byte size like `64G`, `512M`, `1048576` (binary units). */
function byteSize(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B?)?$/i.exec(v.trim());
  if (!m) throw new CliError('CLI_ERR_USAGE', `${flag} '${v}' is not a size like 64G, 512M or a byte count`);
  const unit = (m[2] ?? '').charAt(0).toUpperCase();
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit] ?? 1;
  const n = Math.floor(Number(m[1]) * mult);
  if (n <= 0) throw new CliError('CLI_ERR_USAGE', `${flag} must be positive`);
  return n;
}

function seconds(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new CliError('CLI_ERR_USAGE', `${flag} '${v}' is not a number of seconds`);
  return Math.round(n * 1000);
}

/** Builds the agent configuration from the flags (and the files they name). */
export async function agentConfigFromFlags(o: RunOptions): Promise<Omit<AgentConfig, 'log'>> {
  let identity: AgentConfig['identity'];
  let idevidSerial: string | undefined;
  if ((o.idevidCert === undefined) !== (o.idevidKey === undefined))
    throw new CliError('CLI_ERR_USAGE', '--idevid-cert and --idevid-key go together');
  if (o.idevidCert && o.idevidKey) {
    const certPem = (await read(o.idevidCert, '--idevid-cert')).toString('utf8');
    const keyPem = (await read(o.idevidKey, '--idevid-key')).toString('utf8');
    try {
      const leaf = parseCertificate(decodeArtifacts(certPem)[0] as Uint8Array);
      idevidSerial = leaf.subjectSerialNumber;
    } catch (err) {
      throw new CliError(
        'SZTP_CLIENT_ERR_BAD_CONFIG',
        `--idevid-cert ${o.idevidCert}: ${(err as Error).message}`,
      );
    }
    identity = { certPem, keyPem };
  }
  const serialNumber = o.serialNumber ?? idevidSerial;
  if (!serialNumber)
    throw new CliError(
      'CLI_ERR_USAGE',
      '--serial-number is required (or an --idevid-cert whose subject carries a serialNumber)',
    );
  if (o.serialNumber && idevidSerial && o.serialNumber !== idevidSerial)
    throw new CliError(
      'SZTP_CLIENT_ERR_BAD_CONFIG',
      `--serial-number ${o.serialNumber} differs from the IDevID's serialNumber ${idevidSerial} (RFC 8572 §5.3: same serial)`,
    );
  let basicPassword = o.basicPassword;
  if (o.basicPasswordFile)
    basicPassword = (await read(o.basicPasswordFile, '--basic-password-file'))
      .toString('utf8')
      .replace(/\r?\n$/, '');
  const trustAnchors = (
    await Promise.all(o.trustAnchor.map((f) => certificates(f, '--trust-anchor')))
  ).flat();
  const manufacturerTrustAnchors = (
    await Promise.all(o.manufacturerTrustAnchor.map((f) => certificates(f, '--manufacturer-trust-anchor')))
  ).flat();
  const osr = await readOsRelease();
  const running = {
    ...((o.osName ?? osr.name) ? { name: o.osName ?? osr.name } : {}),
    ...((o.osVersion ?? osr.version) ? { version: o.osVersion ?? osr.version } : {}),
  };
  const [minS, maxS] = o.backoff.split(':');
  const initialMs = seconds(minS ?? '5', '--backoff');
  const maxMs = maxS !== undefined ? seconds(maxS, '--backoff') : Math.max(initialMs, 300_000);
  let now = () => new Date();
  if (o.now !== undefined) {
    const fixed = new Date(o.now);
    if (Number.isNaN(fixed.getTime()))
      throw new CliError('CLI_ERR_USAGE', `--now '${o.now}' is not a date-time`);
    const offset = fixed.getTime() - Date.now();
    now = () => new Date(Date.now() + offset);
  }
  const count = (v: string, flag: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new CliError('CLI_ERR_USAGE', `${flag} must be a positive integer`);
    return n;
  };
  if (o.voucherSignerEku !== undefined && !/^[0-2](\.(0|[1-9]\d*))+$/.test(o.voucherSignerEku))
    throw new CliError('CLI_ERR_USAGE', `--voucher-signer-eku '${o.voucherSignerEku}' is not a dotted OID`);
  let maxAttempts: number | undefined;
  if (o.maxAttempts !== undefined) {
    maxAttempts = Number(o.maxAttempts);
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
      throw new CliError('CLI_ERR_USAGE', '--max-attempts must be a positive integer');
  }
  return {
    bootstrapUrls: o.bootstrapUrl,
    ...(o.dhcp === false ? { leaseFiles: [] } : o.dhcpLeaseFile ? { leaseFiles: o.dhcpLeaseFile } : {}),
    dnsDomains: o.dnsDomain,
    bootstrapDirs: o.bootstrapDir.map((d) => resolve(d)),
    serialNumber,
    ...(identity ? { identity } : {}),
    ...(basicPassword !== undefined ? { basicPassword } : {}),
    trustAnchors,
    manufacturerTrustAnchors,
    ...(o.hwModel ? { hwModel: o.hwModel } : {}),
    running,
    ...(o.installHook ? { installHook: o.installHook } : {}),
    ...(o.configPath ? { configPath: resolve(o.configPath) } : {}),
    ...(o.configHook ? { configHook: o.configHook } : {}),
    scriptTimeoutMs: seconds(o.scriptTimeout, '--script-timeout'),
    sshHostKeysDir: resolve(o.sshHostKeysDir),
    ...(o.reportTrustAnchor
      ? { reportTrustAnchors: await certificates(o.reportTrustAnchor, '--report-trust-anchor') }
      : {}),
    stateDir: resolve(o.stateDir),
    once: o.once === true,
    ...(maxAttempts !== undefined ? { maxAttempts } : {}),
    backoff: { initialMs, maxMs },
    timeoutMs: seconds(o.timeout, '--timeout'),
    sourceDeadlineMs: seconds(o.sourceDeadline, '--source-deadline'),
    ...(traceparentOf(o.traceparent, process.env.TRACEPARENT) ?? {}),
    maxImageBytes: byteSize(o.maxImageSize, '--max-image-size'),
    minDownloadRate: byteSize(o.minDownloadRate, '--min-download-rate'),
    maxRedirectEntries: count(o.maxRedirectEntries, '--max-redirect-entries'),
    maxRedirectHops: count(o.maxRedirectHops, '--max-redirect-hops'),
    ...(o.voucherSignerEku ? { voucherSignerPurpose: o.voucherSignerEku } : {}),
    sendNonce: o.nonce,
    now,
  };
}

/** `--traceparent` over `TRACEPARENT`; a malformed value is an error, not silently ignored. */
function traceparentOf(flag: unknown, env: string | undefined): { traceparent: string } | undefined {
  const v = (typeof flag === 'string' ? flag : env)?.trim();
  if (!v) return undefined;
  if (!isTraceparent(v))
    throw new CliError('CLI_ERR_USAGE', `--traceparent/TRACEPARENT: not a W3C traceparent: ${v}`);
  return { traceparent: v };
}

/** Registers `sztp-client run`. */
export function registerAgentRunCommand(program: Command): void {
  program
    .command('run')
    .description('bootstrap this device (RFC 8572 §5): discover, fetch, verify, onboard, report progress')
    .option('--bootstrap-url <url>', 'bootstrap server URL (repeatable; tried first)', collect, [])
    .option(
      '--dhcp-lease-file <file>',
      'lease file with DHCP option 143/136 (repeatable; default: usual locations)',
      collect,
    )
    .option('--no-dhcp', 'do not read DHCP lease files')
    .option(
      '--dns-domain <domain>',
      'DNS discovery domain: <serial>._sztp TXT, _sztp._tcp SRV (repeatable)',
      collect,
      [],
    )
    .option(
      '--bootstrap-dir <dir>',
      'directory of bootstrapping data (removable media; repeatable)',
      collect,
      [],
    )
    .option('--serial-number <sn>', "this device's serial number (default: the IDevID subject serialNumber)")
    .option('--idevid-cert <file>', 'IDevID certificate, PEM, followed by its intermediates')
    .option('--idevid-key <file>', 'IDevID private key, PEM')
    .option(
      '--basic-password <password>',
      'HTTP Basic password (user: the serial number); trusted servers only',
    )
    .option('--basic-password-file <file>', 'read the HTTP Basic password from a file')
    .option('--trust-anchor <file>', 'bootstrap server TLS trust anchor(s), PEM (repeatable)', collect, [])
    .option(
      '--manufacturer-trust-anchor <file>',
      'manufacturer trust anchor(s) for vouchers (repeatable)',
      collect,
      [],
    )
    .option('--hw-model <model>', 'hw-model sent in get-bootstrapping-data')
    .option('--os-name <name>', 'running OS name (default: ID from /etc/os-release)')
    .option('--os-version <version>', 'running OS version (default: VERSION_ID from /etc/os-release)')
    .option('--install-hook <cmd>', 'installs a verified boot image: run as `<cmd> <image path>`')
    .option('--config-path <file>', 'where conveyed configuration is written (atomically)')
    .option('--config-hook <cmd>', 'applies the configuration: run as `<cmd> <config path> <merge|replace>`')
    .option('--script-timeout <s>', 'time limit for scripts and hooks, seconds', '300')
    .option(
      '--ssh-host-keys-dir <dir>',
      'where ssh_host_*_key.pub are read for bootstrap-complete',
      '/etc/ssh',
    )
    .option(
      '--report-trust-anchor <file>',
      'certificate chain (PEM) reported in bootstrap-complete trust-anchor-certs',
    )
    .option('--state-dir <dir>', 'state directory (state.json, work files)', '/var/lib/sztp-client')
    .option('--once', 'one pass over the sources, then exit')
    .option('--max-attempts <n>', 'passes over the sources before giving up (default: forever)')
    .option('--backoff <min[:max]>', 'wait between passes, seconds, doubling from min to max', '5:300')
    .option(
      '--timeout <s>',
      'per-request deadline, connect to last byte (and download idle limit), seconds',
      '30',
    )
    .option('--source-deadline <s>', 'overall deadline for fetching from one source, seconds', '120')
    .option(
      '--max-image-size <size>',
      'largest boot image accepted (e.g. 16G, 512M); a size the host announces is held to',
      '16G',
    )
    .option(
      '--min-download-rate <size>',
      'slowest average image download rate tolerated after the --timeout grace, bytes/s (e.g. 64K)',
      '64K',
    )
    .option('--max-redirect-entries <n>', 'bootstrap servers tried per redirect list', '8')
    .option('--max-redirect-hops <n>', 'redirect hops followed per pass over the sources', '32')
    .option(
      '--voucher-signer-eku <oid>',
      'require this extKeyUsage on the voucher signer (the MASA), when the manufacturer uses one',
    )
    .option(
      '--traceparent <traceparent>',
      'W3C traceparent this run continues (env TRACEPARENT; default: the one the server hands over)',
    )
    .option('--no-nonce', 'send no nonce (for servers that only hold vouchers without one)')
    .addOption(
      new Option('--log-format <format>', 'log lines for people or machines')
        .choices(['text', 'json'])
        .default('text'),
    )
    .option('--now <iso8601>', 'clock for certificate and voucher validity (testing)')
    .action(
      action(async (o: RunOptions) => {
        const log = createLog(o.logFormat, (l) => process.stdout.write(l));
        const config = await agentConfigFromFlags(o);
        // Spans go over OTLP/HTTP only with OTEL_EXPORTER_OTLP_ENDPOINT set; otherwise nothing is
        // registered. Export never holds the agent up, and the flush at exit is cut after 2 s.
        const telemetry = startAgentTelemetry({
          env: process.env,
          serviceVersion: readPackageVersion(),
          attributes: { 'dpu_ztp.device.serial': config.serialNumber },
        });
        const abort = new AbortController();
        let stoppedBy: NodeJS.Signals | undefined;
        const stop = (sig: NodeJS.Signals) => {
          stoppedBy ??= sig;
          abort.abort(new Error(`stopped by ${sig}`));
          // Every wait takes the signal, so the agent ends within moments with its state
          // saved; should anything still hold on (a hook's child ignoring SIGTERM), it is
          // not allowed to keep the device's service from stopping.
          setTimeout(() => {
            log.line('warn', 'stop', `${sig}: still busy after 1.5 s; exiting`);
            process.exit(sig === 'SIGINT' ? 130 : 143);
          }, 1500).unref();
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
        try {
          const r = await runAgent({ ...config, log, signal: abort.signal });
          if (r.outcome === 'bootstrapped' || r.outcome === 'disabled') return;
          if (r.outcome === 'stopped') {
            // The shell's convention for "ended by signal N": 128 + N.
            process.exitCode = stoppedBy === 'SIGINT' ? 130 : 143;
            return;
          }
          if (r.outcome === 'rebooting') {
            log.line('info', 'boot-image', 'boot image installed; the device reboots into it');
            process.exitCode = EXIT_REBOOTING;
            return;
          }
          throw new CliError(
            'SZTP_CLIENT_ERR_GAVE_UP',
            `no source bootstrapped the device; last: ${r.error.code}: ${r.error.message}`,
          );
        } finally {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          await telemetry.shutdown();
        }
      }),
    );
}
