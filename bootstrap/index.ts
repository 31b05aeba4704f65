/** Public face of `bootstrap/`: the operator API and the lifecycle. */
export { type AuditNote, audit, redact, setAudit } from './audit.js';
export {
  appendJobEvent,
  DEVICE_EVENT_TYPES,
  databaseWakeSource,
  EVENT_CHANNEL,
  EVENT_TYPES,
  type EventFilter,
  EventHub,
  type EventHubOptions,
  type EventInput,
  EventLog,
  type EventSubscriber,
  type EventType,
  type EventView,
  eventView,
  IDEVID_EVENT_TYPES,
  JOB_EVENT_TYPES,
  type JobEventInput,
  typeMatches,
  type WakeSource,
} from './events.js';
export { type EventRoutesOptions, eventRoutes } from './routes/events.js';
export { type WebhookRoutesOptions, webhookRoutes } from './routes/webhooks.js';
export { type RevokedIdevidRoutesOptions, revokedIdevidRoutes } from './routes/revoked-idevids.js';
export {
  FINGERPRINT_PATTERN,
  isFingerprint,
  REVOKED_IDEVIDS_CHANNEL,
  deviceRevocation,
  type RevokedIdevid,
  RevokedIdevids,
  type RevokedIdevidsOptions,
} from './revoked-idevids.js';
export {
  signWebhookBody,
  webhookBackoffMs,
  WebhookSender,
  type WebhookSenderOptions,
  webhookSecretAad,
  webhookUrlProblem,
} from './webhooks.js';
export {
  type DeviceContact,
  type DeviceEventListener,
  type DeviceProgress,
  DeviceStateLifecycle,
  stateAfterProgress,
} from './device-lifecycle.js';
export {
  type BmcCheckResult,
  type BmcInput,
  BmcStore,
  type BmcTarget,
  type BmcView,
  bmcView,
} from './bmc-store.js';
export {
  type BmcCheckOptions,
  type BmcRoutesOptions,
  bmcRoutes,
  normalizeBmcAddress,
  redfishOptions,
} from './routes/bmcs.js';
export {
  bmcIdFromAddress,
  type DeviceImportOptions,
  deviceImportRoutes,
  IMPORT_COLUMNS,
  IMPORT_LIMITS,
} from './routes/device-import.js';
export {
  loadOrCreateSecretKeyFile,
  parseSecretKey,
  SecretBox,
  SecretKeyError,
} from './secrets.js';
export { API_ERRORS, ApiError, type ApiErrorCode, problem } from './errors.js';
export { DASHBOARD_CSP, type DashboardOptions } from './dashboard.js';
export {
  checkCredentialsInput,
  type CredentialRole,
  type Credentials,
  CREDENTIALS_CHANNEL,
  CredentialsError,
  type CredentialsInput,
  CredentialStore,
  type CredentialStoreOptions,
  type ImportReport,
} from './credentials.js';
export {
  type ApiContext,
  type ApiInstance,
  type ApiRoutes,
  buildOperatorApi,
  type OperatorApiOptions,
  type ReadinessCheck,
} from './operator-api.js';
export {
  checkOwnerUpload,
  type OwnerCredentials,
  type OwnerStore,
  type OwnerUpload,
  type OwnerView,
  ownerView,
} from './owner.js';
export {
  createToken,
  ensureAdminToken,
  findToken,
  hashToken,
  ROLES,
  roleAllows,
  TokenUsage,
  type TokenUsageOptions,
} from './tokens.js';
export {
  IMAGE_HASHES,
  type ImageHash,
  type ImageMeta,
  ImageStore,
  type ImageStoreOptions,
  imageContentType,
  type ReceivedImage,
} from './image-store.js';
export { type ImageRoutesOptions, type ImageUrls, imageRoutes } from './routes/images.js';
export { idempotent, IDEMPOTENCY_TTL_MS, requestHash } from './idempotency.js';
export { JOB_ERRORS, JobError, type JobErrorCode } from './job-errors.js';
export { DEVICE_RUN_QUEUE, openJobQueue, pgliteExecuteSql } from './job-queue.js';
export {
  type DeviceRunChange,
  DEFAULT_JOB_TIMEOUTS,
  DEFAULT_STEP_RETRY,
  type JobChange,
  type JobEvents,
  JobRunner,
  type JobRunnerOptions,
} from './job-runner.js';
export { JobTraceIndex, type JobTraceIndexOptions, TRACES_CHANNEL } from './job-trace-index.js';
export {
  DECOMMISSION_STEPS,
  type JobCounts,
  type JobDeviceView,
  type JobStepView,
  JobStore,
  type JobView,
  POWER_STEPS,
  PROVISION_STEPS,
} from './job-store.js';
export { type JobTimeouts, profileInstallerImage } from './device-steps.js';
export { jobRoutes, type JobRoutesOptions, MAX_JOB_DEVICES } from './routes/jobs.js';
