/**
 * `dpu-ztp bmc discover`: find the DPU BMCs in an address range, print what
 * each address is, and with `--register` create their BMC records and devices
 * through the operator API (idempotent: a second run changes nothing).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type DiscoveredBmc, discoverBmcs, expandAddressRange } from '../../redfish/index.js';
import { type ApiClient, type ApiFlags, addApiOptions, apiClient, call } from '../api-client.js';
import { action, CliError } from '../exit.js';

interface DiscoverFlags extends ApiFlags {
  range: string[];
  port: string;
  http?: boolean;
  username: string;
  passwordFile?: string;
  ca?: string;
  insecure?: boolean;
  concurrency: string;
  timeout: string;
  register?: boolean;
  profile?: string;
  json?: boolean;
}

/** What `--register` did for one DPU. */
interface Registration {
  serial: string;
  bmc: string;
  bmcRecord: 'created' | 'unchanged' | 'updated';
  device: 'created' | 'unchanged' | 'updated';
}

/** A BMC id from its address and port: `bmc-10-0-0-12` (`-p8443` when not 443). */
export function bmcIdFor(address: string, port: number): string {
  const base = `bmc-${address.replace(/[^0-9A-Za-z]+/g, '-').replace(/^-|-$/g, '')}`;
  return port === 443 ? base : `${base}-p${port}`;
}

function positiveInt(v: string, flag: string, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new CliError('CLI_ERR_USAGE', `${flag} must be 1..${max}`);
  return n;
}

async function getOrUndefined<T>(pending: Promise<{ data?: T; response: Response }>): Promise<T | undefined> {
  try {
    return await call(pending);
  } catch (err) {
    if ((err as { code?: string }).code === 'API_ERR_NOT_FOUND') return undefined;
    throw err;
  }
}

async function register(
  api: ApiClient,
  found: DiscoveredBmc,
  port: number,
  f: DiscoverFlags,
  password: string,
  ca: string | undefined,
): Promise<Registration[]> {
  const out: Registration[] = [];
  const bmcId = bmcIdFor(found.address, port);
  const address = found.url;
  const existing = await getOrUndefined(
    api.http.GET('/api/v1/bmcs/{id}', { params: { path: { id: bmcId } } }),
  );
  let bmcRecord: Registration['bmcRecord'] = 'unchanged';
  if (!existing || existing.address !== address || existing.username !== f.username) {
    await call(
      api.http.PUT('/api/v1/bmcs/{id}', {
        params: { path: { id: bmcId } },
        body: {
          address,
          username: f.username,
          password,
          ...(ca ? { caCertificate: ca } : {}),
          ...(f.insecure ? { insecure: true } : {}),
        },
      }),
    );
    bmcRecord = existing ? 'updated' : 'created';
  }
  for (const s of found.systems) {
    if (!s.dpu) continue;
    if (!s.serial)
      throw new CliError('CLI_ERR_DISCOVER', `${found.url}: DPU system ${s.id} reports no serial number`);
    const serial = s.serial;
    const dev = await getOrUndefined(
      api.http.GET('/api/v1/devices/{serial}', { params: { path: { serial } } }),
    );
    let device: Registration['device'] = 'unchanged';
    if (!dev || dev.bmc !== bmcId || (f.profile !== undefined && dev.profile !== f.profile)) {
      await call(
        api.http.PUT('/api/v1/devices/{serial}', {
          params: { path: { serial } },
          body: {
            ...(dev?.profile ? { profile: dev.profile } : {}),
            ...(f.profile ? { profile: f.profile } : {}),
            bmc: bmcId,
          },
        }),
      );
      device = dev ? 'updated' : 'created';
    }
    out.push({ serial: s.serial, bmc: bmcId, bmcRecord, device });
  }
  return out;
}

function line(r: DiscoveredBmc): string {
  if (r.dpu) {
    const dpus = r.systems.filter((s) => s.dpu);
    return `${r.url}  DPU BMC  ${dpus.map((s) => `system ${s.id} SN ${s.serial ?? '?'} (${s.dpu})`).join('; ')}`;
  }
  return `${r.url}  ${r.redfish ? 'Redfish, not a DPU' : 'no Redfish'}: ${r.reason ?? ''}`;
}

