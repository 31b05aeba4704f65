/**
 * Public face of `sztp-client/`: the device agent (RFC 8572 §5). Discovery has
 * its own face in `discovery/index.ts`. Imports only `pki/` (verifying
 * modules), `otel/` and node builtins, so it bundles into one file.
 */
export { type AgentConfig, type AgentResult, redirectUrl, runAgent, setEnabled } from './agent.js';
export { AgentTraceContext, isTraceparent } from './trace-context.js';
export {
  type OsRelease,
  parseOsRelease,
  parseSshPublicKey,
  readOsRelease,
  readSshHostKeys,
} from './device-facts.js';
export { type Downloaded, type DownloadOptions, downloadImage } from './download.js';
export { AGENT_ERROR_CODES, AgentError, type AgentErrorCode, describeError, isAgentError } from './errors.js';
export { BOOTSTRAP_DIR_FILES, DirectorySource, StaticDataSource } from './file-source.js';
export {
  type ClientIdentity,
  HttpsSource,
  type HttpsSourceOptions,
  parseBootstrappingOutput,
  progressInput,
} from './https-source.js';
export { type AgentLog, createLog, type LogFormat, type LogLevel, silentLog } from './logger.js';
export { imageSha256, OnboardingExecutor, type OnboardingOptions, writeFileAtomic } from './onboarding.js';
export * from './ports.js';
export {
  MAX_REDIRECT_DEPTH,
  Procedure,
  type ProcedureOptions,
  type ProcedureResult,
} from './procedure.js';
export {
  describeResult,
  type ProcessOptions,
  type ProcessResult,
  runHook,
  runProcess,
  SCRIPT_WARNING_EXIT,
} from './process-runner.js';
export { type AgentState, type AttemptRecord, initialState, StateStore } from './state.js';
export { PkiVerifier, type PkiVerifierOptions } from './verifier.js';
