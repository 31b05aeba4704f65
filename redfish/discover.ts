/**
 * BMC discovery: probe a range of addresses for a Redfish service root, with
 * bounded concurrency and per-address timeouts, and tell DPU BMCs from others
 * by what the service itself says — a ComputerSystem with `SystemType: DPU`
 * (Redfish 2021.2+), a BlueField system or manager (NVIDIA BMC firmware before
 * SystemType existed), or a chassis that is a DPU card. Reads each DPU
 * system's serial number so the caller can register it.
 */
import { isIP } from 'node:net';
import { type AuthMode, type BmcTlsOptions, RedfishClient } from './client.js';
import { isRedfishError } from './errors.js';

/** Options of {@link discoverBmcs}. */
export interface DiscoverOptions {
  /** IPv4/IPv6 addresses to probe (see {@link expandAddressRange}). */
  readonly addresses: readonly string[];
  /** TCP port of the Redfish service (default 443). */
  readonly port?: number;
  /** `https` (default) or `http` (emulators, labs). */
  readonly scheme?: 'https' | 'http';
  readonly username: string;
  readonly password: string;
  readonly auth?: AuthMode;
  readonly tls?: BmcTlsOptions;
  /** Addresses probed at once (default 32). */
  readonly concurrency?: number;
  /** Connect and per-request timeout for each address (default 3000 ms). */
  readonly timeoutMs?: number;
  /** Told as each address is done (progress). */
  readonly onResult?: (result: DiscoveredBmc) => void;
}

/** One system a BMC manages. */
export interface DiscoveredSystem {
  readonly id: string;
  readonly serial?: string;
  readonly systemType?: string;
  readonly manufacturer?: string;
  readonly model?: string;
  /** Why this system counts as a DPU, when it does. */
  readonly dpu?: string;
}

/** What one address turned out to be. */
export interface DiscoveredBmc {
  readonly address: string;
  /** Base URL probed, e.g. `https://10.0.0.12:443`. */
  readonly url: string;
  /** A Redfish service root answered. */
  readonly redfish: boolean;
  /** A DPU system was found (see `systems[].dpu`). */
  readonly dpu: boolean;
  readonly systems: readonly DiscoveredSystem[];
  readonly product?: string;
  readonly vendor?: string;
  /** Why the address is not (or not known to be) a DPU BMC. */
  readonly reason?: string;
}

/** Largest range {@link expandAddressRange} expands (a /20). */
export const MAX_DISCOVERY_ADDRESSES = 4096;

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/**
 * Expands `10.0.0.10-10.0.0.200`, `10.0.0.10-200`, a CIDR (`10.0.0.0/24`: hosts
 * only, without the network and broadcast address below /31) or one address
 * (IPv4 or IPv6) into addresses. Throws on anything else or more than `max`.
 */
export function expandAddressRange(spec: string, max = MAX_DISCOVERY_ADDRESSES): string[] {
  const s = spec.trim();
  const bad = (why: string): never => {
    throw new Error(`address range ${JSON.stringify(spec)}: ${why}`);
  };
  if (isIP(s)) return [s];
  let first: number;
  let last: number;
  const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(s);
  const range = /^(\d+\.\d+\.\d+\.\d+)-(\d+\.\d+\.\d+\.\d+|\d{1,3})$/.exec(s);
  if (cidr) {
    if (isIP(cidr[1] as string) !== 4) bad('not an IPv4 address');
    const bits = Number(cidr[2]);
    if (bits > 32) bad('prefix length above 32');
    const size = 2 ** (32 - bits);
    first = Math.floor(ipv4ToInt(cidr[1] as string) / size) * size;
    last = first + size - 1;
    if (bits < 31) {
      first += 1;
      last -= 1;
    }
  } else if (range) {
    const from = range[1] as string;
    const to = (range[2] as string).includes('.')
      ? (range[2] as string)
      : `${from.split('.').slice(0, 3).join('.')}.${range[2]}`;
    if (isIP(from) !== 4 || isIP(to) !== 4) bad('not IPv4 addresses');
    first = ipv4ToInt(from);
    last = ipv4ToInt(to);
    if (last < first) bad('the range ends before it starts');
  } else {
    return bad('expected A.B.C.D-A.B.C.E, A.B.C.D-E, A.B.C.D/NN or one address');
  }
  if (last - first + 1 > max) bad(`${last - first + 1} addresses is more than ${max}`);
  const out: string[] = [];
  for (let n = first; n <= last; n++) out.push(intToIpv4(n));
  return out;
}

const DPU_NAME = /\b(DPU|BlueField|SmartNIC|IPU)\b/i;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function memberPaths(body: Record<string, unknown>): string[] {
  const members = Array.isArray(body.Members) ? body.Members : [];
  return members
    .map((m) => (m && typeof m === 'object' ? str((m as Record<string, unknown>)['@odata.id']) : undefined))
    .filter((p): p is string => p !== undefined)
    .slice(0, 64); // a BMC with more systems than this is not a DPU BMC
}

