/**
 * The standard `OTEL_*` settings as both SDK set-ups read them (`sdk.ts` for the
 * service and `bmc …`, `agent-sdk.ts` for the device agent). Imports only the
 * trace SDK's samplers, so the agent bundle does not carry the metrics SDK.
 */
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';

/** Environment as the CLI hands it over (`process.env`). */
export type TelemetryEnv = Readonly<Record<string, string | undefined>>;

/** How long a shutdown may take before it gives up on flushing. */
export const SHUTDOWN_BUDGET_MS = 2_000;
/** Per-export cut-off: a collector that hangs costs at most this per batch. */
export const EXPORT_TIMEOUT_MS = 1_000;
/** Bounded span queue; beyond it spans are dropped (and counted), never buffered. */
export const MAX_QUEUE_SIZE = 2_048;

export function flag(v: string | undefined): boolean {
  return v !== undefined && v.trim().toLowerCase() === 'true';
}

/** `k1=v1,k2=v2` (W3C baggage-style, percent-encoded values) as used by `OTEL_RESOURCE_ATTRIBUTES` and `*_HEADERS`. */
export function parseKeyValueList(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      // keep the raw text: a malformed escape must not stop the service
    }
    if (key) out[key] = value;
  }
  return out;
}

/** The sampler `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` name (default `parentbased_always_on`). */
export function samplerFromEnv(env: TelemetryEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const arg = Number.parseFloat(env.OTEL_TRACES_SAMPLER_ARG ?? '');
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1;
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** The signal URL: the per-signal endpoint as given, else `<endpoint>/v1/<signal>` (OTLP exporter spec). */
export function signalUrl(env: TelemetryEnv, signal: 'traces' | 'metrics'): string | undefined {
  const specific = env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`]?.trim();
  if (specific) return specific;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!base) return undefined;
  return `${base.replace(/\/+$/, '')}/v1/${signal}`;
}

export function protocol(env: TelemetryEnv, signal: 'traces' | 'metrics'): 'http/protobuf' | 'http/json' {
  const p = (
    env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`] ??
    env.OTEL_EXPORTER_OTLP_PROTOCOL ??
    ''
  )
    .trim()
    .toLowerCase();
  return p === 'http/json' ? 'http/json' : 'http/protobuf';
}

export function exporterHeaders(env: TelemetryEnv, signal: 'traces' | 'metrics'): Record<string, string> {
  return {
    ...parseKeyValueList(env.OTEL_EXPORTER_OTLP_HEADERS),
    ...parseKeyValueList(env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_HEADERS`]),
  };
}

/** Races `p` against the remaining budget; never rejects. */
export async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
