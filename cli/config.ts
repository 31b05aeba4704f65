/**
 * Service configuration: parsed once (flags > environment > config file >
 * defaults), validated, frozen (STYLE.md lesson 5). A bad value stops start-up
 * with one line naming the setting. Only `cli/` reads argv and env.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parseSecretKey } from '../bootstrap/index.js';
import { parseDatabaseUrl } from '../db/index.js';
import { CliError } from './exit.js';

/** Log output format: JSON lines, human-readable, or pretty on a TTY and JSON otherwise. */
export type LogFormat = 'json' | 'pretty' | 'auto';

/** The validated, frozen service configuration. */
export interface ServiceConfig {
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  readonly host: string;
  readonly apiPort: number;
  readonly devicePort: number;
  readonly imagesPort: number;
  readonly pkiDir: string;
  /** Image files (`--images-dir`, default `<data-dir>/images`): a volume every replica mounts when there are several. */
  readonly imagesDir: string;
  readonly apiTlsCert: string | undefined;
  readonly apiTlsKey: string | undefined;
  readonly logLevel: string;
  readonly logFormat: LogFormat;
  readonly unknownDevices: 'reject' | 'hold';
  /** HTTP Basic failures allowed per serial and per address in a window before 429 (`--basic-auth-throttle`). */
  readonly basicAuthThrottle: { perSerial: number; perAddress: number; windowMs: number };
  readonly migrate: boolean;
  /** Base URL the images HTTP listener is reached at (`http://host:port[/prefix]`); default: the request's local address. */
  readonly imagesAdvertiseUrl: string | undefined;
  /** Base URL the device TLS listener is reached at (`https://host:port[/prefix]`); default: the request's local address. */
  readonly deviceAdvertiseUrl: string | undefined;
  /** Connection limits applied to every listener (see {@link ConnectionLimits}). */
  readonly connections: ConnectionLimits;
  /**
   * The key that seals BMC passwords at rest: the file it lives in (created with mode 0600
   * on first start when it is the default), unless `DPU_ZTP_SECRET_KEY` gave the key itself.
   */
  readonly secretKeyFile: string;
  /**
   * The 32-byte key from `DPU_ZTP_SECRET_KEY` (hex or base64), if given. Not enumerable, so
   * that logging or printing the config never shows it.
   */
  readonly secretKey: Buffer | undefined;
  /** Device runs of provisioning jobs in progress at once on this replica. */
  readonly maxConcurrentProvisions: number;
  /** await-device bound in seconds (reset → first sZTP contact). */
  readonly awaitDeviceTimeout: number;
  /** await-complete bound in seconds (first contact → bootstrap-complete). */
  readonly awaitCompleteTimeout: number;
  /** Lease of a device run in seconds: a dead replica's runs are taken over this long after it stopped. */
  readonly jobLease: number;
  /** A trace viewer URL template with `{traceId}`: the dashboard links each device run's trace. */
  readonly traceUiUrl: string | undefined;
}

/** Timeouts (ms) and the connection cap of each listener. */
export interface ConnectionLimits {
  /** A connection with no traffic either way for this long is closed (a moving download never is). */
  readonly idleTimeoutMs: number;
  /** Time from connection (or the previous response) to a request's complete headers. */
  readonly headersTimeoutMs: number;
  /** Time to receive a whole request on the device and images listeners (their requests are small). */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed this long after its last response. */
  readonly keepAliveTimeoutMs: number;
  /** A TLS connection that has not finished its handshake after this long is closed. */
  readonly tlsHandshakeTimeoutMs: number;
  /** Open connections per listener; more are closed on accept. */
  readonly maxConnections: number;
}

/** Defaults of {@link ConnectionLimits}. */
export const CONNECTION_DEFAULTS: ConnectionLimits = Object.freeze({
  idleTimeoutMs: 120_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 65_000,
  tlsHandshakeTimeoutMs: 10_000,
  maxConnections: 4096,
});

type Raw = string | number | boolean;

