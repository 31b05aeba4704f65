/**
 * Span, attribute and metric names used across dpu-ztp. One module so that
 * dashboards, tests and code agree on every name (DESIGN.md, Telemetry).
 *
 * Libraries use `@opentelemetry/api` only; the SDK is wired in `otel/sdk.ts`
 * by the CLI. With no SDK registered, every call below is a cheap no-op.
 */
import { type Span, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';

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
} as const;

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
 * never changes the outcome of the work it observes.
 */
export async function withSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean | undefined>,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer().startActiveSpan(name, async (span) => {
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
