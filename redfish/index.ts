/**
 * Public face of `redfish/`: the Redfish client, the neutral vocabulary, vendor
 * profiles, provisioning strategies, the BMC check, and the BMC emulator.
 */
export {
  type AuthMode,
  type BmcTlsOptions,
  DEFAULT_CLIENT_OPTIONS,
  RedfishClient,
  type RedfishClientOptions,
  type RedfishJson,
  type RedfishResponse,
  type RetryOptions,
} from './client.js';
export {
  isRedfishError,
  REDFISH_ERROR_CODES,
  RedfishError,
  type RedfishErrorCode,
  type RedfishMessage,
} from './errors.js';
export {
  BmcMessageLog,
  type LoggedBmcMessage,
  MESSAGE_LOG_DEFAULTS,
  type MessageLogOptions,
} from './message-log.js';
export { SessionCache } from './session-cache.js';
export { backoffDelay, type PollOptions, sleep } from './wait.js';
export * from './vocabulary.js';
export {
  type BmcEmulator,
  type BmcEmulatorOptions,
  type BootEvent,
  type RecordedRequest,
  startBmcEmulator,
} from './emulator/server.js';
export { EMULATOR_PERSONAS, type EmulatorPersona, type EmulatorPersonaId } from './emulator/personas.js';
export { EMULATOR_FAULTS, type EmulatorFaultName, type FaultRule, type FaultSet } from './emulator/faults.js';
export {
  defineProfile,
  PROFILE_DEFAULTS,
  profileById,
  selectProfile,
  VENDOR_PROFILES,
  type BmcIdentity,
  type HookContext,
  type InsertFields,
  type VendorProfile,
  type VendorProfileSpec,
} from './profiles/index.js';
export {
  type BmcProbe,
  chooseSystem,
  type InsertMethod,
  type ManagerInfo,
  type MediaSlotInfo,
  type ProbeOptions,
  probeBmc,
  type SystemInfo,
  type UpdateInfo,
} from './probe.js';
export { assessStrategies, cdSlots, type StrategyAssessment } from './strategies/assess.js';
export { planReboot, readPower, rebootAndConfirm, waitForPower } from './strategies/power.js';
export {
  DEFAULT_WAITS,
  type ImageSpec,
  type PhaseCheckpoint,
  type ResetHooks,
  runStep,
  STRATEGY_ORDER,
  type StrategyContext,
  type StrategyPhases,
  type StepEvent,
  type StrategyName,
  type StrategyWaits,
} from './strategies/context.js';
export {
  chooseStrategy,
  type FinishOptions,
  finishProvisioning,
  isStrategyFailure,
  mergeWaits,
  STRATEGY_PHASES,
  teardown,
  undoAttempt,
  type ProvisionOptions,
  type ProvisionResult,
  provisionBmc,
  type StrategyAttempt,
  strategyCandidates,
} from './provision.js';
export { type BmcCheckReport, type CheckOptions, checkBmc } from './check.js';
export {
  type DiscoveredBmc,
  type DiscoveredSystem,
  type DiscoverOptions,
  discoverBmcs,
  expandAddressRange,
  MAX_DISCOVERY_ADDRESSES,
  probeAddress,
} from './discover.js';
export { KEPT_CONTINUOUS } from './strategies/boot.js';
