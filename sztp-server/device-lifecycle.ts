/**
 * The port through which the bootstrap server tells the lifecycle owner what a
 * device did (DESIGN.md "Who owns device state"). `sztp-server/` authenticates
 * devices and answers RESTCONF; what a progress report *means* for the device's
 * state (and for a provisioning job waiting on it) is decided by `bootstrap/`,
 * which implements this interface; `cli/` wires the two together.
 */
import type { ProgressType, SshHostKey } from './restconf-codec.js';

/** An authenticated device's get-bootstrapping-data, after it was answered or refused. */
export interface BootstrapContact {
  serial: string;
  at: Date;
  /** `served`, or the SZTP_ERR_* code it was refused with. */
  result: string;
  remoteAddress?: string | undefined;
}

/** One report-progress (RFC 8572 §7.2) of an authenticated device. */
export interface ProgressReport {
  serial: string;
  at: Date;
  progressType: ProgressType;
  message?: string | undefined;
  remoteAddress?: string | undefined;
  /** How the device authenticated, for the append-only log (certificate subject + fingerprint, or `basic:<serial>`). */
  tlsIdentity: string;
  sshHostKeys?: SshHostKey[] | undefined;
  /** base64 degenerate SignedData, one chain each. */
  trustAnchorCerts?: string[] | undefined;
}

/** Implemented by `bootstrap/` (see `DeviceStateLifecycle`). */
export interface DeviceLifecycle {
  /**
   * Told of each get-bootstrapping-data of an authenticated, registered device.
   * Must not throw and must return quickly: it never delays or fails the RPC.
   */
  onBootstrapRequest(contact: BootstrapContact): void;
  /**
   * Stores a progress report durably and applies what it means (device state,
   * waiting jobs). The RPC answers 204 only after this resolves.
   */
  onProgress(report: ProgressReport): Promise<void>;
}
