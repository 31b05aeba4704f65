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
  JOB_EVENT_TYPES,
  type JobEventInput,
  typeMatches,
  type WakeSource,
} from './events.js';
export { type EventRoutesOptions, eventRoutes } from './routes/events.js';
export { type WebhookRoutesOptions, webhookRoutes } from './routes/webhooks.js';
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
export { type BmcInput, BmcStore, type BmcTarget, type BmcView, bmcView } from './bmc-store.js';
export {
  loadOrCreateSecretKeyFile,
  parseSecretKey,
  SecretBox,
  SecretKeyError,
} from './secrets.js';
export { API_ERRORS, ApiError, type ApiErrorCode, problem } from './errors.js';
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
export { createToken, ensureAdminToken, findToken, hashToken, ROLES, roleAllows } from './tokens.js';
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
