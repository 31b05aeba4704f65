/**
 * Joining a device's RESTCONF calls to its provisioning job's trace.
 *
 * A device knows nothing of jobs. When the server knows one is active for the
 * authenticated serial (the `activeTraceparent` hook, filled by the jobs code),
 * the get-bootstrapping-data span is linked to the job's span and the job's W3C
 * `traceparent` is returned in a response header, so the agent continues that
 * trace for the rest of its run (issue 14).
 */
import type { Span, SpanContext } from '@opentelemetry/api';
import { TraceFlags } from '@opentelemetry/api';

/** Returns the W3C `traceparent` of the device's active provisioning job, if any. */
export type ActiveTraceparent = (serial: string) => string | undefined;

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
