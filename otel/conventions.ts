/**
 * Span, attribute and metric names used across dpu-ztp. One module so that
 * dashboards, tests and code agree on every name (DESIGN.md, Telemetry).
 *
 * Libraries use `@opentelemetry/api` only; the SDK is wired in `otel/sdk.ts`
 * by the CLI. With no SDK registered, every call below is a cheap no-op.
 */
import {
  type Context,
  context,
  type Link,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';

/** Instrumentation scope name for every tracer and meter in the project. */
export const INSTRUMENTATION_SCOPE = 'dpu-ztp';

/** Attribute keys (semantic-convention style, project namespace `dpu_ztp.`). */
export const Attr = {
  deviceSerial: 'dpu_ztp.device.serial',
  profile: 'dpu_ztp.profile',
  jobId: 'dpu_ztp.job.id',
  jobStep: 'dpu_ztp.job.step',
  image: 'dpu_ztp.image.name',
  bmcUrl: 'dpu_ztp.bmc.url',
  bmcVendorProfile: 'dpu_ztp.bmc.profile',
  redfishMethod: 'dpu_ztp.redfish.method',
  redfishPath: 'dpu_ztp.redfish.path',
  sztpRpc: 'dpu_ztp.sztp.rpc',
  sztpProgressType: 'dpu_ztp.sztp.progress_type',
  sztpSource: 'dpu_ztp.sztp.source',
  errorCode: 'dpu_ztp.error.code',
  pkiOperation: 'dpu_ztp.pki.operation',
  redfishStatus: 'dpu_ztp.redfish.status',
  redfishAttempts: 'dpu_ztp.redfish.attempts',
  redfishStrategy: 'dpu_ztp.redfish.strategy',
  redfishStep: 'dpu_ztp.redfish.step',
  redfishSystem: 'dpu_ztp.redfish.system',
  imageListener: 'dpu_ztp.image.listener',
  imageRange: 'dpu_ztp.image.range',
  imageBytesSent: 'dpu_ztp.image.bytes_sent',
  imageSize: 'dpu_ztp.image.size',
  httpStatusCode: 'http.response.status_code',
  // OpenTelemetry semantic conventions (used as-is where one exists).
  httpRequestMethod: 'http.request.method',
  httpRoute: 'http.route',
  urlPath: 'url.path',
  urlFull: 'url.full',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  dbSystem: 'db.system.name',
  dbOperation: 'db.operation.name',
  errorType: 'error.type',
  // dpu_ztp.* for the rest.
  redfishMessageId: 'dpu_ztp.redfish.message_id',
  redfishAttempt: 'dpu_ztp.redfish.attempt',
  jobStrategy: 'dpu_ztp.job.strategy',
  imageToken: 'dpu_ztp.image.token_matched',
  // Trace join (issue 14).
  processExitCode: 'process.exit.code',
  jobAttempt: 'dpu_ztp.job.attempt',
  jobKind: 'dpu_ztp.job.kind',
  jobResumed: 'dpu_ztp.job.resumed',
  sztpScript: 'dpu_ztp.sztp.script',
  sztpJoined: 'dpu_ztp.sztp.job_joined',
  imageBytesReceived: 'dpu_ztp.image.bytes_received',
  imageDownloadResumes: 'dpu_ztp.image.download_resumes',
  exceptionMessage: 'exception.message',
} as const;

/**
 * Span names (issue 14: one trace per provisioning job per device). Spans
 * named elsewhere in code by literal use these same strings; README lists them.
 */
export const SpanName = {
  /** The device run's root: recorded (and ended) when the run is first claimed; its context is stored with the run. */
  jobRun: 'dpu-ztp.job.run',
  /** One replica driving the run (`dpu-ztp.job.<kind>`), a child of the root; a resumed run adds another. */
  jobDrive: (kind: string) => `dpu-ztp.job.${kind}`,
  /** One step attempt, a child of the drive span. */
  jobStep: (step: string) => `dpu-ztp.job.step.${step}`,
  redfishRequest: 'redfish.request',
  imageServe: 'image.serve',
  getBootstrappingData: 'sztp.get-bootstrapping-data',
  reportProgress: 'sztp.report-progress',
  agentSource: 'sztp-client.source',
  agentBootstrap: 'sztp-client.bootstrap',
  agentVerify: 'sztp-client.verify',
  agentGetBootstrappingData: 'sztp-client.get-bootstrapping-data',
  agentReportProgress: 'sztp-client.report-progress',
  agentOnboard: 'sztp-client.onboard',
  agentBootImage: 'sztp-client.boot-image',
  agentDownload: 'sztp-client.download',
  agentInstall: 'sztp-client.install',
  agentScript: 'sztp-client.script',
  agentConfig: 'sztp-client.config',
} as const;

/**
 * A URL fit for a span attribute: no user name or password (never credentials
 * in telemetry), no query (it may carry tokens), no fragment.
 */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString();
  } catch {
    return '';
  }
}

