/**
 * Wires the agent from a typed configuration (the CLI parses flags into it):
 * discovery → sources, the HTTPS transport for redirects, the PKI verifier,
 * the onboarding executor and the state file. Reads no environment and never
 * exits the process (STYLE.md lesson 2).
 */
import { AgentTraceContext } from './trace-context.js';
import { join } from 'node:path';
import { createCertificateBag } from '../pki/cms.js';
import { type DnsResolver, discoverBootstrapServers } from './discovery/index.js';
import { readSshHostKeys, type OsRelease } from './device-facts.js';
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
  /** Per-request time limit for RESTCONF, and idle limit for downloads, ms. */
  timeoutMs: number;
  /** `--traceparent` / `TRACEPARENT`: the trace this run continues (else the server's header). */
  traceparent?: string;
  /** Largest boot image accepted, bytes (default 64 GiB). */
  maxImageBytes?: number;
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

/** A URL for a redirect target (IPv6 literals bracketed). */
export function redirectUrl(t: { address: string; port: number }): string {
  const host = t.address.includes(':') && !t.address.startsWith('[') ? `[${t.address}]` : t.address;
  return `https://${host}:${t.port}`;
}

/** Runs the agent once through the RFC 8572 §5 loop; honours the SZTP-enabled flag. */
export async function runAgent(c: AgentConfig): Promise<AgentResult> {
  const state = new StateStore(c.stateDir);
  const s = await state.load();
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
      ...found.servers.map((srv) => https(srv.url, c.trustAnchors)),
    ];
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
      }),
    executor:
      c.executor ??
      new OnboardingExecutor({
        workDir: join(c.stateDir, 'work'),
        running: c.running,
        scriptTimeoutMs: c.scriptTimeoutMs,
        downloadIdleTimeoutMs: c.timeoutMs,
        ...(c.maxImageBytes !== undefined ? { maxImageBytes: c.maxImageBytes } : {}),
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
    state,
    log: c.log,
    ...(c.signal ? { signal: c.signal } : {}),
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