/** Every setting's key: a top-level config field or a connection limit. */
type SettingKey = keyof ServiceConfig | keyof ConnectionLimits;
type SettingValue<K extends SettingKey> = K extends keyof ServiceConfig
  ? ServiceConfig[K]
  : K extends keyof ConnectionLimits
    ? ConnectionLimits[K]
    : never;

interface Setting<K extends SettingKey> {
  key: K;
  flag: string; // without dashes
  env?: string;
  placeholder: string;
  description: string;
  defaultText?: string;
  parse(value: Raw, where: string): SettingValue<K>;
}

function fail(where: string, message: string): never {
  throw new CliError('CONFIG_ERR_INVALID', `${where}: ${message}`);
}

function port(value: Raw, where: string): number {
  const s = String(value).trim();
  if (!/^\d+$/.test(s)) fail(where, `must be a port number 0-65535, got ${JSON.stringify(String(value))}`);
  const n = Number(s);
  if (n > 65535) fail(where, `port ${n} is out of range 0-65535`);
  return n;
}

function nonEmpty(value: Raw, where: string): string {
  const s = String(value);
  if (s.trim() === '') fail(where, 'must not be empty');
  if (s.includes('\0')) fail(where, 'must not contain NUL');
  return s;
}

/** `SERIAL/ADDRESS/SECONDS`: failed HTTP Basic attempts per serial, per address, and the window. */
function basicThrottle(value: Raw, where: string): ServiceConfig['basicAuthThrottle'] {
  const m = /^(\d{1,6})\/(\d{1,7})\/(\d{1,6})$/.exec(String(value).trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || Number(m[3]) < 1)
    fail(
      where,
      `must be PER_SERIAL/PER_ADDRESS/WINDOW_SECONDS (e.g. 10/50/300), got ${JSON.stringify(String(value))}`,
    );
  return { perSerial: Number(m[1]), perAddress: Number(m[2]), windowMs: Number(m[3]) * 1000 };
}

function oneOf<T extends string>(allowed: readonly T[]) {
  return (value: Raw, where: string): T => {
    const s = String(value);
    if (!(allowed as readonly string[]).includes(s))
      fail(where, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(s)}`);
    return s as T;
  };
}

/** An advertised base URL: the given scheme, a host, no query or fragment; stored without a trailing slash. */
function baseUrl(scheme: 'http' | 'https') {
  return (value: Raw, where: string): string => {
    const s = nonEmpty(value, where).trim();
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      fail(where, `must be a URL like ${scheme}://host:port, got ${JSON.stringify(s)}`);
    }
    if (u.protocol !== `${scheme}:`) fail(where, `must be an ${scheme}:// URL, got ${JSON.stringify(s)}`);
    if (!u.hostname) fail(where, 'must name a host');
    if (u.search || u.hash || u.username || u.password)
      fail(where, 'must not carry a query, fragment or credentials');
    return u.toString().replace(/\/+$/, '');
  };
}

