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
  /** Device runs of jobs (bootstrap/job-runner.ts). */
  jobsStarted: Counter;
  jobsFinished: Counter;
  provisioningDuration: Histogram;
  jobStepDuration: Histogram;
}

/** Seconds buckets for RESTCONF latency: 1 ms … 10 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds buckets for provisioning and its steps: 100 ms (a preflight) … 2 h (a slow BFB install). */
const PROVISIONING_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

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
      description:
        'Device runs of jobs started (a job of N devices counts N; a retry counts again), by job kind',
    }),
    jobsFinished: m.createCounter(Metric.jobsFinished, {
      description: 'Device runs of jobs finished, by job kind, outcome, strategy and vendor profile',
    }),
    provisioningDuration: m.createHistogram(Metric.provisioningDuration, {
      description:
        'Device run duration (first step to finish), by job kind, outcome, strategy and vendor profile',
      unit: 's',
      advice: { explicitBucketBoundaries: PROVISIONING_BUCKETS },
    }),
    jobStepDuration: m.createHistogram(Metric.jobStepDuration, {
      description: 'Device run step duration, by job kind, step, outcome, strategy and vendor profile',
      unit: 's',
      advice: { explicitBucketBoundaries: PROVISIONING_BUCKETS },
    }),
  };
  set.writeBehindDepth.addCallback(observeWriteBehindQueues);
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

/** Options of {@link observeDevicesByState}. */
export interface DevicesByStateOptions {
  /** Reuse a read this long before querying again (default 5 s): scrapes and OTLP pushes share one query. */
  maxAgeMs?: number;
  /** Wait at most this long for the query at a collection (default 1 s); the last values are reported then. */
  timeoutMs?: number;
  /** Report these states as 0 when no device is in them, so a panel's series do not vanish. */
  states?: readonly string[];
}

/** Values older than this are not reported at all (the database has been away for a minute). */
const DEVICES_STALE_MS = 60_000;

/**
 * Reports devices by state from `read` (one grouped count query) at each
 * collection; returns the function that stops it. Cheap: a read is reused for
 * `maxAgeMs`, concurrent collections share one query in flight, and a slow
 * database costs a scrape at most `timeoutMs` (the last values are reported).
 * A failed read reports the last values (at most a minute old) rather than
 * failing the scrape.
 */
export function observeDevicesByState(
  read: () => Promise<ReadonlyArray<{ state: string; count: number }>>,
  options: DevicesByStateOptions = {},
): () => void {
  const maxAgeMs = options.maxAgeMs ?? 5_000;
  const timeoutMs = options.timeoutMs ?? 1_000;
  const gauge = instruments().devicesByState;
  let last: { at: number; rows: ReadonlyArray<{ state: string; count: number }> } | undefined;
  let inflight: Promise<void> | undefined;
  const cb = async (result: { observe(v: number, a?: Attributes): void }) => {
    if (!last || Date.now() - last.at >= maxAgeMs) {
      inflight ??= read()
        .then((rows) => {
          last = { at: Date.now(), rows };
        })
        .catch(() => undefined) // the database is down: /readyz says so; the scrape still answers
        .finally(() => {
          inflight = undefined;
        });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        inflight,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    if (!last || Date.now() - last.at > DEVICES_STALE_MS) return;
    const seen = new Set<string>();
    for (const row of last.rows) {
      seen.add(row.state);
      result.observe(row.count, { [MetricAttr.state]: row.state });
    }
    for (const state of options.states ?? [])
      if (!seen.has(state)) result.observe(0, { [MetricAttr.state]: state });
  };
  gauge.addCallback(cb);
  return () => gauge.removeCallback(cb);
}

/** A write-behind queue as the depth gauge sees it. */
export interface QueueDepth {
  /** Rows waiting for the database now. */
  readonly depth: number;
}

/**
 * Live write-behind queues by name. Held weakly: a queue that is gone (its
 * service closed, a test's instance collected) drops out without anyone
 * having to unregister it.
 */
const writeBehindQueues = new Map<string, Set<WeakRef<QueueDepth>>>();

/**
 * Counts `source` in the `dpu_ztp.write_behind.depth` gauge under `queue` (the
 * queues of the same name are summed). Registered for the queue's life; the
 * gauge reads `source.depth` at each collection only.
 */
export function registerWriteBehindQueue(queue: string, source: QueueDepth): void {
  let set = writeBehindQueues.get(queue);
  if (!set) {
    set = new Set();
    writeBehindQueues.set(queue, set);
  }
  set.add(new WeakRef(source));
  // Its drop counter starts at 0: a series that first appears at 1 shows no rate until it moves again.
  instruments().writeBehindDropped.add(0, queueAttrs(queue));
}

const queueAttrCache = new Map<string, Attributes>();
function queueAttrs(queue: string): Attributes {
  let a = queueAttrCache.get(queue);
  if (!a) {
    a = Object.freeze({ [MetricAttr.queue]: queue });
    queueAttrCache.set(queue, a);
  }
  return a;
}

/** Counts `n` rows of `queue` dropped (the database refused them or could not keep up). */
export function recordWriteBehindDrops(queue: string, n: number): void {
  if (n > 0) instruments().writeBehindDropped.add(n, queueAttrs(queue));
}

function observeWriteBehindQueues(result: { observe(v: number, a?: Attributes): void }): void {
  for (const [queue, refs] of writeBehindQueues) {
    let depth = 0;
    for (const ref of refs) {
      const q = ref.deref();
      if (q) depth += q.depth;
      else refs.delete(ref);
    }
    result.observe(depth, queueAttrs(queue));
  }
}

const redfishAttrCache = new Map<string, Attributes>();
/** The frozen `{vendor_profile, method}` attributes of a Redfish request. */
export function redfishRequestAttrs(vendorProfile: string, method: string): Attributes {
  const key = `r\0${vendorProfile}\0${method}`;
  let a = redfishAttrCache.get(key);
  if (!a) {
    a = Object.freeze({ [MetricAttr.vendorProfile]: vendorProfile, [MetricAttr.method]: method });
    redfishAttrCache.set(key, a);
  }
  return a;
}

/** The frozen `{vendor_profile, error_type}` attributes of a failed Redfish request. */
export function redfishErrorAttrs(vendorProfile: string, errorType: string): Attributes {
  const key = `e\0${vendorProfile}\0${errorType}`;
  let a = redfishAttrCache.get(key);
  if (!a) {
    a = Object.freeze({ [MetricAttr.vendorProfile]: vendorProfile, [MetricAttr.errorType]: errorType });
    redfishAttrCache.set(key, a);
  }
  return a;
}

/** The frozen `{vendor_profile}` attributes of a Redfish retry. */
export function redfishRetryAttrs(vendorProfile: string): Attributes {
  const key = `t\0${vendorProfile}`;
  let a = redfishAttrCache.get(key);
  if (!a) {
    a = Object.freeze({ [MetricAttr.vendorProfile]: vendorProfile });
    redfishAttrCache.set(key, a);
  }
  return a;
}
