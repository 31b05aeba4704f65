/** Public face of `otel/`: names and span helpers (API only). */
export { Attr, INSTRUMENTATION_SCOPE, recordSpanError, tracer, withSpan } from './conventions.js';