/** An http(s) URL template holding `{traceId}` (the dashboard fills in a run's trace id). */
function traceUiUrl(value: Raw, where: string): string {
  const s = nonEmpty(value, where).trim();
  if (!s.includes('{traceId}')) fail(where, 'must contain {traceId}, where the trace id goes');
  let u: URL;
  try {
    u = new URL(s.replaceAll('{traceId}', '0'));
  } catch {
    fail(where, `must be a URL like https://grafana.lab/trace/{traceId}, got ${JSON.stringify(s)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(where, 'must be an http:// or https:// URL');
  if (u.username || u.password) fail(where, 'must not carry credentials');
  return s;
}

/** A count in [min, max]. */
function count(min: number, max: number) {
  return (value: Raw, where: string): number => {
    const s = String(value).trim();
    if (!/^\d+$/.test(s))
      fail(where, `must be a whole number ${min}-${max}, got ${JSON.stringify(String(value))}`);
    const n = Number(s);
    if (n < min || n > max) fail(where, `must be ${min}-${max}, got ${n}`);
    return n;
  };
}

/** A duration in seconds (decimals allowed) in [min, max]. */
function seconds(min: number, max: number) {
  return (value: Raw, where: string): number => {
    const s = String(value).trim();
    if (!/^\d+(\.\d+)?$/.test(s))
      fail(where, `must be a number of seconds, got ${JSON.stringify(String(value))}`);
    const n = Number(s);
    if (n < min || n > max) fail(where, `must be ${min}-${max} seconds, got ${n}`);
    return n;
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every setting with its flag, environment variable and default (the README table mirrors this). */
export const SETTINGS = [
  {
    key: 'dataDir',
    flag: 'data-dir',
    env: 'DPU_ZTP_DATA_DIR',
    placeholder: 'DIR',
    description: 'data directory (embedded database, PKI, images)',
    defaultText: './data',
    parse: nonEmpty,
  },
  {
    key: 'databaseUrl',
    flag: 'database-url',
    env: 'DATABASE_URL',
    placeholder: 'URL',
    description: 'PostgreSQL URL (postgres://…); embedded PGlite when unset',
    parse: (v: Raw, where: string) => {
      const s = nonEmpty(v, where);
      try {
        parseDatabaseUrl(s);
      } catch (err) {
        fail(where, (err as Error).message);
      }
      return s;
    },
  },
  {
    key: 'host',
    flag: 'host',
    env: 'DPU_ZTP_HOST',
    placeholder: 'ADDR',
    description: 'address every listener binds',
    defaultText: '0.0.0.0',
    parse: nonEmpty,
  },
  {
    key: 'apiPort',
    flag: 'api-port',
    env: 'DPU_ZTP_API_PORT',
    placeholder: 'PORT',
    description: 'operator API and dashboard port',
    defaultText: '8080',
    parse: port,
  },
  {
    key: 'devicePort',
    flag: 'device-port',
    env: 'DPU_ZTP_DEVICE_PORT',
    placeholder: 'PORT',
    description: 'device RESTCONF + HTTPS images port (TLS)',
    defaultText: '8443',
    parse: port,
  },
  {
    key: 'imagesPort',
    flag: 'images-port',
    env: 'DPU_ZTP_IMAGES_PORT',
    placeholder: 'PORT',
    description: 'images over plain HTTP port',
    defaultText: '8081',
    parse: port,
  },
  {
    key: 'imagesAdvertiseUrl',
    flag: 'images-advertise-url',
    env: 'DPU_ZTP_IMAGES_ADVERTISE_URL',
    placeholder: 'URL',
    description: 'base URL BMCs and devices reach the images HTTP listener at, in handed-out image URLs',
    defaultText: 'http://<address the request came in on>:<images-port>',
    parse: baseUrl('http'),
  },
  {
    key: 'deviceAdvertiseUrl',
    flag: 'device-advertise-url',
    env: 'DPU_ZTP_DEVICE_ADVERTISE_URL',
    placeholder: 'URL',
    description: 'base URL devices reach the device TLS listener at, in handed-out image URLs',
    defaultText: 'https://<address the request came in on>:<device-port>',
    parse: baseUrl('https'),
  },
  {
    key: 'traceUiUrl',
    flag: 'trace-ui-url',
    env: 'DPU_ZTP_TRACE_UI_URL',
    placeholder: 'URL',
    description: "trace viewer URL with {traceId}: the dashboard links each device run's trace there",
    parse: traceUiUrl,
  },
  {
    key: 'idleTimeoutMs',
    flag: 'idle-timeout',
    env: 'DPU_ZTP_IDLE_TIMEOUT',
    placeholder: 'MS',
    description: 'close a connection with no traffic either way for this long (every listener)',
    defaultText: String(CONNECTION_DEFAULTS.idleTimeoutMs),
    parse: count(1000, 86_400_000),
  },
  {
    key: 'headersTimeoutMs',
    flag: 'headers-timeout',
    env: 'DPU_ZTP_HEADERS_TIMEOUT',
    placeholder: 'MS',
    description: "time a client has to send a request's headers",
    defaultText: String(CONNECTION_DEFAULTS.headersTimeoutMs),
    parse: count(1000, 600_000),
  },
  {
    key: 'requestTimeoutMs',
    flag: 'request-timeout',
    env: 'DPU_ZTP_REQUEST_TIMEOUT',
    placeholder: 'MS',
    description: 'time to receive a whole request on the device and images listeners',
    defaultText: String(CONNECTION_DEFAULTS.requestTimeoutMs),
    parse: count(1000, 3_600_000),
  },
  {
    key: 'keepAliveTimeoutMs',
    flag: 'keep-alive-timeout',
    env: 'DPU_ZTP_KEEP_ALIVE_TIMEOUT',
    placeholder: 'MS',
    description: 'close an idle keep-alive connection this long after its last response',
    defaultText: String(CONNECTION_DEFAULTS.keepAliveTimeoutMs),
    parse: count(1000, 3_600_000),
  },
  {
    key: 'tlsHandshakeTimeoutMs',
    flag: 'tls-handshake-timeout',
    env: 'DPU_ZTP_TLS_HANDSHAKE_TIMEOUT',
    placeholder: 'MS',
    description: 'close a TLS connection whose handshake has not finished after this long',
    defaultText: String(CONNECTION_DEFAULTS.tlsHandshakeTimeoutMs),
    parse: count(1000, 600_000),
  },
  {
    key: 'maxConnections',
    flag: 'max-connections',
    env: 'DPU_ZTP_MAX_CONNECTIONS',
    placeholder: 'N',
    description: 'open connections per listener; more are closed on accept',
    defaultText: String(CONNECTION_DEFAULTS.maxConnections),
    parse: count(1, 1_000_000),
  },
  {
    key: 'pkiDir',
    flag: 'pki-dir',
    env: 'DPU_ZTP_PKI_DIR',
    placeholder: 'DIR',
    description: 'PKI directory (layout of `dpu-ztp pki init`)',
    defaultText: '<data-dir>/pki',
    parse: nonEmpty,
  },
  {
    key: 'imagesDir',
    flag: 'images-dir',
    env: 'DPU_ZTP_IMAGES_DIR',
    placeholder: 'DIR',
    description:
      'image files; with several replicas a volume every one mounts (rename must be atomic: NFSv4, cloud file stores)',
    defaultText: '<data-dir>/images',
    parse: nonEmpty,
  },
  {
    key: 'apiTlsCert',
    flag: 'api-tls-cert',
    env: 'DPU_ZTP_API_TLS_CERT',
    placeholder: 'FILE',
    description: 'PEM certificate: serve the operator API over HTTPS',
    parse: nonEmpty,
  },
  {
    key: 'apiTlsKey',
    flag: 'api-tls-key',
    env: 'DPU_ZTP_API_TLS_KEY',
    placeholder: 'FILE',
    description: 'PEM private key for --api-tls-cert',
    parse: nonEmpty,
  },
  {
    key: 'secretKeyFile',
    flag: 'secret-key-file',
    env: 'DPU_ZTP_SECRET_KEY_FILE',
    placeholder: 'FILE',
    description:
      'file holding the 32-byte key (64 hex digits or base64) that encrypts BMC passwords; created (mode 0600) when it is the default and missing. DPU_ZTP_SECRET_KEY gives the key itself instead',
    defaultText: '<data-dir>/secret.key',
    parse: nonEmpty,
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'DPU_ZTP_LOG_LEVEL',
    placeholder: 'LEVEL',
    description: `log level (${LOG_LEVELS.join('|')})`,
    defaultText: 'info',
    parse: oneOf(LOG_LEVELS),
  },
  {
    key: 'logFormat',
    flag: 'log-format',
    env: 'DPU_ZTP_LOG_FORMAT',
    placeholder: 'FMT',
    description: 'json | pretty | auto (pretty on a terminal)',
    defaultText: 'auto',
    parse: oneOf(['json', 'pretty', 'auto'] as const),
  },
  {
    key: 'unknownDevices',
    flag: 'unknown-devices',
    env: 'DPU_ZTP_UNKNOWN_DEVICES',
    placeholder: 'POLICY',
    description:
      'devices with a valid IDevID but not registered: reject | hold (recorded as pending until approved)',
    defaultText: 'reject',
    parse: oneOf(['reject', 'hold'] as const),
  },
  {
    key: 'maxConcurrentProvisions',
    flag: 'max-concurrent-provisions',
    env: 'DPU_ZTP_MAX_CONCURRENT_PROVISIONS',
    placeholder: 'N',
    description: 'device runs of jobs in progress at once on this replica (one per BMC always)',
    defaultText: '64',
    parse: count(1, 100_000),
  },
  {
    key: 'awaitDeviceTimeout',
    flag: 'await-device-timeout',
    env: 'DPU_ZTP_AWAIT_DEVICE_TIMEOUT',
    placeholder: 'SECONDS',
    description: "jobs' await-device bound: from the reset to the device's first sZTP contact",
    defaultText: '2400',
    parse: seconds(0.1, 86_400),
  },
  {
    key: 'awaitCompleteTimeout',
    flag: 'await-complete-timeout',
    env: 'DPU_ZTP_AWAIT_COMPLETE_TIMEOUT',
    placeholder: 'SECONDS',
    description: "jobs' await-complete bound: from the first contact to bootstrap-complete",
    defaultText: '1800',
    parse: seconds(0.1, 86_400),
  },
  {
    key: 'jobLease',
    flag: 'job-lease',
    env: 'DPU_ZTP_JOB_LEASE',
    placeholder: 'SECONDS',
    description:
      "a device run's lease: how soon another replica (or a restart) takes over a dead replica's runs",
    defaultText: '30',
    parse: seconds(0.3, 3600),
  },
  {
    key: 'basicAuthThrottle',
    flag: 'basic-auth-throttle',
    env: 'DPU_ZTP_BASIC_AUTH_THROTTLE',
    placeholder: 'S/A/SECONDS',
    description:
      'failed device HTTP Basic attempts allowed per serial / per client address within SECONDS before 429',
    defaultText: '10/50/300',
    parse: basicThrottle,
  },
] as const satisfies readonly Setting<SettingKey>[];

/** Adds `--config` and every setting's flag to a command, so `--help` lists them. */
export function addConfigOptions(cmd: Command): Command {
  cmd.option('--config <FILE>', 'JSON config file whose keys are the flag names (env DPU_ZTP_CONFIG)');
  for (const s of SETTINGS) {
    const env = 'env' in s ? ` (env ${s.env})` : '';
    const def = 'defaultText' in s ? ` [default: ${s.defaultText}]` : '';
    cmd.option(`--${s.flag} <${s.placeholder}>`, `${s.description}${env}${def}`);
  }
  return cmd;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function readConfigFile(path: string): Record<string, Raw> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    fail(
      `--config ${path}`,
      `cannot read config file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    fail(`--config ${path}`, `not valid JSON: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    fail(`--config ${path}`, 'must hold a JSON object');
  const known = new Set<string>(SETTINGS.map((s) => s.flag));
  const out: Record<string, Raw> = {};
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    if (!known.has(k))
      fail(`--config ${path}`, `unknown setting ${JSON.stringify(k)} (known: ${[...known].join(', ')})`);
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      fail(`--config ${path}: ${k}`, 'must be a string, number or boolean');
    }
    out[k] = v;
  }
  return out;
}

/**
 * Builds the frozen config from parsed flags (commander's `opts()`), the
 * environment and the optional config file. Throws CONFIG_ERR_INVALID naming
 * the setting on any bad value.
 */
export function loadConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): ServiceConfig {
  const configPath = (flags.config as string | undefined) ?? env.DPU_ZTP_CONFIG;
  const file = configPath ? readConfigFile(configPath) : {};
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const fromFlag = flags[camel(s.flag)];
    const envName = 'env' in s ? s.env : undefined;
    const fromEnv = envName ? env[envName] : undefined;
    let value: Raw | undefined;
    let where: string;
    if (fromFlag !== undefined) {
      value = fromFlag as Raw;
      where = `--${s.flag}`;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      value = fromEnv;
      where = `${envName}`;
    } else if (file[s.flag] !== undefined) {
      value = file[s.flag];
      where = `${s.flag} in ${configPath}`;
    } else {
      continue;
    }
    out[s.key] = (s.parse as (v: Raw, w: string) => unknown)(value as Raw, where);
  }
  const dataDir = resolve((out.dataDir as string | undefined) ?? './data');
  const config: ServiceConfig = {
    dataDir,
    databaseUrl: out.databaseUrl as string | undefined,
    host: (out.host as string | undefined) ?? '0.0.0.0',
    apiPort: (out.apiPort as number | undefined) ?? 8080,
    devicePort: (out.devicePort as number | undefined) ?? 8443,
    imagesPort: (out.imagesPort as number | undefined) ?? 8081,
    pkiDir: resolve((out.pkiDir as string | undefined) ?? `${dataDir}/pki`),
    imagesDir: resolve((out.imagesDir as string | undefined) ?? join(dataDir, 'images')),
    apiTlsCert: out.apiTlsCert as string | undefined,
    apiTlsKey: out.apiTlsKey as string | undefined,
    logLevel: (out.logLevel as string | undefined) ?? 'info',
    logFormat: (out.logFormat as LogFormat | undefined) ?? 'auto',
    unknownDevices: (out.unknownDevices as 'reject' | 'hold' | undefined) ?? 'reject',
    basicAuthThrottle: (out.basicAuthThrottle as ServiceConfig['basicAuthThrottle'] | undefined) ?? {
      perSerial: 10,
      perAddress: 50,
      windowMs: 300_000,
    },
    migrate: flags.migrate !== false,
    imagesAdvertiseUrl: out.imagesAdvertiseUrl as string | undefined,
    deviceAdvertiseUrl: out.deviceAdvertiseUrl as string | undefined,
    connections: Object.freeze(
      Object.fromEntries(
        Object.entries(CONNECTION_DEFAULTS).map(([k, v]) => [k, (out[k] as number | undefined) ?? v]),
      ) as unknown as ConnectionLimits,
    ),
    secretKeyFile: resolve((out.secretKeyFile as string | undefined) ?? join(dataDir, 'secret.key')),
    secretKey: undefined,
    maxConcurrentProvisions: (out.maxConcurrentProvisions as number | undefined) ?? 64,
    awaitDeviceTimeout: (out.awaitDeviceTimeout as number | undefined) ?? 2400,
    awaitCompleteTimeout: (out.awaitCompleteTimeout as number | undefined) ?? 1800,
    jobLease: (out.jobLease as number | undefined) ?? 30,
    traceUiUrl: out.traceUiUrl as string | undefined,
  };
  if (config.connections.headersTimeoutMs > config.connections.requestTimeoutMs) {
    fail('--headers-timeout/--request-timeout', 'the headers timeout must not exceed the request timeout');
  }
  // The key itself comes only from the environment (a flag would show in `ps`, a config
  // file would sit beside the data it protects). Giving it and a key file is ambiguous.
  const envKey = env.DPU_ZTP_SECRET_KEY;
  if (envKey !== undefined && envKey !== '') {
    if (out.secretKeyFile !== undefined)
      fail('DPU_ZTP_SECRET_KEY/--secret-key-file', 'give the secret key or a key file, not both');
    // Throws SECRET_ERR_BAD_KEY naming DPU_ZTP_SECRET_KEY (never echoing the value).
    Object.defineProperty(config, 'secretKey', {
      value: parseSecretKey(envKey, 'DPU_ZTP_SECRET_KEY'),
      enumerable: false,
    });
  }
  if (Boolean(config.apiTlsCert) !== Boolean(config.apiTlsKey)) {
    fail('--api-tls-cert/--api-tls-key', 'give both or neither');
  }
  const ports = [config.apiPort, config.devicePort, config.imagesPort].filter((p) => p !== 0);
  if (new Set(ports).size !== ports.length) {
    fail('--api-port/--device-port/--images-port', 'each listener needs its own port');
  }
  return Object.freeze(config);
}
