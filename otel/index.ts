/** Public face of `otel/`: names, span helpers and metric instruments (API only; the SDK is `otel/sdk.ts`, for `cli/`). */
export {
  activeTraceparent,
  Attr,
  INSTRUMENTATION_SCOPE,
  Metric,
  MetricAttr,
  recordSpanError,
  redactUrl,
  SpanName,
  tracer,
  withSpan,
} from './conventions.js';
export {
  type Instruments,
  instruments,
  listenerAttrs,
  observeDevicesByState,
  observeWriteBehindDepth,
  progressAttrs,
  restconfAttrs,
} from './metrics.js';
