/**
 * `dpu-ztp idevids revoke|list|unrevoke`: revoked device identities (IDevIDs),
 * through the operator API (admin to change, viewer to list). A revocation is
 * in force on every replica from the device's next request on, without a
 * restart (see README "Revoked device identities").
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { components } from '../../web/api/index.js';
import { type ApiFlags, addApiOptions, apiClient, call } from '../api-client.js';
import { action, CliError } from '../exit.js';
import { normalizeFingerprint } from './serve-pki.js';

type Revoked = components['schemas']['RevokedIdevid'];

function fingerprintArg(input: string): string {
  const fp = normalizeFingerprint(input);
  if (!fp)
    throw new CliError(
      'CLI_ERR_USAGE',
      `${JSON.stringify(input.slice(0, 120))} is not a SHA-256 fingerprint (64 hex digits, colons optional)`,
    );
  return fp;
}

function line(r: Revoked): string {
  return `${r.fingerprint}  ${r.revokedAt}  ${r.revokedBy}${r.reason ? `  ${r.reason}` : ''}`;
}

/** Registers the `idevids` command group. */
export function registerIdevidCommands(program: Command): void {
  const idevids = program
    .command('idevids')
    .description('revoked device identities (IDevIDs): refused by every replica (operator API)');

  addApiOptions(
    idevids
      .command('revoke')
      .description('revoke a device identity by SHA-256 fingerprint or certificate (admin token)')
      .argument('[FINGERPRINT]', 'SHA-256 of the IDevID certificate (openssl x509 -fingerprint -sha256)')
      .option('--cert <FILE>', 'the IDevID certificate (PEM) instead of its fingerprint')
      .option('--reason <TEXT>', 'why (kept with the revocation and in the audit log)'),
  ).action(
    action(async (fp: string | undefined, o: ApiFlags & { cert?: string; reason?: string }) => {
      if ((fp === undefined) === (o.cert === undefined))
        throw new CliError('CLI_ERR_USAGE', 'give either a FINGERPRINT or --cert FILE');
      const reason = o.reason !== undefined ? { reason: o.reason } : {};
      let certificate: string | undefined;
      if (o.cert !== undefined) {
        try {
          certificate = await readFile(o.cert, 'utf8');
        } catch (err) {
          throw new CliError(
            'CLI_ERR_FILE',
            `cannot read --cert ${o.cert}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          );
        }
      }
      const fingerprint = fp === undefined ? undefined : fingerprintArg(fp);
      const api = await apiClient(o);
      const r =
        fingerprint !== undefined
          ? await call(
              api.http.PUT('/api/v1/revoked-idevids/{fingerprint}', {
                params: { path: { fingerprint } },
                body: reason,
              }),
            )
          : await call(
              api.http.POST('/api/v1/revoked-idevids', {
                body: { certificate: certificate as string, ...reason },
              }),
            );
      process.stdout.write(`revoked ${line(r)}\n`);
    }),
  );

  addApiOptions(
    idevids
      .command('list')
      .description('list revoked device identities, by fingerprint')
      .option('--json', 'print JSON'),
  ).action(
    action(async (o: ApiFlags & { json?: boolean }) => {
      const api = await apiClient(o);
      const items: Revoked[] = [];
      let cursor: string | null = null;
      do {
        const page: components['schemas']['RevokedIdevidPage'] = await call(
          api.http.GET('/api/v1/revoked-idevids', {
            params: { query: { limit: 500, ...(cursor ? { cursor } : {}) } },
          }),
        );
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
        return;
      }
      for (const r of items) process.stdout.write(`${line(r)}\n`);
    }),
  );

  addApiOptions(
    idevids
      .command('unrevoke')
      .description('lift a revocation: the device is accepted again on every replica (admin token)')
      .argument('<FINGERPRINT>', 'SHA-256 of the IDevID certificate'),
  ).action(
    action(async (fp: string, o: ApiFlags) => {
      const fingerprint = fingerprintArg(fp);
      const api = await apiClient(o);
      await call(
        api.http.DELETE('/api/v1/revoked-idevids/{fingerprint}', { params: { path: { fingerprint } } }),
      );
      process.stdout.write(`unrevoked ${fingerprint}\n`);
    }),
  );
}
