/**
 * Live progress of a provisioning job for people, shared by `dpu-ztp provision
 * --wait`, `jobs show --wait` and `dpu-ztp demo`: on a terminal a line per
 * device (state, step, attempt, elapsed, why it stopped) redrawn in place, or a
 * compact table of steps by state above {@link COMPACT_ABOVE} devices; off a
 * terminal (logs, CI) a plain line per device each time its state or step
 * changes.
 */
import { STEP_ORDER } from '../bootstrap/job-steps.js';

/** A device run as `GET /api/v1/jobs/{id}` shows it. */
export interface DeviceRow {
  serial: string;
  state: string;
  step: string;
  attempt: number;
  strategy?: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: { code: string; message: string; bmcMessages?: unknown[] } | null;
  steps?: Array<{
    step: string;
    attempt: number;
    startedAt: string;
    finishedAt: string | null;
    result: string;
    detail: string | null;
    errorCode: string | null;
  }>;
}

/** A job as `GET /api/v1/jobs/{id}` shows it. */
export interface JobJson {
  id: string;
  kind: string;
  state: string;
  createdAt: string;
  finishedAt: string | null;
  counts: Record<string, number>;
  devices: DeviceRow[];
}

/** Job states after which nothing more happens. */
export const FINISHED_JOB_STATES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);

/** Above this many devices a terminal shows the compact table instead of a line per device. */
export const COMPACT_ABOVE = 20;

/** `12s`, `3m05s`. */
export function formatSeconds(s: number): string {
  const r = Math.max(0, Math.round(s));
  return r >= 60 ? `${Math.floor(r / 60)}m${String(r % 60).padStart(2, '0')}s` : `${r}s`;
}

/** Seconds a run has taken so far (or took), undefined before it started. */
export function runSeconds(d: DeviceRow, now: number): number | undefined {
  if (!d.startedAt) return undefined;
  const end = d.finishedAt ? Date.parse(d.finishedAt) : now;
  return Math.max(0, (end - Date.parse(d.startedAt)) / 1000);
}

/** One device's progress line: serial, state, step, attempt, elapsed, and why it stopped. */
export function deviceLine(d: DeviceRow, now = Date.now(), label = ''): string {
  const why = d.error ? `  ${d.error.code}: ${d.error.message}` : '';
  const s = runSeconds(d, now);
  return `${d.serial.padEnd(20)} ${label ? `${label.padEnd(11)} ` : ''}${d.state.padEnd(15)} ${d.step.padEnd(14)} #${d.attempt} ${(s === undefined ? '' : formatSeconds(s)).padStart(7)}${why}`;
}

/** The one-line count of a job's devices by state. */
export function jobSummary(j: Pick<JobJson, 'id' | 'kind' | 'state' | 'counts'>): string {
  const c = j.counts;
  return `job ${j.id} ${j.kind} ${j.state}: ${c.succeeded ?? 0} succeeded, ${c.failed ?? 0} failed, ${c['needs-attention'] ?? 0} need attention, ${c.cancelled ?? 0} cancelled, ${(c.queued ?? 0) + (c.running ?? 0)} in progress of ${c.total ?? 0}`;
}

const TABLE_STATES = ['queued', 'running', 'succeeded', 'failed', 'needs-attention', 'cancelled'] as const;

/**
 * The compact view: one row per step with how many devices are in it in each state, then
 * the devices that stopped with an error (at most `maxFailures` of them).
 */
export function compactTable(j: JobJson, now = Date.now(), maxFailures = 5): string[] {
  const steps: string[] = [];
  const cells = new Map<string, Map<string, number>>();
  for (const d of j.devices) {
    if (!cells.has(d.step)) {
      steps.push(d.step);
      cells.set(d.step, new Map());
    }
    const row = cells.get(d.step) as Map<string, number>;
    row.set(d.state, (row.get(d.state) ?? 0) + 1);
  }
  steps.sort((a, b) => (STEP_ORDER.indexOf(a) + 1 || 99) - (STEP_ORDER.indexOf(b) + 1 || 99));
  const head = `${'step'.padEnd(16)}${TABLE_STATES.map((s) => s.padStart(16)).join('')}`;
  const lines = [head];
  for (const step of steps) {
    const row = cells.get(step) as Map<string, number>;
    lines.push(
      `${step.padEnd(16)}${TABLE_STATES.map((s) => String(row.get(s) || '').padStart(16)).join('')}`,
    );
  }
  const stopped = j.devices.filter((d) => d.error);
  for (const d of stopped.slice(0, maxFailures)) lines.push(deviceLine(d, now));
  if (stopped.length > maxFailures)
    lines.push(`… and ${stopped.length - maxFailures} more stopped with an error`);
  return lines;
}

/** Where progress goes: a stream, and whether it is a terminal (redraw in place). */
export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  /** Terminal width: longer lines are cut so that each takes one row (the redraw counts rows). */
  readonly columns?: number;
}

/** Renders successive views of one job to a terminal or a log. */
export class JobProgress {
  #drawn = 0;
  readonly #last = new Map<string, string>();

  constructor(
    private readonly out: ProgressOutput,
    private readonly opts: { compactAbove?: number; label?: (serial: string) => string } = {},
  ) {}

  /** Shows the job as it is now. */
  render(j: JobJson, now = Date.now()): void {
    if (this.out.isTTY === true) {
      const compact = j.devices.length > (this.opts.compactAbove ?? COMPACT_ABOVE);
      const lines = [
        ...(compact
          ? compactTable(j, now)
          : j.devices.map((d) => deviceLine(d, now, this.opts.label?.(d.serial) ?? ''))),
        jobSummary(j),
      ];
      // Redraw in place: cursor up over the previous frame, clear each line, clear what is left below.
      let text = this.#drawn ? `\x1b[${this.#drawn}A` : '';
      const width = this.out.columns && this.out.columns > 20 ? this.out.columns - 1 : Infinity;
      for (const l of lines) text += `\x1b[2K${l.length > width ? `${l.slice(0, width - 1)}…` : l}\n`;
      text += '\x1b[J';
      this.out.write(text);
      this.#drawn = lines.length;
      return;
    }
    let text = '';
    for (const d of j.devices) {
      const key = `${d.state} ${d.step} ${d.attempt}`;
      if (this.#last.get(d.serial) !== key) {
        this.#last.set(d.serial, key);
        text += `${deviceLine(d, now, this.opts.label?.(d.serial) ?? '')}\n`;
      }
    }
    if (text) this.out.write(text);
  }

  /** The job finished: off a terminal, its summary line (a terminal's frame already ends with it). */
  end(j: JobJson): void {
    if (this.out.isTTY !== true) this.out.write(`${jobSummary(j)}\n`);
  }
}