/**
 * Metric names (OTLP form; the Prometheus scrape writes `.` as `_`, adds the
 * `_total` on counters (no unit suffix). README, Metrics.
 */
export const Metric = {
  restconfRequests: 'dpu_ztp.restconf.requests',
  restconfDuration: 'dpu_ztp.restconf.duration',
  progressReports: 'dpu_ztp.sztp.progress_reports',
  imageBytesSent: 'dpu_ztp.image.bytes_sent',
  imageActiveDownloads: 'dpu_ztp.image.active_downloads',
  redfishRequests: 'dpu_ztp.redfish.requests',
  redfishErrors: 'dpu_ztp.redfish.errors',
  redfishRetries: 'dpu_ztp.redfish.retries',
  writeBehindDropped: 'dpu_ztp.write_behind.dropped',
  writeBehindDepth: 'dpu_ztp.write_behind.depth',
  devices: 'dpu_ztp.devices',
  jobsStarted: 'dpu_ztp.jobs.started',
  jobsFinished: 'dpu_ztp.jobs.finished',
  provisioningDuration: 'dpu_ztp.provisioning.duration',
  jobStepDuration: 'dpu_ztp.job.step.duration',
} as const;

/** Metric attribute keys (short: they become Prometheus labels). */
export const MetricAttr = {
  rpc: 'rpc',
  outcome: 'outcome',
  progressType: 'progress_type',
  listener: 'listener',
  vendorProfile: 'vendor_profile',
  method: 'method',
  errorType: 'error_type',
  queue: 'queue',
  state: 'state',
  step: 'step',
  strategy: 'strategy',
  kind: 'kind',
} as const;

/** Label value when a strategy or vendor profile is not known (yet): before preflight, a BMC not probed. */
export const UNKNOWN_LABEL = 'unknown';
/**
 * The W3C `traceparent` of the active span when it is a real (sampled or not) span, for requests
 * the code sends by hand; undefined with no SDK (the no-op span has invalid ids).
 */
export function activeTraceparent(): string | undefined {
  const sc = trace.getActiveSpan()?.spanContext();
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
}

/** Returns the project's tracer (no-op until the SDK is started). */
export function tracer(): Tracer {
  return trace.getTracer(INSTRUMENTATION_SCOPE);
}

/** Marks `span` as failed by `err`: its stable code (if any), the exception, an error status. */
export function recordSpanError(span: Span, err: unknown): void {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') span.setAttribute(Attr.errorCode, code);
  span.recordException(err as Error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
}

/**
 * Runs `fn` inside an active span named `name`; records an exception and an
 * error status when `fn` throws (the error is re-thrown unchanged). Telemetry
 * never changes the outcome of the work it observes. `where.parent` (default the
 * active context) and `where.links` place it in a trace.
 */
export async function withSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean | undefined>,
  fn: (span: Span) => Promise<T>,
  where: { parent?: Context; links?: Link[] } = {},
): Promise<T> {
  const options = where.links?.length ? { links: where.links } : {};
  return tracer().startActiveSpan(name, options, where.parent ?? context.active(), async (span) => {
    for (const [k, v] of Object.entries(attributes)) if (v !== undefined) span.setAttribute(k, v);
    try {
      return await fn(span);
    } catch (err) {
      recordSpanError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}
