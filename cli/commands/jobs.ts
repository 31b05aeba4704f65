/**
 * `dpu-ztp provision SERIAL… [--wait]` and `dpu-ztp jobs list|show|cancel|retry`:
 * provisioning jobs through the operator API, for technicians. With `--wait`
 * (and `jobs show --wait`) a line per device shows its state, step and time in
 * it — redrawn in place on a terminal (a compact table of steps above 20
 * devices), printed as plain lines on each change otherwise (logs, CI); see
 * cli/job-progress.ts. The exit code says how the job ended.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import type { components } from '../../web/api/index.js';
import { type ApiClient, type ApiFlags, addApiOptions, apiClient, call } from '../api-client.js';
import { action, CliError } from '../exit.js';
import {
  deviceLine,
  FINISHED_JOB_STATES,
  type JobJson,
  JobProgress,
  jobSummary as summary,
} from '../job-progress.js';

const STRATEGIES = ['auto', 'virtual-media', 'image-push', 'http-boot'] as const;

/** Follows a job until it finishes; returns its last view. */
async function follow(api: ApiClient, id: string, intervalMs: number): Promise<JobJson> {
  const view = new JobProgress(process.stdout);
  for (;;) {
    const j = await call(api.http.GET('/api/v1/jobs/{id}', { params: { path: { id } } }));
    view.render(j);
    if (FINISHED_JOB_STATES.has(j.state)) {
      view.end(j);
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
          params: {
            query: { limit, ...(o.state ? { state: o.state as components['schemas']['Job']['state'] } : {}) },
          },
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
