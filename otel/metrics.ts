/**
 * Every metric instrument of dpu-ztp, defined once (names in `Metric` of
 * conventions.ts). Recorded through `@opentelemetry/api` only; exported over
 * OTLP and as `GET /metrics` when `otel/sdk.ts` was started, a no-op otherwise.
 *
 * Hot paths (RESTCONF, image reads) record with attribute objects built once
 * (`restconfAttrs`, `listenerAttrs`): no object is allocated per request.
 *
 * The API has no proxy for meters: an instrument made before the SDK was
 * registered stays a no-op. {@link instruments} therefore re-creates its set
 * when the global meter provider changed; callers take it once at
 * construction (after the CLI started the SDK), not per request.
 */
import {
  type Attributes,
  type Counter,
  type Histogram,
  type MeterProvider,
  metrics,
  type ObservableGauge,
  type UpDownCounter,
} from '@opentelemetry/api';
import { INSTRUMENTATION_SCOPE, Metric, MetricAttr } from './conventions.js';

/** The instruments; see README "Metrics" for each one's attributes. */
export interface Instruments {
  restconfRequests: Counter;
  restconfDuration: Histogram;
  progressReports: Counter;
  imageBytesSent: Counter;
  imageActiveDownloads: UpDownCounter;
  redfishRequests: Counter;
  redfishErrors: Counter;
  redfishRetries: Counter;
  writeBehindDropped: Counter;
  writeBehindDepth: ObservableGauge;
  devicesByState: ObservableGauge;
  /** Provisioning jobs (recorded by the jobs code once it lands). */
  jobsStarted: Counter;
  jobsFinished: Counter;
  provisioningDuration: Histogram;
  jobStepDuration: Histogram;
}

/** Seconds buckets for RESTCONF latency: 1 ms … 10 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds buckets for provisioning and its steps: 1 s … 2 h. */
const PROVISIONING_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

let cached: { provider: MeterProvider; set: Instruments } | undefined;

/** The instruments on the current global meter provider (created once per provider). */
export function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (cached?.provider === provider) return cached.set;
  const m = provider.getMeter(INSTRUMENTATION_SCOPE);
  const set: Instruments = {
    restconfRequests: m.createCounter(Metric.restconfRequests, {
      description: 'RESTCONF requests by RPC and outcome',
    }),
    restconfDuration: m.createHistogram(Metric.restconfDuration, {
      description: 'RESTCONF request duration by RPC and outcome',
      unit: 's',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
    }),
    progressReports: m.createCounter(Metric.progressReports, {
      description: 'sZTP progress reports accepted, by progress type',
    }),
    imageBytesSent: m.createCounter(Metric.imageBytesSent, {
      description: 'Image bytes written to clients, by listener',
      unit: 'By',
    }),
    imageActiveDownloads: m.createUpDownCounter(Metric.imageActiveDownloads, {
      description: 'Image requests in flight, by listener',
    }),
    redfishRequests: m.createCounter(Metric.redfishRequests, {
      description: 'Redfish requests by vendor profile and method',
    }),
    redfishErrors: m.createCounter(Metric.redfishErrors, {
      description: 'Redfish requests that failed, by vendor profile and error type',
    }),
    redfishRetries: m.createCounter(Metric.redfishRetries, {
      description: 'Redfish request retries, by vendor profile',
    }),
    writeBehindDropped: m.createCounter(Metric.writeBehindDropped, {
      description: 'Write-behind rows dropped (database slow or down), by queue',
    }),
    writeBehindDepth: m.createObservableGauge(Metric.writeBehindDepth, {
      description: 'Write-behind rows waiting for the database, by queue',
    }),
    devicesByState: m.createObservableGauge(Metric.devices, {
      description: 'Registered devices by lifecycle state',
    }),
    jobsStarted: m.createCounter(Metric.jobsStarted, {
      description: 'Provisioning jobs started, by strategy and vendor profile',
    }),
    jobsFinished: m.createCounter(Metric.jobsFinished, {
      description: 'Provisioning jobs finished, by outcome, strategy and vendor profile',
    }),
    provisioningDuration: m.createHistogram(Metric.provisioningDuration, {
      description: 'Whole device provisioning duration, by outcome, strategy and vendor profile',
      unit: 's',
      advice: { explicitBucketBoundaries: PROVISIONING_BUCKETS },
    }),
    jobStepDuration: m.createHistogram(Metric.jobStepDuration, {
      description: 'Provisioning step duration, by step, outcome, strategy and vendor profile',
      unit: 's',
      advice: { explicitBucketBoundaries: PROVISIONING_BUCKETS },
    }),
  };
  cached = { provider, set };
  return set;
}

const restconfAttrCache = new Map<string, Attributes>();
/** The frozen attribute object for one (rpc, outcome) pair; built once, reused per request. */
export function restconfAttrs(rpc: string, outcome: string): Attributes {
  const key = `${rpc}\0${outcome}`;
  let a = restconfAttrCache.get(key);
  if (!a) {
    a = Object.freeze({ [MetricAttr.rpc]: rpc, [MetricAttr.outcome]: outcome });
    restconfAttrCache.set(key, a);
  }
  return a;
}

const progressAttrCache = new Map<string, Attributes>();
/** The frozen attribute object for one progress type. */
export function progressAttrs(progressType: string): Attributes {
  let a = progressAttrCache.get(progressType);
  if (!a) {
    a = Object.freeze({ [MetricAttr.progressType]: progressType });
    progressAttrCache.set(progressType, a);
  }
  return a;
}

/** The frozen attribute object for an image listener. */
export const listenerAttrs: Readonly<Record<'http' | 'https', Attributes>> = Object.freeze({
  http: Object.freeze({ [MetricAttr.listener]: 'http' }),
  https: Object.freeze({ [MetricAttr.listener]: 'https' }),
});

/**
 * Reports devices by state from `read` (one grouped count query) at each
 * collection; returns the function that stops it. A failed read reports nothing
 * for that collection rather than failing the scrape.
 */
export function observeDevicesByState(
  read: () => Promise<ReadonlyArray<{ state: string; count: number }>>,
): () => void {
  const gauge = instruments().devicesByState;
  const cb = async (result: { observe(v: number, a?: Attributes): void }) => {
    try {
      for (const row of await read()) result.observe(row.count, { [MetricAttr.state]: row.state });
    } catch {
      // the database is down: /readyz says so; the scrape still answers
    }
  };
  gauge.addCallback(cb);
  return () => gauge.removeCallback(cb);
}

/** Reports a write-behind queue's depth (`queue` names it) at each collection; returns the stop function. */
export function observeWriteBehindDepth(queue: string, depth: () => number): () => void {
  const gauge = instruments().writeBehindDepth;
  const attrs = Object.freeze({ [MetricAttr.queue]: queue });
  const cb = (result: { observe(v: number, a?: Attributes): void }) => result.observe(depth(), attrs);
  gauge.addCallback(cb);
  return () => gauge.removeCallback(cb);
}
