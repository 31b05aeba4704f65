/**
 * The OpenTelemetry SDK: the only module that imports it (DESIGN.md, import
 * table). `cli/` starts it for `serve`, `bmc …` and the agent's `run`; every
 * other module records through `@opentelemetry/api`, which stays a no-op when
 * this was not started.
 *
 * Configured only by the standard `OTEL_*` variables, read from the `env`
 * object the CLI passes in (only `cli/` reads `process.env`):
 * - no `OTEL_EXPORTER_OTLP_ENDPOINT` (nor a per-signal endpoint): no tracer
 *   provider is registered at all, so spans stay the API's no-op and cost
 *   nothing; metrics are only collected for the Prometheus scrape endpoint.
 * - a collector that is down never slows or fails work: spans go through a
 *   bounded batch queue (drops counted as `otel.sdk.processor.span.processed`
 *   with `error.type=queue_full`), each export is cut after 1 s, and
 *   {@link Telemetry.shutdown} gives up after 2 s.
 * - instrumentations (`instrument: true`, `serve` only, and only while spans
 *   are exported): `@fastify/otel` for the operator API's `/api/` routes and
 *   undici for outgoing requests other than Redfish (webhook deliveries) —
 *   the spans nobody else writes. Both hook in through `diagnostics_channel`,
 *   so no ESM loader hook is needed. The pg instrumentation is left out: it
 *   patches `require('pg')`, which an ESM `import` never calls (README).
 */
import {
  context,
  type DiagLogger,
  diag,
  DiagLogLevel,
  metrics,
  propagation,
  trace,
} from '@opentelemetry/api';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter as OTLPMetricExporterJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OTLPMetricExporterProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter as OTLPTraceExporterJson } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPTraceExporterProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { UndiciInstrumentation, type UndiciRequest } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import {
  bounded,
  EXPORT_TIMEOUT_MS,
  exporterHeaders,
  flag,
  MAX_QUEUE_SIZE,
  parseKeyValueList,
  protocol,
  SHUTDOWN_BUDGET_MS,
  samplerFromEnv,
  signalUrl,
  type TelemetryEnv,
} from './sdk-env.js';

export { parseKeyValueList, SHUTDOWN_BUDGET_MS, samplerFromEnv, signalUrl, type TelemetryEnv };

export interface TelemetryOptions {
  /** Usually `process.env`; only `OTEL_*` keys are read. */
  env: TelemetryEnv;
  /** `service.name` when `OTEL_SERVICE_NAME` is not set (e.g. `dpu-ztp`, `sztp-client`). */
  defaultServiceName: string;
  /** `service.version` resource attribute. */
  serviceVersion?: string;
  /** Collect metrics for a Prometheus scrape (`GET /metrics`). */
  prometheus?: boolean;
  /** Where SDK diagnostics (export failures) go; silent by default. */
  diagLogger?: DiagLogger;
  /**
   * Turn on the HTTP instrumentations (operator API server spans, outgoing non-Redfish requests)
   * when spans are exported. For `serve`; off elsewhere (an emulated BMC must not send traceparent).
   */
  instrument?: boolean;
}

/** An instrumentation as the SDK drives it (enable on start, disable on shutdown). */
interface Instrumentation {
  disable(): void;
}

/**
 * Whether an outgoing undici request is a Redfish request: the Redfish client sends `OData-Version`
 * on every request and writes its own `redfish.request` / `redfish.session.login` spans.
 */
export function isRedfishRequest(req: Pick<UndiciRequest, 'headers'>): boolean {
  const h = req.headers;
  if (typeof h === 'string') return /(^|\r\n)odata-version:/i.test(h);
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    if (typeof name === 'string' && name.toLowerCase() === 'odata-version') return true;
  }
  return false;
}

/**
 * The instrumentations that add spans nobody else writes. Each subscribes to `diagnostics_channel`
 * (fastify's `fastify.initialization`, undici's `undici:request:*`), so they work under ESM without
 * loader hooks and must be on before the servers are built (the CLI starts the SDK first).
 */
function startInstrumentations(): Instrumentation[] {
  return [
    new FastifyOtelInstrumentation({
      registerOnInitialization: true,
      // Device RESTCONF and image routes write their own spans (joined to the job's trace); the
      // operator listener's /metrics, /healthz, /readyz would be noise. Only /api/ is traced here.
      ignorePaths: (route) => !route.url.startsWith('/api/'),
      // One span per request and its handler; no span per hook.
      instrumentHooks: false,
    }),
    new UndiciInstrumentation({ ignoreRequestHook: isRedfishRequest }),
  ];
}

