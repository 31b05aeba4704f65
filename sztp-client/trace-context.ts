/**
 * The W3C trace context the agent carries for its whole run (issue 14).
 *
 * A device knows nothing of provisioning jobs: the bootstrap server hands the
 * job's `traceparent` in a response header on get-bootstrapping-data, or the
 * operator gives one with `--traceparent` / `TRACEPARENT` (which wins). The
 * agent then sends it on every RESTCONF request so the server can join them to
 * the job's trace. The agent's own spans (recorded through `@opentelemetry/api`,
 * exported when `cli/` started the SDK) continue that trace once it is known:
 * {@link inRunTrace} runs work under it, and {@link AgentTraceContext.outgoing}
 * names the agent's current span in it, so the server's RESTCONF spans become
 * children of the agent's request spans.
 */
import { context, type SpanContext, TraceFlags, trace } from '@opentelemetry/api';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Whether `v` is a valid version-00 W3C `traceparent` (non-zero ids). */
export function isTraceparent(v: string | undefined): v is string {
  const m = v === undefined ? null : TRACEPARENT.exec(v);
  return m !== null && !/^0+$/.test(m[1]!) && !/^0+$/.test(m[2]!);
}

/** The run's trace context: an override, else the first one a trusted server hands over. */
export class AgentTraceContext {
  #value: string | undefined;
  readonly #fixed: boolean;

  /** `override`: from `--traceparent` / `TRACEPARENT`; an invalid value is ignored. */
  constructor(override?: string) {
    const v = override?.trim();
    this.#value = isTraceparent(v) ? v : undefined;
    this.#fixed = this.#value !== undefined;
  }

  /** The run's `traceparent` (the one handed over or given), if any. */
  get current(): string | undefined {
    return this.#value;
  }

  /**
   * The `traceparent` to send on a request: the agent's active span when it is
   * recording in the run's trace, else the run's context itself, else none.
   */
  outgoing(): string | undefined {
    const run = this.#value;
    if (!run) return undefined;
    const active = trace.getActiveSpan()?.spanContext();
    if (active && trace.isSpanContextValid(active) && active.traceId === run.slice(3, 35))
      return `00-${active.traceId}-${active.spanId}-0${active.traceFlags & TraceFlags.SAMPLED}`;
    return run;
  }

  /** The run's context as a remote parent span context, if any. */
  spanContext(): SpanContext | undefined {
    const v = this.#value;
    if (!v) return undefined;
    return {
      traceId: v.slice(3, 35),
      spanId: v.slice(36, 52),
      traceFlags: Number.parseInt(v.slice(53, 55), 16) & TraceFlags.SAMPLED,
      isRemote: true,
    };
  }

  /**
   * Adopts a server's `traceparent` response header (only from a server that
   * proved trusted; never over an override; malformed values ignored).
   */
  adopt(header: string | string[] | undefined, trusted: boolean): void {
    if (this.#fixed || !trusted || typeof header !== 'string') return;
    const v = header.trim();
    if (isTraceparent(v)) this.#value = v;
  }
}

/**
 * Runs `fn` in the run's trace: as it is when the active span already belongs
 * to it (or no trace is known yet), else with the run's context as the parent,
 * so work after the server handed its trace over joins it.
 */
export function inRunTrace<T>(tc: AgentTraceContext | undefined, fn: () => T): T {
  const parent = tc?.spanContext();
  if (!parent) return fn();
  const active = trace.getActiveSpan()?.spanContext();
  if (active && active.traceId === parent.traceId) return fn();
  return context.with(trace.setSpanContext(context.active(), parent), fn);
}
