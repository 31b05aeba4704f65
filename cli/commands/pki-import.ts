/**
 * `dpu-ztp pki import DIR`: stores a PKI directory's server TLS, manufacturer,
 * owner and MASA credentials in the PostgreSQL database every replica shares,
 * private keys sealed with the shared secret key. Idempotent: the same
 * material again changes nothing; other material is refused unless
 * `--replace`, which rotates it on every replica within a second (NOTIFY).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { addConfigOptions, loadConfig } from '../config.js';
import { action, CliError } from '../exit.js';

async function importPki(dir: string, flags: Record<string, unknown>): Promise<void> {
  // Loaded here, not with the module: `dpu-ztp pki init` (registered beside this) needs none of them.
  const { CredentialStore, CredentialsError, loadOrCreateSecretKeyFile, SecretBox } = await import(
    '../../bootstrap/index.js'
  );
  const { createNotifier, migrateToLatest, openDatabase } = await import('../../db/index.js');
  const { readPkiDir } = await import('./serve-pki.js');
  const config = loadConfig(flags, process.env);
  if (!config.databaseUrl)
    throw new CliError(
      'CLI_ERR_USAGE',
      'pki import stores credentials for replicas sharing PostgreSQL: give --database-url or DATABASE_URL (with the embedded database, serve reads --pki-dir)',
    );
  // Never make a new key here: the credentials must open on every replica, with their key.
  if (!config.secretKey && !existsSync(config.secretKeyFile))
    throw new CliError(
      'SECRET_ERR_UNREADABLE',
      `no secret key: ${config.secretKeyFile} does not exist; give the replicas' key (DPU_ZTP_SECRET_KEY or --secret-key-file)`,
    );
  const box = new SecretBox(config.secretKey ?? loadOrCreateSecretKeyFile(config.secretKeyFile).key);
  const input = await readPkiDir(resolve(dir));
  const handle = await openDatabase({ databaseUrl: config.databaseUrl });
  const notifier = createNotifier(handle);
  try {
    await migrateToLatest(handle.db);
    const store = new CredentialStore({ db: handle.db, box, notifier });
    const r = await store.import(input, { replace: flags.replace === true }).catch((err: unknown) => {
      if (err instanceof CredentialsError)
        throw new CliError(
          err.code === 'CRED_ERR_EXISTS' ? 'CLI_ERR_EXISTS' : 'CLI_ERR_PKI_IMPORT',
          err.message,
        );
      throw err;
    });
    process.stdout.write(
      r.written.length
        ? `imported ${r.written.join(', ')}${r.unchanged.length ? ` (${r.unchanged.join(', ')} unchanged)` : ''}\n`
        : `nothing to do: ${r.unchanged.join(', ')} already stored\n`,
    );
  } finally {
    await notifier.close();
    await handle.close();
  }
}

/** Registers `dpu-ztp pki import` under the `pki` command. */
export function registerPkiImport(pki: Command): void {
  addConfigOptions(
    pki
      .command('import <dir>')
      .description(
        'store a PKI directory (pki init layout or real certificates) in the shared PostgreSQL database, keys sealed with the secret key',
      )
      .option(
        '--replace',
        'rotate credentials the database already holds (served by every replica within 1 s)',
      ),
  ).action(action((dir: string, opts: Record<string, unknown>) => importPki(dir, opts)));
}
