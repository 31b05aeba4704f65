/**
 * `dpu-ztp bmcs add|list|check|rm` and `dpu-ztp devices import`: the BMC
 * inventory and bulk device import, through the operator API (so they work
 * while `serve` holds the embedded database). Passwords are read from a file
 * or the environment, never from argv, and never printed.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Command } from 'commander';
import type { BmcCheckReport } from '../../redfish/index.js';
import type { components } from '../../web/api/index.js';
import { type ApiFlags, addApiOptions, apiClient, call } from '../api-client.js';
import { action, CliError } from '../exit.js';
import { formatCheckReport } from './bmc.js';

type BmcView = components['schemas']['Bmc'];
type BmcInput = components['schemas']['BmcInput'];
type CheckResult = components['schemas']['BmcCheck'];

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function labels(pairs: string[] | undefined, flag: string): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new CliError('CLI_ERR_USAGE', `${flag} must be key=value, got ${JSON.stringify(p)}`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

async function readText(file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(
      'CLI_ERR_FILE',
      `cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

function checkLine(c: CheckResult | undefined): string {
  if (!c) return 'never checked';
  return c.ok ? `ok ${c.at}` : `FAILED ${c.at} ${c.error?.code ?? ''}`.trim();
}

/** Registers `bmcs …` and `devices import`. */
export function registerBmcsCommands(program: Command): void {
  const bmcs = program
    .command('bmcs')
    .description('the BMC inventory: BMCs the service provisions devices through (operator API)');

  addApiOptions(
    bmcs
      .command('add')
      .description('add a BMC, or replace the one with this id (its password is kept when none is given)')
      .argument('<ID>', 'BMC id (letters, digits, . _ -)')
      .requiredOption('--address <URL>', 'https://host[:port] of the BMC')
      .requiredOption('--username <USER>', 'BMC user')
      .option('--password-file <FILE>', 'file holding the BMC password (or env DPU_ZTP_BMC_PASSWORD)')
      .option('--ca-file <FILE>', 'PEM CA certificate(s) that signed the BMC TLS certificate')
      .option('--insecure', 'do not verify the BMC TLS certificate (explicit opt-in)')
      .option('--auth <MODE>', 'auto (session, then Basic) | session | basic')
      .option('--profile <ID>', 'vendor profile override')
      .option('--system <ID>', 'Redfish ComputerSystem id, when the BMC manages several')
      .option('--label <K=V>', 'a label (repeatable)', collect),
  ).action(
    action(
      async (
        id: string,
        o: ApiFlags & {
          address: string;
          username: string;
          passwordFile?: string;
          caFile?: string;
          insecure?: boolean;
          auth?: string;
          profile?: string;
          system?: string;
          label?: string[];
        },
      ) => {
        if (o.caFile && o.insecure)
          throw new CliError('CLI_ERR_USAGE', '--ca-file and --insecure are mutually exclusive');
        let password: string | undefined;
        if (o.passwordFile) {
          // One trailing newline is the file's, not the password's.
          password = (await readText(o.passwordFile, '--password-file')).replace(/\r?\n$/, '');
          if (password === '')
            throw new CliError('CLI_ERR_USAGE', `--password-file ${o.passwordFile} is empty`);
        } else if (process.env.DPU_ZTP_BMC_PASSWORD) password = process.env.DPU_ZTP_BMC_PASSWORD;
        // auth and profile are checked by the server (400 naming the allowed values).
        const body: BmcInput = {
          address: o.address,
          username: o.username,
          ...(password !== undefined ? { password } : {}),
          ...(o.caFile ? { caCertificate: await readText(o.caFile, '--ca-file') } : {}),
          ...(o.insecure ? { insecure: true } : {}),
          ...(o.auth ? { auth: o.auth as BmcInput['auth'] } : {}),
          ...(o.profile ? { profile: o.profile as BmcInput['profile'] } : {}),
          ...(o.system ? { system: o.system } : {}),
          ...(o.label ? { labels: labels(o.label, '--label') } : {}),
        };
        const api = await apiClient(o);
        const put = api.http.PUT('/api/v1/bmcs/{id}', { params: { path: { id } }, body });
        const json = await call(put);
        const { status } = (await put).response;
        process.stdout.write(`${status === 201 ? 'added' : 'replaced'} BMC ${json.id} (${json.address})\n`);
      },
    ),
  );

  addApiOptions(
    bmcs
      .command('list')
      .description('list BMCs (never their passwords)')
      .option('--label <K=V>', 'only BMCs with this label (repeatable: all must match)', collect)
      .option('--json', 'print JSON'),
  ).action(
    action(async (o: ApiFlags & { label?: string[]; json?: boolean }) => {
      labels(o.label, '--label');
      const api = await apiClient(o);
      const items: BmcView[] = [];
      let cursor: string | null = null;
      do {
        const json: components['schemas']['BmcPage'] = await call(
          api.http.GET('/api/v1/bmcs', {
            params: {
              query: { limit: 500, ...(o.label ? { label: o.label } : {}), ...(cursor ? { cursor } : {}) },
            },
          }),
        );
        items.push(...json.items);
        cursor = json.nextCursor;
      } while (cursor);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
        return;
      }
      for (const b of items) {
        const tls = b.insecure ? 'insecure' : b.caCertificate ? 'ca' : 'system-ca';
        const l = Object.entries(b.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        process.stdout.write(
          `${b.id}  ${b.address}  ${b.username}  auth=${b.auth} tls=${tls}${b.profile ? ` profile=${b.profile}` : ''}${b.system ? ` system=${b.system}` : ''}  ${checkLine(b.lastCheck)}${l ? `  ${l}` : ''}\n`,
        );
      }
    }),
  );

  addApiOptions(
    bmcs
      .command('check')
      .description('probe a stored BMC (as `bmc check` does) and keep the report; exit 1 when it fails')
      .argument('<ID>', 'BMC id')
      .option('--json', 'print the result as JSON'),
  ).action(
    action(async (id: string, o: ApiFlags & { json?: boolean }) => {
      const api = await apiClient(o);
      const json: CheckResult = await call(
        api.http.POST('/api/v1/bmcs/{id}/check', { params: { path: { id } } }),
      );
      if (o.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      else if (json.report) process.stdout.write(formatCheckReport(json.report as unknown as BmcCheckReport));
      if (!json.ok)
        throw new CliError(
          json.error?.code ?? 'REDFISH_ERR_NO_STRATEGY',
          json.error?.message ?? 'check failed',
        );
    }),
  );

  addApiOptions(
    bmcs.command('rm').description('delete a BMC no device names').argument('<ID>', 'BMC id'),
  ).action(
    action(async (id: string, o: ApiFlags) => {
      const api = await apiClient(o);
      await call(api.http.DELETE('/api/v1/bmcs/{id}', { params: { path: { id } } }));
      process.stdout.write(`deleted BMC ${id}\n`);
    }),
  );

  const devices = program.command('devices').description('the device inventory (operator API)');
  addApiOptions(
    devices
      .command('import')
      .description(
        'create or update devices (and their BMCs) from a CSV or NDJSON file; prints each row; exit 1 if any row is refused',
      )
      .argument('<FILE>', '.csv (header row) or .ndjson/.jsonl')
      .option('--format <FMT>', 'csv | ndjson (default: from the file extension)')
      .option('--dry-run', 'check every row, write nothing')
      .option('--atomic', 'write all rows in one transaction, or none when any row is refused'),
  ).action(
    action(async (file: string, o: ApiFlags & { format?: string; dryRun?: boolean; atomic?: boolean }) => {
      const ext = extname(file).toLowerCase();
      const format =
        o.format ?? (ext === '.csv' ? 'csv' : ext === '.ndjson' || ext === '.jsonl' ? 'ndjson' : undefined);
      if (format !== 'csv' && format !== 'ndjson')
        throw new CliError(
          'CLI_ERR_USAGE',
          `--format must be csv or ndjson (cannot tell from ${JSON.stringify(ext || file)})`,
        );
      try {
        if (!(await stat(file)).isFile())
          throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
      } catch (err) {
        throw new CliError(
          'CLI_ERR_FILE',
          `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      const api = await apiClient(o);
      // The file is bounded by the server's import limits; sent as it is (CSV or NDJSON text).
      const text = await readFile(file, 'utf8');
      const json = await call(
        api.http.POST('/api/v1/devices:import', {
          params: { query: { ...(o.dryRun ? { dryRun: true } : {}), ...(o.atomic ? { atomic: true } : {}) } },
          body: text,
          bodySerializer: (b: string) => b,
          headers: { 'content-type': format === 'csv' ? 'text/csv' : 'application/x-ndjson' },
        }),
      );
      for (const r of json.rows) {
        const bmc = r.bmc ? `  bmc ${r.bmc.id} ${r.bmc.result}` : '';
        const why = r.error ? `  ${r.error.code}: ${r.error.message}` : '';
        process.stdout.write(`line ${r.line}  ${r.serial ?? '-'}  ${r.result}${bmc}${why}\n`);
      }
      const { created, updated, refused } = json.counts;
      const note = o.dryRun
        ? ' (dry run: nothing written)'
        : !json.applied
          ? ' (atomic: nothing written, because rows were refused)'
          : '';
      process.stderr.write(`${created} created, ${updated} updated, ${refused} refused${note}\n`);
      if (refused > 0) throw new CliError('CLI_ERR_IMPORT_REFUSED', `${refused} row(s) refused`);
    }),
  );
}
