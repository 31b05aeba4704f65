/**
 * Wires the agent from a typed configuration (the CLI parses flags into it):
 * discovery → sources, the HTTPS transport for redirects, the PKI verifier,
 * the onboarding executor and the state file. Reads no environment and never
 * exits the process (STYLE.md lesson 2).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { AgentTraceContext } from './trace-context.js';
import { join } from 'node:path';
import { createCertificateBag } from '../pki/verify.js';
import { checkBootstrapServerUri, type DnsResolver, discoverBootstrapServers } from './discovery/index.js';
import { readSshHostKeys, type OsRelease } from './device-facts.js';
import { AgentError, describeError } from './errors.js';
import { DirectorySource, StaticDataSource } from './file-source.js';
import { type ClientIdentity, HttpsSource } from './https-source.js';
import type { AgentLog } from './logger.js';
import { OnboardingExecutor } from './onboarding.js';
import type { Executor, RedirectTarget, Source, Verifier } from './ports.js';
import { Procedure, type ProcedureResult } from './procedure.js';
import { StateStore } from './state.js';
import { PkiVerifier } from './verifier.js';

/** Everything `sztp-client run` needs, parsed and checked. */
export interface AgentConfig {
  /** `--bootstrap-url`, in order. */
  bootstrapUrls: string[];
  /** `--dhcp-lease-file`; undefined: the default locations; [] turns DHCP off. */
  leaseFiles?: string[];
  /** `--dns-domain`: DNS discovery in these domains (none: no DNS). */
  dnsDomains: string[];
  dnsResolver?: DnsResolver;
  /** `--bootstrap-dir`: directories of bootstrapping data (removable media; untrusted). */
  bootstrapDirs: string[];
  serialNumber: string;
  /** IDevID (with intermediates) and key for TLS client authentication. */
  identity?: ClientIdentity;
  /** HTTP Basic password (user = serial number), sent only to trusted servers. */
  basicPassword?: string;
  /** Server TLS trust anchors (DER). */
  trustAnchors: Uint8Array[];
  /** Manufacturer trust anchors for vouchers (DER). */
  manufacturerTrustAnchors: Uint8Array[];
  hwModel?: string;
  /** os-name/os-version sent and compared with the conveyed boot image. */
  running: OsRelease;
  installHook?: string;
  configPath?: string;
  configHook?: string;
  scriptTimeoutMs: number;
  /** Where `ssh_host_*_key.pub` are read for bootstrap-complete. */
  sshHostKeysDir: string;
  /** Certificates (DER, one chain) to report in bootstrap-complete's trust-anchor-certs. */
  reportTrustAnchors?: Uint8Array[];
  stateDir: string;
  once: boolean;
  maxAttempts?: number;
  backoff: { initialMs: number; maxMs: number };
  /** Per-request deadline for RESTCONF (connect to last byte), and idle limit for downloads, ms. */
  timeoutMs: number;
  /** Overall deadline for fetching from one source (host-meta + RPC), ms (default 120 s). */
  sourceDeadlineMs?: number;
  /** `--traceparent` / `TRACEPARENT`: the trace this run continues (else the server's header). */
  traceparent?: string;
  /** Largest boot image accepted, bytes (default 16 GiB, `DEFAULT_MAX_IMAGE_BYTES`). */
  maxImageBytes?: number;
  /** Slowest average download rate tolerated, bytes/s (default 64 KiB/s, `DEFAULT_MIN_DOWNLOAD_RATE`). */
  minDownloadRate?: number;
  /** Entries tried per redirect list (default 8). */
  maxRedirectEntries?: number;
  /** Redirect hops per pass over the sources (default 32). */
  maxRedirectHops?: number;
  /** `--voucher-signer-eku`: an extKeyUsage OID the voucher signer must carry. */
  voucherSignerPurpose?: string;
  sendNonce: boolean;
  /** The clock used for certificate and voucher validity. */
  now: () => Date;
  log: AgentLog;
  signal?: AbortSignal;
  /** Replace ports (tests): the verifier or executor. */
  verifier?: Verifier;
  executor?: Executor;
}