/** Adds `discover` to the `bmc` command. */
export function registerBmcDiscover(bmc: Command): void {
  addApiOptions(
    bmc
      .command('discover')
      .description('find DPU BMCs in an address range; with --register, add them and their devices')
      .requiredOption(
        '--range <spec>',
        'A.B.C.D-A.B.C.E, A.B.C.D-E, A.B.C.D/NN or one address (repeatable)',
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option('--port <port>', 'Redfish port', '443')
      .option('--http', 'plain http (emulators)')
      .requiredOption('--username <user>', 'BMC account')
      .option('--password-file <file>', 'file holding the BMC password (else env DPU_ZTP_BMC_PASSWORD)')
      .option('--ca <file>', 'PEM CA the BMCs’ certificates chain to')
      .option('--insecure', 'do not verify BMC certificates')
      .option('--concurrency <n>', 'addresses probed at once', '32')
      .option('--timeout <ms>', 'connect and request timeout per address', '3000')
      .option('--register', 'create the BMC records and devices found (idempotent)')
      .option('--profile <name>', 'with --register: the profile new devices get')
      .option('--json', 'print the findings (and registrations) as JSON'),
  ).action(
    action(async (f: DiscoverFlags) => {
      const port = positiveInt(f.port, '--port', 65535);
      const concurrency = positiveInt(f.concurrency, '--concurrency', 256);
      const timeoutMs = positiveInt(f.timeout, '--timeout', 120_000);
      if (f.ca && f.insecure)
        throw new CliError('CLI_ERR_USAGE', '--ca and --insecure are mutually exclusive');
      // BMC records hold https:// addresses only (the inventory refuses plain http).
      if (f.register && f.http)
        throw new CliError(
          'CLI_ERR_USAGE',
          '--register needs https BMCs: BMC records take https:// addresses only',
        );
      let addresses: string[];
      try {
        addresses = [...new Set(f.range.flatMap((r) => expandAddressRange(r)))];
      } catch (err) {
        throw new CliError('CLI_ERR_USAGE', (err as Error).message);
      }
      let password = process.env.DPU_ZTP_BMC_PASSWORD;
      if (f.passwordFile) {
        try {
          password = readFileSync(f.passwordFile, 'utf8').replace(/\r?\n$/, '');
        } catch (err) {
          throw new CliError('CLI_ERR_FILE', `cannot read --password-file: ${(err as Error).message}`);
        }
      }
      if (password === undefined)
        throw new CliError('CLI_ERR_USAGE', '--password-file (or DPU_ZTP_BMC_PASSWORD) is required');
      const ca = f.ca ? readFileSync(f.ca, 'utf8') : undefined;
      // Fail on a bad token or an unreachable API before probing anything.
      const api = f.register ? await apiClient(f) : undefined;
      if (api) await call(api.http.GET('/api/v1/bmcs', { params: { query: { limit: 1 } } }));
      const tty = process.stderr.isTTY && !f.json;
      let done = 0;
      const results = await discoverBmcs({
        addresses,
        port,
        scheme: f.http ? 'http' : 'https',
        username: f.username,
        password,
        ...(ca ? { tls: { ca } } : f.insecure ? { tls: { insecure: true } } : {}),
        concurrency,
        timeoutMs,
        onResult: (r) => {
          done++;
          if (tty) process.stderr.write(`\rprobed ${done}/${addresses.length}`);
          else if (!f.json && r.redfish) process.stdout.write(`${line(r)}\n`);
        },
      });
      if (tty) {
        process.stderr.write('\n');
        for (const r of results) if (r.redfish) process.stdout.write(`${line(r)}\n`);
      }
      const dpus = results.filter((r) => r.dpu);
      const registrations: Registration[] = [];
      if (api) for (const r of dpus) registrations.push(...(await register(api, r, port, f, password, ca)));
      if (f.json) {
        process.stdout.write(
          `${JSON.stringify({ probed: addresses.length, found: results.filter((r) => r.redfish), registrations }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(
        `${addresses.length} addresses probed: ${results.filter((r) => r.redfish).length} Redfish services, ${dpus.length} DPU BMCs\n`,
      );
      for (const g of registrations)
        process.stdout.write(`registered ${g.serial} via ${g.bmc}: BMC ${g.bmcRecord}, device ${g.device}\n`);
    }),
  );
}
