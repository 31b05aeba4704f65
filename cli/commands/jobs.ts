/**
 * `dpu-ztp provision SERIAL… [--wait]` and `dpu-ztp jobs list|show|cancel|retry`:
 * provisioning jobs through the operator API, for technicians. With `--wait`
 * (and `jobs show --wait`) a line per device shows its state, step and time in
 * it — redrawn in place on a terminal, printed as plain lines on each change
 * otherwise (logs, CI). The exit code says how the job ended.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import type { components } from '../../web/api/index.js';
import { type ApiClient, type ApiFlags, addApiOptions, apiClient, call } from '../api-client.js';
import { action, CliError } from '../exit.js';

type JobJson = components['schemas']['Job'];
type DeviceRow = JobJson['devices'][number];

const STRATEGIES = ['auto', 'virtual-media', 'image-push', 'http-boot'] as const;
const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

function elapsed(d: DeviceRow, now: number): string {
  if (!d.startedAt) return '';
  const end = d.finishedAt ? Date.parse(d.finishedAt) : now;
  const s = Math.max(0, Math.round((end - Date.parse(d.startedAt)) / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** One device's progress line: serial, state, step, attempt, elapsed, and why it stopped. */
export function deviceLine(d: DeviceRow, now = Date.now()): string {
  const why = d.error ? `  ${d.error.code}: ${d.error.message}` : '';
  return `${d.serial.padEnd(20)} ${d.state.padEnd(15)} ${d.step.padEnd(14)} #${d.attempt} ${elapsed(d, now).padStart(7)}${why}`;
}

function summary(j: components['schemas']['JobSummary']): string {
  const c = j.counts;
  return `job ${j.id} ${j.kind} ${j.state}: ${c.succeeded ?? 0} succeeded, ${c.failed ?? 0} failed, ${c['needs-attention'] ?? 0} need attention, ${c.cancelled ?? 0} cancelled, ${(c.queued ?? 0) + (c.running ?? 0)} in progress of ${c.total ?? 0}`;
}