/** A started (or deliberately inert) SDK. */
export interface Telemetry {
  /** Spans are exported (an endpoint is configured and the SDK is enabled). */
  readonly tracing: boolean;
  /** Metrics are pushed over OTLP. */
  readonly otlpMetrics: boolean;
  /** Prometheus text exposition of the current metrics; undefined when not collected. */
  readonly scrape?: () => Promise<string>;
  /** Flushes and stops; resolves within {@link SHUTDOWN_BUDGET_MS} even if a collector hangs. */
  shutdown(): Promise<void>;
}

/** A pull-only reader: collects when `/metrics` is scraped, never on a timer. */
class ScrapeReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/**
 * Starts the SDK from `OTEL_*` settings and registers it with the API
 * globals. Call once per process, before the work it should observe.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const { env } = options;
  if (flag(env.OTEL_SDK_DISABLED)) {
    return { tracing: false, otlpMetrics: false, shutdown: async () => {} };
  }
  if (options.diagLogger) diag.setLogger(options.diagLogger, DiagLogLevel.WARN);

  const resource = resourceFromAttributes({
    ...parseKeyValueList(env.OTEL_RESOURCE_ATTRIBUTES),
    'service.name': env.OTEL_SERVICE_NAME?.trim() || options.defaultServiceName,
    ...(options.serviceVersion ? { 'service.version': options.serviceVersion } : {}),
  });

  // Metrics: a pull reader for /metrics, a periodic OTLP reader when an endpoint is set.
  const readers: MetricReader[] = [];
  let scrapeReader: ScrapeReader | undefined;
  if (options.prometheus) {
    scrapeReader = new ScrapeReader({
      aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE,
    });
    readers.push(scrapeReader);
  }
  const metricsUrl =
    (env.OTEL_METRICS_EXPORTER ?? 'otlp').trim() === 'none' ? undefined : signalUrl(env, 'metrics');
  if (metricsUrl) {
    const config = {
      url: metricsUrl,
      headers: exporterHeaders(env, 'metrics'),
      timeoutMillis: EXPORT_TIMEOUT_MS,
    };
    const exporter =
      protocol(env, 'metrics') === 'http/json'
        ? new OTLPMetricExporterJson(config)
        : new OTLPMetricExporterProto(config);
    const parsed = Number.parseInt(env.OTEL_METRIC_EXPORT_INTERVAL ?? '', 10);
    const interval = Number.isFinite(parsed) && parsed > 0 ? parsed : 60_000;
    readers.push(
      new PeriodicExportingMetricReader({
        exporter,
        exportIntervalMillis: interval,
        // the SDK requires timeout <= interval
        exportTimeoutMillis: Math.min(EXPORT_TIMEOUT_MS, interval),
      }),
    );
  }
  const meterProvider = readers.length > 0 ? new MeterProvider({ resource, readers }) : undefined;
  if (meterProvider) metrics.setGlobalMeterProvider(meterProvider);

  // Traces: only with an endpoint; otherwise the API's no-op tracer stays in place.
  const tracesUrl =
    (env.OTEL_TRACES_EXPORTER ?? 'otlp').trim() === 'none' ? undefined : signalUrl(env, 'traces');
  let tracerProvider: TracerProvider | undefined;
  if (tracesUrl) {
    const config = {
      url: tracesUrl,
      headers: exporterHeaders(env, 'traces'),
      timeoutMillis: EXPORT_TIMEOUT_MS,
    };
    const exporter =
      protocol(env, 'traces') === 'http/json'
        ? new OTLPTraceExporterJson(config)
        : new OTLPTraceExporterProto(config);
    tracerProvider = new TracerProvider({
      resource,
      sampler: samplerFromEnv(env),
      spanProcessors: [
        new BatchSpanProcessor({
          exporter,
          maxQueueSize: MAX_QUEUE_SIZE,
          maxExportBatchSize: 512,
          scheduledDelayMillis: 1_000,
          exportTimeoutMillis: EXPORT_TIMEOUT_MS,
          ...(meterProvider ? { selfObsMeterProvider: meterProvider } : {}),
        }),
      ],
    });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(tracerProvider);
  }
  // Constructed after the providers are global: an instrumentation enables itself on construction.
  const instrumentations = tracerProvider && options.instrument ? startInstrumentations() : [];

  const serializer = new PrometheusSerializer();
  const scrape = scrapeReader
    ? async () => {
        const { resourceMetrics } = await (scrapeReader as ScrapeReader).collect();
        return serializer.serialize(resourceMetrics);
      }
    : undefined;

  let stopping: Promise<void> | undefined;
  return {
    tracing: tracerProvider !== undefined,
    otlpMetrics: metricsUrl !== undefined,
    ...(scrape ? { scrape } : {}),
    shutdown() {
      for (const i of instrumentations) i.disable();
      stopping ??= bounded(
        Promise.allSettled([tracerProvider?.shutdown(), meterProvider?.shutdown()]),
        SHUTDOWN_BUDGET_MS,
      );
      return stopping;
    },
  };
}
