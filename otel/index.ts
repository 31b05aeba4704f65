/** Public face of `otel/`: names and span helpers (API only). */
export { Attr, INSTRUMENTATION_SCOPE, tracer, withSpan } from './conventions.js';
