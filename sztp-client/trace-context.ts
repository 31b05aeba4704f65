/**
 * The W3C trace context the agent carries for its whole run (issue 14).
 *
 * A device knows nothing of provisioning jobs: the bootstrap server hands the
 * job's `traceparent` in a response header on get-bootstrapping-data, or the
 * operator gives one with `--traceparent` / `TRACEPARENT` (which wins). The
 * agent then sends it on every RESTCONF request so the server can join them to
 * the job's trace. Dependency-free: the agent bundle stays one file.
 */

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

  /** The `traceparent` to send, if any. */
  get current(): string | undefined {
    return this.#value;
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