/** Probes one address; never throws (failures are in `reason`). */
export async function probeAddress(
  address: string,
  o: Omit<DiscoverOptions, 'addresses' | 'onResult' | 'concurrency'>,
): Promise<DiscoveredBmc> {
  const host = isIP(address) === 6 ? `[${address}]` : address;
  const url = `${o.scheme ?? 'https'}://${host}:${o.port ?? 443}`;
  const timeout = o.timeoutMs ?? 3000;
  const client = new RedfishClient({
    url,
    username: o.username,
    password: o.password,
    auth: o.auth ?? 'auto',
    ...(o.tls ? { tls: o.tls } : {}),
    timeouts: { connectMs: timeout, requestMs: timeout },
    retry: { attempts: 1 },
    maxConcurrency: 2,
  });
  const none = (reason: string, redfish = false): DiscoveredBmc => ({
    address,
    url,
    redfish,
    dpu: false,
    systems: [],
    reason,
  });
  try {
    let root: Record<string, unknown>;
    try {
      root = (await client.serviceRoot()) as Record<string, unknown>;
    } catch (err) {
      return none(`no Redfish service root: ${isRedfishError(err) ? err.message : (err as Error).message}`);
    }
    if (
      !str(root.RedfishVersion) &&
      root['@odata.id'] !== '/redfish/v1/' &&
      root['@odata.id'] !== '/redfish/v1'
    )
      return none('answers /redfish/v1/ but not as a Redfish service root');
    const product = str(root.Product);
    const vendor = str(root.Vendor);
    const link = (name: string) => {
      const l = root[name];
      return l && typeof l === 'object' ? str((l as Record<string, unknown>)['@odata.id']) : undefined;
    };
    const systems: DiscoveredSystem[] = [];
    try {
      const sysPath = link('Systems');
      if (sysPath) {
        for (const p of memberPaths((await client.get(sysPath)).body as Record<string, unknown>)) {
          const s = (await client.get(p)).body as Record<string, unknown>;
          const systemType = str(s.SystemType);
          const manufacturer = str(s.Manufacturer);
          const model = str(s.Model);
          const dpu =
            systemType === 'DPU'
              ? 'SystemType DPU'
              : DPU_NAME.test(`${model ?? ''} ${str(s.Name) ?? ''}`)
                ? `system model/name ${JSON.stringify(model ?? s.Name)}`
                : undefined;
          systems.push({
            id: str(s.Id) ?? p.split('/').pop() ?? p,
            ...(str(s.SerialNumber) ? { serial: str(s.SerialNumber) } : {}),
            ...(systemType ? { systemType } : {}),
            ...(manufacturer ? { manufacturer } : {}),
            ...(model ? { model } : {}),
            ...(dpu ? { dpu } : {}),
          });
        }
      }
      // A DPU card chassis marks the BMC's single system as the DPU even without SystemType.
      const chassisPath = link('Chassis');
      if (chassisPath && systems.length === 1 && !systems[0]?.dpu) {
        for (const p of memberPaths((await client.get(chassisPath)).body as Record<string, unknown>)) {
          const c = (await client.get(p)).body as Record<string, unknown>;
          const text = `${str(c.Model) ?? ''} ${str(c.Name) ?? ''} ${str(c.PartNumber) ?? ''}`;
          if (DPU_NAME.test(text)) {
            systems[0] = {
              ...(systems[0] as DiscoveredSystem),
              dpu: `chassis ${JSON.stringify(text.trim())}`,
            };
            break;
          }
        }
      }
    } catch (err) {
      const why = isRedfishError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
      return {
        ...none(`Redfish service, but its systems could not be read (${why})`, true),
        product,
        vendor,
      } as DiscoveredBmc;
    }
    const dpu = systems.some((s) => s.dpu);
    return {
      address,
      url,
      redfish: true,
      dpu,
      systems,
      ...(product ? { product } : {}),
      ...(vendor ? { vendor } : {}),
      ...(dpu
        ? {}
        : { reason: systems.length ? 'no DPU system (SystemType, model or chassis)' : 'no systems' }),
    };
  } finally {
    await client.close().catch(() => {});
  }
}

/** Probes every address with at most `concurrency` in flight; results in address order. */
export async function discoverBmcs(o: DiscoverOptions): Promise<DiscoveredBmc[]> {
  const out: DiscoveredBmc[] = new Array(o.addresses.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= o.addresses.length) return;
      const r = await probeAddress(o.addresses[i] as string, o);
      out[i] = r;
      o.onResult?.(r);
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 32, o.addresses.length)) }, worker),
  );
  return out;
}
