/**
 * Joining a device's RESTCONF calls to its provisioning job's trace.
 *
 * A device knows nothing of jobs. When the server knows one is active for the
 * authenticated serial (the `activeTraceparent` hook, filled by the jobs code),
 * the get-bootstrapping-data span is linked to the job's span and the job's W3C
 * `traceparent` is returned in a response header, so the agent continues that
 * trace for the rest of its run (issue 14). The RESTCONF spans of a device with
 * an active job are recorded in the job's trace ({@link rpcTraceParent}).
 */
import {
  type Context,
  context,
  type Link,
  type Span,
  type SpanContext,
  TraceFlags,
  trace,
} from '@opentelemetry/api';

/** Returns the W3C `traceparent` of the device's active provisioning job, if any. */
export type ActiveTraceparent = (serial: string) => string | undefined;

/** The provisioning trace of an image token (filled by the jobs code, `bootstrap/job-trace-index.ts`). */
export interface ImageTokenTraces {
  /** The `traceparent` of the run whose installer URL carries `token`, as known now (never waits). */
  forImageToken(token: string): string | undefined;
  /** As {@link forImageToken}, waiting briefly for a lookup when it is not known yet. */
  forImageTokenWaiting(token: string): Promise<string | undefined>;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Parses a W3C trace-context `traceparent` (version 00); undefined for any other
 * shape or the all-zero ids the spec declares invalid.
 */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  const m = value === undefined ? null : TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, traceId, spanId, flags] = m as unknown as [string, string, string, string];
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
}

/**
 * Looks up the job trace for `serial` and links `span` to it. Returns the
 * `traceparent` to send to the device, or undefined (no hook, no active job,
 * or a malformed value — never an error: telemetry must not fail a device).
 */
export function linkToJobTrace(
  lookup: ActiveTraceparent | undefined,
  serial: string,
  span: Span,
): string | undefined {
  if (!lookup) return undefined;
  let tp: string | undefined;
  try {
    tp = lookup(serial);
  } catch {
    return undefined;
  }
  const ctx = parseTraceparent(tp);
  if (!ctx) return undefined;
  span.addLink({ context: ctx });
  return tp?.trim();
}

/** Where a device's RESTCONF span goes, and the `traceparent` to hand the device. */
export interface RpcTrace {
  /** The parent context of the RPC span. */
  parent: Context;
  /** Links of the RPC span (an incoming context the job's trace overrode). */
  links: Link[];
  /** The job's `traceparent`, for a device with an active job. */
  handOver?: string;
  /** The span joins the device's job trace. */
  joined: boolean;
}

/**
 * The parent of an authenticated device's RESTCONF span (W3C trace context):
 * - a device with an active job: its `traceparent` when it is in the job's trace
 *   (the agent's own request span), else the job's context — the incoming one,
 *   if any, only linked;
 * - any other device: its `traceparent` if valid (ordinary W3C propagation),
 *   else the current context.
 * Never throws: a failing lookup or a malformed value only loses the join.
 */
export function rpcTraceParent(
  lookup: ActiveTraceparent | undefined,
  serial: string,
  incoming: string | string[] | undefined,
): RpcTrace {
  let job: SpanContext | undefined;
  let handOver: string | undefined;
  if (lookup) {
    try {
      handOver = lookup(serial)?.trim();
    } catch {
      handOver = undefined;
    }
    job = parseTraceparent(handOver);
    if (!job) handOver = undefined;
  }
  const inc = typeof incoming === 'string' ? parseTraceparent(incoming) : undefined;
  const base = context.active();
  if (job) {
    if (inc && inc.traceId === job.traceId)
      return {
        parent: trace.setSpanContext(base, inc),
        links: [],
        handOver: handOver as string,
        joined: true,
      };
    return {
      parent: trace.setSpanContext(base, job),
      links: inc ? [{ context: inc }] : [],
      handOver: handOver as string,
      joined: true,
    };
  }
  return { parent: inc ? trace.setSpanContext(base, inc) : base, links: [], joined: false };
}
