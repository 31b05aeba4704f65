/**
 * The one `Database` interface of table types for Kysely (STYLE.md lesson 4).
 * Mirrors what `migrations/` creates; a test checks both stay in step.
 */
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** int8 columns come back as strings (pg's default, matched on PGlite). */
type Int8 = ColumnType<string, number | bigint | string, number | bigint | string>;
type Json<T> = ColumnType<T, string, string>;

/** Roles an API token may have, most to least powerful. */
export type TokenRole = 'admin' | 'operator' | 'viewer';
/** Where a device is in its bootstrap life. */
export type DeviceState = 'registered' | 'pending' | 'bootstrapping' | 'provisioned' | 'failed';

export interface ApiTokensTable {
  id: string;
  name: string;
  role: TokenRole;
  token_hash: string;
  created_at: Generated<Date>;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface ImagesTable {
  name: string;
  size: Int8;
  sha256: string;
  sha384: string;
  sha512: string;
  content_type: string;
  os_name: string | null;
  os_version: string | null;
  path: string;
  created_at: Generated<Date>;
}

/** Owner, MASA and TLS credentials shared by every replica (keys sealed with the secret key). */
export interface CredentialsTable {
  role: 'owner' | 'masa' | 'tls' | 'manufacturer';
  certificates: string;
  key_sealed: Uint8Array | null;
  pinned: string | null;
  generation: Generated<Int8>;
  updated_at: Generated<Date>;
}

/** Revoked device identities: SHA-256 fingerprints (colon hex, lowercase) of IDevID certificates. */
export interface RevokedIdevidsTable {
  fingerprint: string;
  reason: string | null;
  revoked_at: Generated<Date>;
  /** The API token's name, or `file:<path>` for a line imported from `revoked-idevids.txt`. */
  revoked_by: string;
}

export interface ProfilesTable {
  name: string;
  version: Generated<number>;
  spec: Json<Record<string, unknown>>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface DevicesTable {
  serial: string;
  profile: string | null;
  state: ColumnType<DeviceState, DeviceState | undefined, DeviceState>;
  hw_model: string | null;
  labels: ColumnType<Record<string, string>, string | undefined, string>;
  password_hash: string | null;
  ownership_voucher: Uint8Array | null;
  idevid_issuer: string | null;
  idevid_fingerprint: string | null;
  last_progress_type: string | null;
  last_progress_message: string | null;
  last_progress_at: Date | null;
  ssh_host_keys: Json<Array<{ algorithm: string; keyData: string }>> | null;
  trust_anchor_certs: Json<string[]> | null;
  /** The BMC the device is reached through (`bmcs.id`). */
  bmc: string | null;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface BootstrapEventsTable {
  id: Generated<Int8>;
  serial: string;
  kind: string;
  progress_type: string | null;
  message: string | null;
  remote_address: string | null;
  tls_identity: string | null;
  detail: Json<Record<string, unknown>> | null;
  created_at: Generated<Date>;
}

export interface ImageFetchesTable {
  id: Generated<Int8>;
  image: string;
  client_address: string | null;
  listener: string;
  status: number;
  /** The Range header as sent; for a row that stands for several reads, every range served. */
  range: string | null;
  /** Sum over the reads of the row. */
  bytes_sent: Int8;
  /** Sum over the reads of the row. */
  duration_ms: number;
  /** Reads the row stands for (range reads of one client within one flush are one row). */
  requests: Generated<number>;
  created_at: Generated<Date>;
}

/** How the controller logs in to a BMC (`auto`: session, falling back to Basic). */
export type BmcAuth = 'auto' | 'session' | 'basic';

export interface BmcsTable {
  id: string;
  /** `https://host[:port]` */
  address: string;
  username: string;
  /** AES-256-GCM: nonce (12) || ciphertext || tag (16), the BMC id as associated data. */
  password_sealed: Uint8Array;
  ca_certificate: string | null;
  insecure: ColumnType<boolean, boolean | undefined, boolean>;
  auth: ColumnType<BmcAuth, BmcAuth | undefined, BmcAuth>;
  /** Operator override of the vendor profile (`redfish/profiles`). */
  vendor_profile: string | null;
  /** Redfish ComputerSystem id when the BMC manages several. */
  system_id: string | null;
  labels: ColumnType<Record<string, string>, string | undefined, string>;
  last_check: Json<Record<string, unknown>> | null;
  last_check_at: Date | null;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface AuditLogTable {
  id: Generated<Int8>;
  actor: string;
  action: string;
  target: string | null;
  detail: Json<Record<string, unknown>> | null;
  created_at: Generated<Date>;
}

/** A provisioning job's kind (issue 13). */
export type JobKind = 'provision' | 'power' | 'decommission';
/** A job's state: `failed` when some device failed or needs attention. */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
/** A device run's state within a job. */
export type JobDeviceState = 'queued' | 'running' | 'succeeded' | 'failed' | 'needs-attention' | 'cancelled';
/** How one step attempt ended (`interrupted`: its replica died and another took the run over). */
export type JobStepResult = 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export interface JobsTable {
  id: string;
  kind: JobKind;
  state: JobState;
  params: ColumnType<Record<string, unknown>, string | undefined, string>;
  created_by: string | null;
  created_at: Generated<Date>;
  updated_at: Timestamp;
  finished_at: Date | null;
}

export interface JobDevicesTable {
  id: string;
  job_id: string;
  serial: string;
  bmc_id: string | null;
  state: JobDeviceState;
  step: string;
  attempt: ColumnType<number, number | undefined, number>;
  started_at: Date | null;
  finished_at: Date | null;
  error_code: string | null;
  error_message: string | null;
  bmc_messages: Json<unknown[]> | null;
  /** W3C traceparent of the run's root span. */
  traceparent: string | null;
  /** Per-run token in the installer URL handed to the BMC: attributes its image reads to the trace. */
  image_token: string | null;
  owner: string | null;
  lease_until: Date | null;
  step_started_at: Date | null;
  step_deadline: Date | null;
  reset_at: Date | null;
  context: ColumnType<Record<string, unknown>, string | undefined, string>;
  updated_at: Timestamp;
}

export interface JobStepsTable {
  id: Generated<Int8>;
  run_id: string;
  step: string;
  attempt: number;
  started_at: Date;
  finished_at: Date | null;
  result: JobStepResult;
  detail: string | null;
  error_code: string | null;
  bmc_messages: Json<unknown[]> | null;
  owner: string | null;
}

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  request_hash: string;
  status: number | null;
  response: Json<unknown> | null;
  created_at: Generated<Date>;
}

export interface EventsTable {
  id: Generated<Int8>;
  /** `device.progress`, `device.state`, `job.state`, … (bootstrap/events.ts lists them). */
  type: string;
  serial: string | null;
  job: string | null;
  data: ColumnType<Record<string, unknown>, string | undefined, string>;
  created_at: Generated<Date>;
}

export interface WebhooksTable {
  id: string;
  url: string;
  /** AES-256-GCM (SecretBox), `webhook:<id>` as associated data. */
  secret_sealed: Uint8Array;
  /** Event type patterns: exact, `prefix.*` or `*`. */
  events: ColumnType<string[], string | undefined, string>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

/** Where a webhook delivery is: due (or leased) until delivered or out of attempts. */
export type WebhookDeliveryState = 'pending' | 'delivered' | 'failed';

export interface WebhookDeliveriesTable {
  id: Generated<Int8>;
  webhook: string;
  event_id: Int8;
  state: ColumnType<WebhookDeliveryState, WebhookDeliveryState | undefined, WebhookDeliveryState>;
  attempts: Generated<number>;
  next_attempt_at: Generated<Date>;
  last_status: number | null;
  last_error: string | null;
  created_at: Generated<Date>;
  finished_at: Date | null;
}

/** Every table dpu-ztp owns (pg-boss keeps its own schema). */
export interface Database {
  api_tokens: ApiTokensTable;
  images: ImagesTable;
  profiles: ProfilesTable;
  devices: DevicesTable;
  bootstrap_events: BootstrapEventsTable;
  image_fetches: ImageFetchesTable;
  audit_log: AuditLogTable;
  bmcs: BmcsTable;
  jobs: JobsTable;
  job_devices: JobDevicesTable;
  job_steps: JobStepsTable;
  idempotency_keys: IdempotencyKeysTable;
  events: EventsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  credentials: CredentialsTable;
  revoked_idevids: RevokedIdevidsTable;
}

export type ApiToken = Selectable<ApiTokensTable>;
export type Image = Selectable<ImagesTable>;
export type NewImage = Insertable<ImagesTable>;
export type Profile = Selectable<ProfilesTable>;
export type Device = Selectable<DevicesTable>;
export type DeviceUpdate = Updateable<DevicesTable>;
export type BootstrapEvent = Selectable<BootstrapEventsTable>;
export type Bmc = Selectable<BmcsTable>;
export type Job = Selectable<JobsTable>;
export type JobDevice = Selectable<JobDevicesTable>;
export type JobStep = Selectable<JobStepsTable>;
export type EventRow = Selectable<EventsTable>;
export type Webhook = Selectable<WebhooksTable>;
export type WebhookDelivery = Selectable<WebhookDeliveriesTable>;
export type CredentialsRow = Selectable<CredentialsTable>;
export type RevokedIdevidRow = Selectable<RevokedIdevidsTable>;
