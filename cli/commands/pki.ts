/**
 * `dpu-ztp pki …`: operator commands over `pki/`. Only this file touches the
 * file system; `createLabPki` stays pure.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { DEVICE_SERIAL_RE, type KeyAlgorithm, createLabPki } from '../../pki/index.js';
import { CliError, action } from '../exit.js';

const ALGORITHMS = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072'] as const;
const FIXED_FILES = ['manufacturer-ca', 'masa-ca', 'masa', 'owner-ca', 'owner', 'tls-ca', 'server'].flatMap(
  (n) => [`${n}.crt`, `${n}.key`],
);

const list = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes via a temp file created with the final mode, then renames: no moment with a readable key. */
export async function writeAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode, flag: 'wx' });
  await chmod(tmp, mode); // the umask may have narrowed or (never) widened it
  await rename(tmp, path);
}

interface InitOptions {
  out: string;
  alg: KeyAlgorithm;
  devices?: string;
  serverNames?: string;
  force?: boolean;
}

/** Registers `dpu-ztp pki init`. */
export function registerPkiCommands(program: Command): void {
  const pki = program
    .command('pki')
    .description('lab PKI for RFC 8572 sZTP (manufacturer, MASA, owner, TLS, devices)');
  pki
    .command('init')
    .description('write a complete lab PKI as PEM files (keys PKCS#8, mode 0600) plus per-device vouchers')
    .requiredOption('--out <dir>', 'directory to write into')
    .addOption(
      new Option('--alg <alg>', 'key algorithm for every key').choices(ALGORITHMS).default('ec-p256'),
    )
    .option(
      '--devices <sn,…>',
      'device serial numbers: each gets devices/<SN>/{idevid.crt,idevid.key,ownership-voucher.cms}',
    )
    .option(
      '--server-names <a,b,…>',
      'bootstrap server SANs (default: localhost, 127.0.0.1, ::1 and this host name)',
    )
    .option('--force', 'overwrite an existing PKI')
    .action(
      action(async (opts: InitOptions) => {
        const out = resolve(opts.out);
        const devices = list(opts.devices);
        for (const sn of devices)
          if (!DEVICE_SERIAL_RE.test(sn))
            throw new CliError(
              'CLI_ERR_USAGE',
              `device serial '${sn}' must match ${DEVICE_SERIAL_RE.source}`,
            );
        const serverNames = opts.serverNames
          ? list(opts.serverNames)
          : [...new Set(['localhost', '127.0.0.1', '::1', hostname()].filter(Boolean))];
        const planned = [
          ...FIXED_FILES,
          ...devices.flatMap((sn) =>
            ['idevid.crt', 'idevid.key', 'ownership-voucher.cms'].map((f) => `devices/${sn}/${f}`),
          ),
        ];
        if (!opts.force) {
          const clashes: string[] = [];
          for (const f of planned) if (await exists(join(out, f))) clashes.push(f);
          if (clashes.length > 0)
            throw new CliError(
              'CLI_ERR_EXISTS',
              `${out} already holds a PKI (${clashes.slice(0, 3).join(', ')}${clashes.length > 3 ? ', …' : ''}); use --force to overwrite`,
            );
        }
        const lab = await createLabPki({ algorithm: opts.alg, devices, serverNames, now: new Date() });
        await mkdir(out, { recursive: true, mode: 0o755 });
        for (const f of lab.files) await writeAtomic(join(out, f.path), f.data, f.mode);
        process.stdout.write(
          `wrote lab PKI (${opts.alg}) to ${out}: ${lab.files.length} files, ${devices.length} device(s); server SANs ${serverNames.join(', ')}\n`,
        );
      }),
    );
}
