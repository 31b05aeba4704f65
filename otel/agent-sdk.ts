/**
 * The OpenTelemetry trace SDK for the device agent (`sztp-client run`): the
 * real SDK (`@opentelemetry/sdk-trace`, the OTLP/HTTP JSON trace exporter),
 * bundled by esbuild into the one-file agent — traces only, so the bundle
 * carries neither the metrics SDK nor protobuf. Started by `cli/` only.
 *
 * Configured by the standard `OTEL_*` variables: with no
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or traces endpoint), `OTEL_SDK_DISABLED=true`
 * or `OTEL_TRACES_EXPORTER=none` nothing is registered and spans stay the API's
 * no-op. The agent always sends OTLP/JSON (`http/json`), whatever
 * `OTEL_EXPORTER_OTLP_PROTOCOL` says: every OTLP/HTTP receiver takes both, and
 * the protobuf encoder would double the agent's size. Export never holds the
 * agent up: a bounded queue (2 048 spans, then drops), 1 s per export, and
 * {@link AgentTelemetry.shutdown} gives up after 2 s.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import {
  bounded,
  EXPORT_TIMEOUT_MS,
  exporterHeaders,
  flag,
  MAX_QUEUE_SIZE,
  parseKeyValueList,
  SHUTDOWN_BUDGET_MS,
  samplerFromEnv,
  signalUrl,
  type TelemetryEnv,
} from './sdk-env.js';

/** A started (or inert) agent trace SDK. */
export interface AgentTelemetry {
  /** Spans are exported. */
  readonly tracing: boolean;
  /** Flushes queued spans and stops; resolves within 2 s even when the collector hangs. */
  shutdown(): Promise<void>;
}

/** Starts the agent's trace SDK from `OTEL_*` settings (service name default `sztp-client`). */
export function startAgentTelemetry(options: {
  env: TelemetryEnv;
  serviceVersion?: string;
  /** Resource attributes the agent knows (e.g. the device serial), under `OTEL_RESOURCE_ATTRIBUTES`. */
  attributes?: Record<string, string>;
}): AgentTelemetry {
  const { env } = options;
  const url =
    flag(env.OTEL_SDK_DISABLED) || (env.OTEL_TRACES_EXPORTER ?? 'otlp').trim() === 'none'
      ? undefined
      : signalUrl(env, 'traces');
  if (!url) return { tracing: false, shutdown: async () => {} };
  const resource = resourceFromAttributes({
    ...options.attributes,
    ...parseKeyValueList(env.OTEL_RESOURCE_ATTRIBUTES),
    'service.name': env.OTEL_SERVICE_NAME?.trim() || 'sztp-client',
    ...(options.serviceVersion ? { 'service.version': options.serviceVersion } : {}),
  });
  const provider = new TracerProvider({
    resource,
    sampler: samplerFromEnv(env),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({
          url,
          headers: exporterHeaders(env, 'traces'),
          timeoutMillis: EXPORT_TIMEOUT_MS,
        }),
        maxQueueSize: MAX_QUEUE_SIZE,
        maxExportBatchSize: 512,
        scheduledDelayMillis: 1_000,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  let stopping: Promise<void> | undefined;
  return {
    tracing: true,
    shutdown() {
      stopping ??= bounded(provider.shutdown(), SHUTDOWN_BUDGET_MS);
      return stopping;
    },
  };
}
