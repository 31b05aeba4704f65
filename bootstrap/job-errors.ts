/**
 * Why a device run stopped: stable codes (README "Provisioning jobs" lists
 * them; a test checks), and which stops need a person (`needs-attention`)
 * rather than a retry (`failed`).
 */
import { type RedfishErrorCode, isRedfishError } from '../redfish/index.js';

/** Every code a device run can stop with, besides the Redfish codes of a failed BMC step. */
export const JOB_ERRORS = {
  JOB_ERR_NO_BMC:
    'The device names no BMC (PUT /api/v1/devices/{serial} with bmc), or the BMC record is gone.',
  JOB_ERR_NO_INSTALLER_IMAGE:
    "Neither the job nor the device's profile names an installer image, or the named image is not in the image store.",
  JOB_ERR_DEVICE_TIMEOUT:
    'await-device: the device made no sZTP contact (get-bootstrapping-data or bootstrap-initiated) within its timeout after the reset.',
  JOB_ERR_COMPLETE_TIMEOUT:
    'await-complete: the device did not report bootstrap-complete within its timeout.',
  JOB_ERR_DEVICE_REPORTED_ERROR:
    "The device reported a *-error progress type; the message is the device's own.",
  JOB_ERR_IDEVID_REVOKED:
    "The device's known IDevID (the certificate it last presented) is revoked: preflight refuses to provision it, and a wait stops as soon as it is revoked. Lift the revocation or replace the device.",
  JOB_ERR_CANCELLED: 'The job was cancelled.',
  JOB_ERR_INTERNAL: 'An unexpected error; the log has the details.',
} as const;

/** A job error code. */
export type JobErrorCode = keyof typeof JOB_ERRORS;

/** A stop of a device run with its code, the device's or BMC's words, and whether a person must act. */
export class JobError extends Error {
  readonly code: JobErrorCode;
  readonly attention: boolean;
  constructor(code: JobErrorCode, message: string, opts: { attention?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'JobError';
    this.code = code;
    this.attention = opts.attention ?? false;
  }
}

/**
 * Redfish failures a person must fix before a retry can work: credentials, a certificate, a BMC
 * account that must change its password, media the BMC will not let go of.
 */
const ATTENTION: ReadonlySet<RedfishErrorCode> = new Set<RedfishErrorCode>([
  'REDFISH_ERR_AUTH',
  'REDFISH_ERR_PASSWORD_CHANGE_REQUIRED',
  'REDFISH_ERR_TLS',
  'REDFISH_ERR_MEDIA_STUCK',
  'REDFISH_ERR_UNKNOWN_PROFILE',
]);

/**
 * Failures worth another try of the same step after a pause: the BMC did not answer, dropped the
 * connection, or said it is busy (5xx/429) even after the client's own retries.
 */
export function isTransient(err: unknown): boolean {
  if (!isRedfishError(err)) return false;
  if (err.code === 'REDFISH_ERR_CONNECTION' || err.code === 'REDFISH_ERR_TIMEOUT') return true;
  return err.code === 'REDFISH_ERR_HTTP' && (err.status === 429 || (err.status ?? 0) >= 500);
}

/** How a run stops for `err`: its state, code, message and the BMC's messages. */
export function stopOf(err: unknown): {
  state: 'failed' | 'needs-attention';
  code: string;
  message: string;
  bmcMessages?: unknown[];
} {
  if (err instanceof JobError)
    return { state: err.attention ? 'needs-attention' : 'failed', code: err.code, message: err.message };
  if (isRedfishError(err))
    return {
      state: ATTENTION.has(err.code) ? 'needs-attention' : 'failed',
      code: err.code,
      message: err.message,
      ...(err.messages.length ? { bmcMessages: [...err.messages] } : {}),
    };
  return { state: 'failed', code: 'JOB_ERR_INTERNAL', message: (err as Error)?.message ?? String(err) };
}