/** How `run` ended: the procedure's result, or disabled before it started. */
export type AgentResult = ProcedureResult | { outcome: 'disabled'; reason: string };

/**
 * A URL for a redirect target (IPv6 literals bracketed). RFC 8572 §2.2 makes `address` an
 * `inet:host` (an IP address or a domain name) and `port` an `inet:port-number`; anything
 * else — `127.0.0.1:1`, `http://…`, a name smuggling a path — is refused here, so that
 * entry alone is skipped.
 *
 * @throws AgentError `SZTP_CLIENT_ERR_BAD_SOURCE`
 */
export function redirectUrl(t: { address: string; port: number }): string {
  const addr = typeof t.address === 'string' ? t.address : '';
  const shown = JSON.stringify(addr.slice(0, 100));
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535)
    throw new AgentError('SZTP_CLIENT_ERR_BAD_SOURCE', `redirect entry ${shown}: bad port ${String(t.port)}`);
  const bare = addr.replace(/^\[(.*)\]$/, '$1');
  let host: string;
  if (isIPv6(bare) && !bare.includes('%')) host = `[${bare}]`;
  else if (isIPv4(addr) || HOST_NAME.test(addr)) host = addr;
  else
    throw new AgentError(
      'SZTP_CLIENT_ERR_BAD_SOURCE',
      `redirect entry ${shown} is not an IP address or host name (RFC 8572 §2.2 inet:host)`,
    );
  const url = `https://${host}:${t.port}`;
  const checked = checkBootstrapServerUri(url);
  if (!checked.ok)
    throw new AgentError('SZTP_CLIENT_ERR_BAD_SOURCE', `redirect entry ${shown}: ${checked.reason}`);
  return url;
}

