/** Public face of `otel/`: names, span helpers and metric instruments (API only; the SDK is `otel/sdk.ts`, for `cli/`). */
export {
  activeTraceparent,
  Attr,
  INSTRUMENTATION_SCOPE,
  Metric,
  MetricAttr,
  recordSpanError,
  UNKNOWN_LABEL,
  redactUrl,
  SpanName,
  tracer,
  withSpan,
} from './conventions.js';
export {
  type DevicesByStateOptions,
  type Instruments,
  instruments,
  listenerAttrs,
  observeDevicesByState,
  progressAttrs,
  type QueueDepth,
  recordWriteBehindDrops,
  redfishErrorAttrs,
  redfishRequestAttrs,
  redfishRetryAttrs,
  registerWriteBehindQueue,
  restconfAttrs,
} from './metrics.js';
