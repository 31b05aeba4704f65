/**
 * The PKI `serve` uses: bootstrap-server TLS certificate and key, and the
 * manufacturer CA(s) device IDevIDs chain to, from `--pki-dir` (the layout
 * `dpu-ztp pki init` writes).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DeviceTls } from '../../sztp-server/index.js';
import { CliError } from '../exit.js';

/** Reads the device listener's TLS material from `pkiDir`. */
export async function loadDeviceTls(pkiDir: string, log: Logger): Promise<DeviceTls> {
  const certPath = join(pkiDir, 'server.crt');
  const keyPath = join(pkiDir, 'server.key');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    throw new CliError(
      'SERVE_ERR_NO_PKI',
      `--pki-dir ${pkiDir}: no server.crt/server.key (run dpu-ztp pki init --out ${pkiDir})`,
    );
  }
  const ca: Buffer[] = [];
  const manufacturer = join(pkiDir, 'manufacturer-ca.crt');
  if (existsSync(manufacturer)) ca.push(await readFile(manufacturer));
  log.debug({ pkiDir }, 'device TLS material loaded');
  return { cert: await readFile(certPath), key: await readFile(keyPath), ca };
}