/** Follows a job until it finishes; returns its last view. */
async function follow(api: ApiClient, id: string, intervalMs: number): Promise<JobJson> {
  const tty = process.stdout.isTTY === true;
  let drawn = 0;
  const last = new Map<string, string>();
  for (;;) {
    const j = await call(api.http.GET('/api/v1/jobs/{id}', { params: { path: { id } } }));
    const now = Date.now();
    if (tty) {
      // Redraw in place: cursor up over the previous frame, clear each line.
      let out = drawn ? `\x1b[${drawn}A` : '';
      const lines = [...j.devices.map((d) => deviceLine(d, now)), summary(j)];
      for (const l of lines) out += `\x1b[2K${l}\n`;
      process.stdout.write(out);
      drawn = lines.length;
    } else {
      for (const d of j.devices) {
        const key = `${d.state} ${d.step} ${d.attempt}`;
        if (last.get(d.serial) !== key) {
          last.set(d.serial, key);
          process.stdout.write(`${deviceLine(d, now)}\n`);
        }
      }
    }
    if (FINISHED.has(j.state)) {
      if (!tty) process.stdout.write(`${summary(j)}\n`);
      return j;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function endWith(j: JobJson): void {
  if (j.state !== 'succeeded') process.exitCode = 1;
}

function interval(v: string): number {
  const n = Number(v);
  if (!(n >= 0.1 && n <= 60)) throw new CliError('CLI_ERR_USAGE', '--interval must be 0.1-60 seconds');
  return n * 1000;
}

/** Registers `provision` and the `jobs` command group. */
export function registerJobCommands(program: Command): void {
  addApiOptions(
    program
      .command('provision')
      .description('provision devices through their BMCs, from power-off to bootstrap-complete (a job)')
      .argument('[SERIAL...]', 'device serial numbers')
      .option('--label <KEY=VALUE...>', 'select devices by label instead of serials (repeatable)')
      .option('--strategy <NAME>', `${STRATEGIES.join('|')}`, 'auto')
      .option(
        '--installer-image <NAME>',
        "image the BMC boots (default: the device profile's installerImage)",
      )
      .option('--wait', 'follow the job until it finishes; exit non-zero unless it succeeded')
      .option('--interval <SECONDS>', 'how often --wait polls', '2')
      .option('--idempotency-key <KEY>', 'make a retried command safe (default: a new key each run)')
      .option('--json', 'print the job as JSON'),
  ).action(
    action(
      async (
        serials: string[],
        o: ApiFlags & {
          label?: string[];
          strategy: string;
          installerImage?: string;
          wait?: boolean;
          interval: string;
          idempotencyKey?: string;
          json?: boolean;
        },
      ) => {
        const strategy = STRATEGIES.find((s) => s === o.strategy);
        if (!strategy)
          throw new CliError('CLI_ERR_USAGE', `--strategy must be one of ${STRATEGIES.join(', ')}`);
        if (serials.length > 0 === Boolean(o.label?.length))
          throw new CliError(
            'CLI_ERR_USAGE',
            'give serial numbers or --label KEY=VALUE, not both or neither',
          );
        const labels: Record<string, string> = {};
        for (const l of o.label ?? []) {
          const i = l.indexOf('=');
          if (i < 1) throw new CliError('CLI_ERR_USAGE', `--label must be KEY=VALUE, got ${l}`);
          labels[l.slice(0, i)] = l.slice(i + 1);
        }
        const every = interval(o.interval);
        const api = await apiClient(o);
        const job = await call(
          api.http.POST('/api/v1/jobs', {
            body: {
              kind: 'provision',
              ...(serials.length ? { devices: serials } : { selector: { labels } }),
              strategy,
              ...(o.installerImage ? { installerImage: o.installerImage } : {}),
            },
            params: { header: { 'Idempotency-Key': o.idempotencyKey ?? randomUUID() } },
          }),
        );
        if (!o.wait) {
          process.stdout.write(o.json ? `${JSON.stringify(job, null, 2)}\n` : `${summary(job)}\n`);
          return;
        }
        process.stderr.write(`job ${job.id}: ${job.devices.length} device(s)\n`);
        const end = await follow(api, job.id, every);
        if (o.json) process.stdout.write(`${JSON.stringify(end, null, 2)}\n`);
        endWith(end);
      },
    ),
  );

  const jobs = program.command('jobs').description('provisioning, power and decommission jobs');
  addApiOptions(
    jobs
      .command('list')
      .description('list jobs, newest first')
      .option('--state <STATE>', 'queued|running|succeeded|failed|cancelled')
      .option('--limit <N>', 'how many', '50')
      .option('--json', 'print JSON'),
  ).action(
    action(async (o: ApiFlags & { state?: string; limit: string; json?: boolean }) => {
      const api = await apiClient(o);
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new CliError('CLI_ERR_USAGE', '--limit must be a count');
      const json = await call(
        api.http.GET('/api/v1/jobs', {
          // The server checks the state name (400 naming the allowed ones).
          params: { query: { limit, ...(o.state ? { state: o.state as JobJson['state'] } : {}) } },
        }),
      );
      if (o.json) {
        process.stdout.write(`${JSON.stringify(json.items, null, 2)}\n`);
        return;
      }
      for (const j of json.items) process.stdout.write(`${j.createdAt}  ${summary(j)}\n`);
    }),
  );
  addApiOptions(
    jobs
      .command('show')
      .description('show a job and each device (state, step, attempt, elapsed, why it stopped)')
      .argument('<ID>', 'job id')
      .option('--wait', 'follow it until it finishes; exit non-zero unless it succeeded')
      .option('--interval <SECONDS>', 'how often --wait polls', '2')
      .option('--json', 'print JSON (with every step attempt)'),
  ).action(
    action(async (id: string, o: ApiFlags & { wait?: boolean; interval: string; json?: boolean }) => {
      const api = await apiClient(o);
      if (o.wait) {
        endWith(await follow(api, id, interval(o.interval)));
        return;
      }
      const j = await call(
        api.http.GET('/api/v1/jobs/{id}', { params: { path: { id }, query: { steps: true } } }),
      );
      if (o.json) {
        process.stdout.write(`${JSON.stringify(j, null, 2)}\n`);
        return;
      }
      for (const d of j.devices) process.stdout.write(`${deviceLine(d)}\n`);
      process.stdout.write(`${summary(j)}\n`);
    }),
  );
  for (const [name, what] of [
    ['cancel', 'cancel a job: devices not finished stop'],
    ['retry', 'run the failed devices of a job again'],
  ] as const) {
    addApiOptions(
      jobs
        .command(name)
        .description(what)
        .argument('<ID>', 'job id')
        .option('--wait', 'follow the job until it finishes')
        .option('--interval <SECONDS>', 'how often --wait polls', '2'),
    ).action(
      action(async (id: string, o: ApiFlags & { wait?: boolean; interval: string }) => {
        const api = await apiClient(o);
        const opts = { params: { path: { id }, header: { 'Idempotency-Key': randomUUID() } } };
        const j = await call(
          name === 'cancel'
            ? api.http.POST('/api/v1/jobs/{id}/cancel', opts)
            : api.http.POST('/api/v1/jobs/{id}/retry', opts),
        );
        process.stdout.write(`${summary(j)}\n`);
        if (o.wait) endWith(await follow(api, id, interval(o.interval)));
      }),
    );
  }
}