// RFC 1123 host name: labels of letters, digits and inner hyphens (a root dot tolerated).
const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Runs the agent once through the RFC 8572 §5 loop; honours the SZTP-enabled flag. */
export async function runAgent(c: AgentConfig): Promise<AgentResult> {
  const state = new StateStore(c.stateDir);
  const s = await state.load();
  if (state.recovered)
    c.log.line('warn', 'start', `${state.file} was unusable and was moved aside; starting fresh`, {
      movedTo: state.recovered.movedTo,
      reason: state.recovered.reason,
    });
  if (!s.enabled) {
    const reason = s.disabledReason ?? 'disabled';
    c.log.line(
      'info',
      'start',
      `SZTP is disabled (${reason}); nothing to do — 'sztp-client enable' turns it back on`,
    );
    return { outcome: 'disabled', reason };
  }
  const trace = new AgentTraceContext(c.traceparent);
  const https = (url: string, trustAnchors: readonly Uint8Array[]) =>
    new HttpsSource({
      url,
      trustAnchors,
      timeoutMs: c.timeoutMs,
      ...(c.sourceDeadlineMs !== undefined ? { sourceDeadlineMs: c.sourceDeadlineMs } : {}),
      ...(c.signal ? { signal: c.signal } : {}),
      trace,
      ...(c.identity ? { identity: c.identity } : {}),
      ...(c.basicPassword !== undefined
        ? { basic: { username: c.serialNumber, password: c.basicPassword } }
        : {}),
    });
  const sources = async (): Promise<Source[]> => {
    const found = await discoverBootstrapServers({
      staticUrls: c.bootstrapUrls,
      ...(c.leaseFiles !== undefined ? { leaseFiles: c.leaseFiles } : {}),
      ...(c.dnsDomains.length
        ? { dns: { domains: c.dnsDomains, ...(c.dnsResolver ? { resolver: c.dnsResolver } : {}) } }
        : {}),
      serial: c.serialNumber,
    });
    for (const w of found.warnings) c.log.line('warn', 'discover', w.message, { code: w.code });
    // RFC 8572 §9.7 recommends local sources before remote ones.
    const list: Source[] = [
      ...c.bootstrapDirs.map((d) => new DirectorySource(d)),
      ...found.dnsBootstrapData.map(
        (d) =>
          new StaticDataSource(`dns:${d.name}`, {
            ...(d.conveyedInformation ? { conveyedInformation: d.conveyedInformation } : {}),
            ...(d.ownerCertificate ? { ownerCertificate: d.ownerCertificate } : {}),
            ...(d.ownershipVoucher ? { ownershipVoucher: d.ownershipVoucher } : {}),
          }),
      ),
    ];
    // Each source is built alone: one URL the transport cannot use is a warning, never the
    // reason the others (the --bootstrap-url ones included) are lost for the pass.
    for (const srv of found.servers) {
      try {
        list.push(https(srv.url, c.trustAnchors));
      } catch (err) {
        const e = describeError(err);
        c.log.line('warn', 'discover', `skipping ${JSON.stringify(srv.url.slice(0, 200))}: ${e.message}`, {
          code: e.code,
        });
      }
    }
    c.log.line(
      'info',
      'discover',
      `${list.length} source(s): ${list.map((x) => x.name).join(', ') || 'none'}`,
    );
    return list;
  };
  const procedure = new Procedure({
    sources,
    // RFC 8572 §5.5: a trusted redirect's anchor decides; without one, our preconfigured anchors.
    redirectSource: (t: RedirectTarget) =>
      https(redirectUrl(t), t.trustAnchors.length ? t.trustAnchors : c.trustAnchors),
    verifier:
      c.verifier ??
      new PkiVerifier({
        manufacturerTrustAnchors: c.manufacturerTrustAnchors,
        serialNumber: c.serialNumber,
        now: c.now,
        ...(c.voucherSignerPurpose ? { voucherSignerPurpose: c.voucherSignerPurpose } : {}),
      }),
    executor:
      c.executor ??
      new OnboardingExecutor({
        workDir: join(c.stateDir, 'work'),
        running: c.running,
        scriptTimeoutMs: c.scriptTimeoutMs,
        downloadIdleTimeoutMs: c.timeoutMs,
        ...(c.maxImageBytes !== undefined ? { maxImageBytes: c.maxImageBytes } : {}),
        ...(c.minDownloadRate !== undefined ? { minDownloadRate: c.minDownloadRate } : {}),
        ...(c.signal ? { signal: c.signal } : {}),
        env: { SZTP_SERIAL_NUMBER: c.serialNumber },
        log: c.log,
        ...(c.installHook ? { installHook: c.installHook } : {}),
        ...(c.configPath ? { configPath: c.configPath } : {}),
        ...(c.configHook ? { configHook: c.configHook } : {}),
      }),
    request: {
      signedDataPreferred: true,
      ...(c.hwModel ? { hwModel: c.hwModel } : {}),
      ...(c.running.name ? { osName: c.running.name } : {}),
      ...(c.running.version ? { osVersion: c.running.version } : {}),
    },
    sendNonce: c.sendNonce,
    sshHostKeys: () => readSshHostKeys(c.sshHostKeysDir),
    ...(c.reportTrustAnchors?.length
      ? { trustAnchorCerts: [createCertificateBag(c.reportTrustAnchors)] }
      : {}),
    once: c.once,
    ...(c.maxAttempts !== undefined ? { maxAttempts: c.maxAttempts } : {}),
    backoff: c.backoff,
    ...(c.maxRedirectEntries !== undefined ? { maxRedirectEntries: c.maxRedirectEntries } : {}),
    ...(c.maxRedirectHops !== undefined ? { maxRedirectHops: c.maxRedirectHops } : {}),
    state,
    log: c.log,
    ...(c.signal ? { signal: c.signal } : {}),
    trace,
  });
  return procedure.run();
}

/** Sets the SZTP-enabled flag (`sztp-client enable` / `disable`). */
export async function setEnabled(stateDir: string, enabled: boolean): Promise<void> {
  const state = new StateStore(stateDir);
  await state.update((s) => {
    s.enabled = enabled;
    if (enabled) {
      delete s.disabledReason;
      if (s.status !== 'running') s.status = 'idle';
    } else s.disabledReason = 'operator';
  });
}
