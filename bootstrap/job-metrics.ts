/**
 * Metrics of device runs (README, OpenTelemetry "GET /metrics"): runs started
 * and finished by outcome, run and step durations, labelled with the job kind,
 * the strategy preflight chose and the BMC's vendor profile. Recorded through
 * `@opentelemetry/api` (a no-op without the SDK); never throws into a run.
 */
import { sql } from 'kysely';
import type { JobDevice, JobKind } from '../db/index.js';
import { instruments, MetricAttr, UNKNOWN_LABEL } from '../otel/index.js';
import type { JobStore } from './job-store.js';

/** The labels every run metric carries. */
export interface RunLabels {
  kind: JobKind;
  strategy: string;
  vendorProfile: string;
}

/**
 * A run's labels: the strategy and vendor profile preflight recorded in the run's context (so a run
 * resumed on another replica keeps them), else the profile this process probed, else `unknown`.
 */
export function runLabels(kind: JobKind, run: JobDevice, probedProfile?: string): RunLabels {
  const { strategy, vendorProfile } = run.context as { strategy?: unknown; vendorProfile?: unknown };
  return {
    kind,
    strategy: typeof strategy === 'string' && strategy ? strategy : UNKNOWN_LABEL,
    vendorProfile:
      typeof vendorProfile === 'string' && vendorProfile ? vendorProfile : (probedProfile ?? UNKNOWN_LABEL),
  };
}

const KINDS: readonly JobKind[] = ['provision', 'power', 'decommission'];
const OUTCOMES = ['succeeded', 'failed', 'needs-attention', 'cancelled'] as const;

/**
 * Starts the run counters at 0 for every kind and outcome: a counter series that first appears at 1
 * shows no rate (and no success ratio) until it moves again, which on a quiet fleet may be hours.
 */
export function initRunCounters(): void {
  const m = instruments();
  for (const kind of KINDS) {
    m.jobsStarted.add(0, { [MetricAttr.kind]: kind });
    for (const outcome of OUTCOMES)
      m.jobsFinished.add(0, { [MetricAttr.kind]: kind, [MetricAttr.outcome]: outcome });
  }
}

/** A run entered its first step afresh (not a resume): counted once per attempt. */
export function recordRunStarted(kind: JobKind): void {
  instruments().jobsStarted.add(1, { [MetricAttr.kind]: kind });
}

/** A step ended (`done`, `failed`, `cancelled`, `interrupted`) after `seconds` since it was entered. */
export function recordStep(labels: RunLabels, step: string, outcome: string, seconds: number): void {
  instruments().jobStepDuration.record(Math.max(0, seconds), {
    [MetricAttr.kind]: labels.kind,
    [MetricAttr.step]: step,
    [MetricAttr.outcome]: outcome,
    [MetricAttr.strategy]: labels.strategy,
    [MetricAttr.vendorProfile]: labels.vendorProfile,
  });
}

/**
 * A run finished with `outcome` (its final state: `succeeded`, `failed`, `needs-attention`,
 * `cancelled`): counted by kind and outcome; its duration (by kind, outcome, strategy and vendor
 * profile) runs from the first step of this attempt (read from the step records,
 * so a run resumed after a restart counts its whole time) to now.
 */
export async function recordRunFinished(
  store: JobStore,
  run: JobDevice,
  labels: RunLabels,
  outcome: string,
): Promise<void> {
  const attrs = {
    [MetricAttr.kind]: labels.kind,
    [MetricAttr.outcome]: outcome,
    [MetricAttr.strategy]: labels.strategy,
    [MetricAttr.vendorProfile]: labels.vendorProfile,
  };
  const m = instruments();
  m.jobsFinished.add(1, { [MetricAttr.kind]: labels.kind, [MetricAttr.outcome]: outcome });
  try {
    const row = await store.db
      .selectFrom('job_steps')
      .select(sql<Date | string | null>`min(started_at)`.as('first'))
      .where('run_id', '=', run.id)
      .where('attempt', '=', run.attempt)
      .executeTakeFirst();
    if (row?.first)
      m.provisioningDuration.record(Math.max(0, (Date.now() - new Date(row.first).getTime()) / 1000), attrs);
  } catch {
    // the database is away: the run's outcome is counted, its duration is not
  }
}
