/**
 * The ports of the agent's loop (STYLE.md lesson 10): a {@link Source} yields
 * bootstrapping data, a {@link Verifier} turns it into conveyed information it
 * may act on, an onboarding {@link Executor} carries it out, and a
 * {@link Reporter} tells a trusted server how it went. Each is small, so the
 * offline path (a file source, a no-op reporter) and the tests swap them in.
 */
import type { ConveyedInformation, OnboardingInformation, ProgressType } from '../pki/verify.js';

export { PROGRESS_TYPES, type ProgressType } from '../pki/verify.js';

/** An SSH host key as report-progress carries it (algorithm name + RFC 4253 §6.6 blob). */
export interface SshHostKey {
  algorithm: string;
  /** The public key blob, base64 (as in the `.pub` file). */
  keyData: string;
}

/** One report-progress input (RFC 8572 §7.2). */
export interface ProgressReport {
  type: ProgressType;
  message?: string;
  /** Only with `bootstrap-complete` (YANG `when`). */
  sshHostKeys?: SshHostKey[];
  /** Only with `bootstrap-complete`: degenerate SignedData, DER. */
  trustAnchorCerts?: Uint8Array[];
}

/** What the device sends in get-bootstrapping-data (RFC 8572 §7.1 input). */
export interface BootstrapRequest {
  signedDataPreferred: boolean;
  hwModel?: string;
  osName?: string;
  osVersion?: string;
  /** 16–32 random octets, fresh per request. */
  nonce?: Uint8Array;
}

/** Bootstrapping data as artifacts (DER), however it arrived. */
export interface BootstrappingData {
  conveyedInformation: Uint8Array;
  ownerCertificate?: Uint8Array;
  ownershipVoucher?: Uint8Array;
  /** From a bootstrap server's reply; `minimal` when absent (YANG default). */
  reportingLevel?: 'minimal' | 'verbose';
}

/** Tells a bootstrap server how bootstrapping goes. Only trusted servers get one. */
export interface Reporter {
  /** Sends one report; throws when the server does not answer 204. */
  report(progress: ProgressReport): Promise<void>;
}

/** What a source returned. */
export interface SourceReply {
  data: BootstrappingData;
  /**
   * RFC 8572 §5.3: the server was authenticated by TLS to a preconfigured trust
   * anchor or one learned from a trusted redirect. Files and DNS are never trusted.
   */
  serverTrusted: boolean;
  /** Present only for trusted servers: where progress reports go. */
  reporter?: Reporter;
  /** The request's nonce reached the data's maker (a server); a voucher must then carry it. */
  nonceSent?: boolean;
}

/** A source of bootstrapping data: a bootstrap server, a directory, a DNS record. */
export interface Source {
  /** For logs and state, e.g. `https://10.0.0.5:8443` or `file:/media/usb/sztp`. */
  readonly name: string;
  fetch(request: BootstrapRequest): Promise<SourceReply>;
}

/** A bootstrap server named in redirect information (RFC 8572 §2.2). */
export interface RedirectTarget {
  address: string;
  port: number;
  /** DER certificates from the server's `trust-anchor`, kept only when the redirect was trusted. */
  trustAnchors: Uint8Array[];
}

/** Makes a source for a redirect target (the HTTPS transport in production, fakes in tests). */
export type RedirectSourceFactory = (target: RedirectTarget) => Source;

/** Verified conveyed information and what the verification established. */
export interface VerifiedData {
  conveyedInformation: ConveyedInformation;
  signed: boolean;
  /** One line for logs and progress messages (who signed, which voucher). */
  summary: string;
}

/** Checks bootstrapping data (RFC 8572 §5.4); throws on any failure. */
export interface Verifier {
  verify(data: BootstrappingData, context: { nonce?: Uint8Array }): VerifiedData;
}

/** Progress callback used while onboarding: reports and logs one step. */
export type ProgressSink = (type: ProgressType, message: string) => Promise<void>;

/** How onboarding ended. */
export type OnboardingOutcome = 'complete' | 'rebooting';

/** Carries out onboarding information (RFC 8572 §5.6). Throws an AgentError on a failed stage. */
export interface Executor {
  onboard(info: OnboardingInformation, progress: ProgressSink): Promise<OnboardingOutcome>;
}
