/** `dpu-ztp tokens create|list|revoke`: API tokens, through the operator API (admin role). */
import type { Command } from 'commander';
import { type ApiFlags, addApiOptions, apiClient, call } from '../api-client.js';
import { action, CliError } from '../exit.js';

const ROLES = ['admin', 'operator', 'viewer'] as const;

/** Registers the `tokens` command group. */
export function registerTokenCommands(program: Command): void {
  const tokens = program.command('tokens').description('API bearer tokens (needs an admin token)');
  addApiOptions(
    tokens
      .command('create')
      .description('create a token and print it once')
      .requiredOption('--role <ROLE>', `one of ${ROLES.join(', ')}`)
      .option('--name <NAME>', 'what the token is for', 'cli'),
  ).action(
    action(async (opts: ApiFlags & { role: string; name: string }) => {
      const role = ROLES.find((r) => r === opts.role);
      if (!role) throw new CliError('CLI_ERR_USAGE', `--role must be one of ${ROLES.join(', ')}`);
      const api = await apiClient(opts);
      const created = await call(api.http.POST('/api/v1/tokens', { body: { role, name: opts.name } }));
      process.stdout.write(`${created.token}\n`);
      process.stderr.write(`created ${created.role} token ${created.id}; it is shown only this once\n`);
    }),
  );
  addApiOptions(
    tokens.command('list').description('list tokens (never their secrets)').option('--json', 'print JSON'),
  ).action(
    action(async (opts: ApiFlags & { json?: boolean }) => {
      const api = await apiClient(opts);
      const { items } = await call(api.http.GET('/api/v1/tokens'));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
        return;
      }
      for (const t of items) {
        process.stdout.write(
          `${t.id}  ${String(t.role).padEnd(8)} ${t.revokedAt ? 'revoked ' : 'live    '} ${t.name}\n`,
        );
      }
    }),
  );
  addApiOptions(tokens.command('revoke').description('revoke a token').argument('<ID>', 'token id')).action(
    action(async (id: string, opts: ApiFlags) => {
      const api = await apiClient(opts);
      await call(api.http.DELETE('/api/v1/tokens/{id}', { params: { path: { id } } }));
      process.stdout.write(`revoked ${id}\n`);
    }),
  );
}
