/**
 * An emulated DPU BMC for development, tests and the demo: sessions, systems,
 * managers, virtual media, boot override with Once semantics, resets whose
 * power transitions take time, SimpleUpdate with tasks, ETags and DMTF error
 * bodies — in the dialect of a persona, or serving a DMTF mockup tree. When a
 * system boots from media, HTTP boot or a pushed image, the emulator fetches
 * the image like a BMC and reports a {@link BootEvent}.
 *
 * It takes typed options and never reads argv/env or picks a port on its own;
 * `dpu-ztp bmc emulate` (cli/) is its composition root.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { RedfishError } from '../errors.js';
import { type FaultRule, FaultSet } from './faults.js';
import { fetchImageLikeABmc, type ImageFetchOptions, type ImageFetchResult } from './image-fetch.js';
import { EMULATOR_PERSONAS, type EmulatorPersona, type EmulatorPersonaId } from './personas.js';
import {
  buildPersonaTree,
  type Json,
  loadMockupTree,
  normalisePath,
  type ResourceTree,
} from './resources.js';

/** How the emulated system came to boot an image. */
export type BootVia = 'virtual-media' | 'http-boot' | 'image-push';

/** A boot of an emulated system into an image (the stand-in for the installer starting). */
export interface BootEvent {
  readonly systemId: string;
  readonly serial: string;
  readonly imageUrl: string;
  readonly via: BootVia;
  /** What the image fetch saw, or the error when the BMC could not fetch it. */
  readonly fetch: ImageFetchResult | { readonly error: string };
}

/** A request the emulator received (for cross-vendor request tables). */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  readonly ifMatch: string | undefined;
}

/** Options of {@link startBmcEmulator}. */
export interface BmcEmulatorOptions {
  /** Listen address; default 127.0.0.1. */
  readonly host?: string;
  /** Port; 0 (default) picks a free one. */
  readonly port?: number;
  /** Persona id or a custom persona (default `generic`). Ignored with `mockupDir`. */
  readonly persona?: EmulatorPersonaId | EmulatorPersona;
  /** Serve a DMTF mockup directory instead of a persona. */
  readonly mockupDir?: string;
  /** Serial number of the (DPU) system. */
  readonly serial?: string;
  readonly username?: string;
  readonly password?: string;
  /** Serve HTTPS with this key/cert (PEM). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** Account must change its password first: 403 PasswordChangeRequired until PATCHed (BlueField after reset). */
  readonly passwordChangeRequired?: boolean;
  /** Concurrent sessions before 503 SessionLimitExceeded (iDRAC RAC0218-like). Default 16. */
  readonly maxSessions?: number;
  /** Duration of each power transition (PoweringOn/PoweringOff). Default 1500 ms. */
  readonly powerTransitionMs?: number;
  /** Time a SimpleUpdate task runs after the image was fetched. Default 1000 ms. */
  readonly taskDurationMs?: number;
  /** Time from power On to the last BootProgress state (personas with `bootProgress`). Default 1500 ms. */
  readonly osBootMs?: number;
  /** Image fetch TLS/timeouts (the BMC's view of the image server). */
  readonly imageFetch?: ImageFetchOptions;
  /** Called for each boot into an image; errors are recorded, never thrown into the emulator. */
  readonly onBoot?: (event: BootEvent) => void | Promise<void>;
  /** Initial fault rules. */
  readonly faults?: readonly FaultRule[];
  /** Record requests in `requests` (default true). */
  readonly recordRequests?: boolean;
}

/** A running emulator. */
export interface BmcEmulator {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Requests received so far (when recording). */
  readonly requests: RecordedRequest[];
  /** Boots so far. */
  readonly boots: BootEvent[];
  /** Fault injection (add rules, stuck media, failing tasks). */
  readonly faults: FaultSet;
  /** The current JSON of a resource (for assertions). */
  resource(path: string): Json | undefined;
  /** Number of live sessions. */
  readonly sessionCount: number;
  close(): Promise<void>;
}

const REG = 'Base.1.16';

function errorBody(
  messageId: string,
  message: string,
  opts: { resolution?: string; related?: string[]; args?: string[] } = {},
): Json {
  const info = {
    '@odata.type': '#Message.v1_1_1.Message',
    MessageId: messageId,
    Message: message,
    MessageArgs: opts.args ?? [],
    RelatedProperties: opts.related ?? [],
    MessageSeverity: 'Warning',
    Resolution: opts.resolution ?? 'Correct the request and resubmit it.',
  };
  return {
    error: {
      code: messageId.startsWith(REG) ? messageId : `${REG}.GeneralError`,
      message: messageId.startsWith(REG)
        ? message
        : 'A general error has occurred. See ExtendedInfo for more information.',
      '@Message.ExtendedInfo': [info],
    },
  };
}

class HttpFailure {
  constructor(
    readonly status: number,
    readonly body: Json | undefined,
    readonly headers: Record<string, string> = {},
  ) {}
}

const fail = (
  status: number,
  id: string,
  message: string,
  opts?: { resolution?: string; related?: string[]; args?: string[] },
  headers?: Record<string, string>,
) => new HttpFailure(status, errorBody(id, message, opts), headers);

/** Starts an emulated BMC. */
export async function startBmcEmulator(options: BmcEmulatorOptions = {}): Promise<BmcEmulator> {
  const persona: EmulatorPersona | undefined = options.mockupDir
    ? undefined
    : typeof options.persona === 'object'
      ? options.persona
      : EMULATOR_PERSONAS[options.persona ?? 'generic'];
  if (!options.mockupDir && !persona)
    throw new RedfishError('REDFISH_ERR_CONFIG', `unknown emulator persona: ${String(options.persona)}`);
  const serial = options.serial ?? `EMU${randomBytes(4).toString('hex').toUpperCase()}`;
  const tree: ResourceTree = options.mockupDir
    ? await loadMockupTree(options.mockupDir)
    : buildPersonaTree(persona!, serial);
  const emu = new Emulator(tree, persona, options);
  if (options.mockupDir && options.serial) emu.setSerialOfPreferredSystem(options.serial);
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    emu.handle(req, res).catch((err) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(errorBody(`${REG}.InternalError`, String((err as Error)?.message ?? err))));
      } else res.destroy();
    });
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, handler) : createHttpServer(handler);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${options.tls ? 'https' : 'http'}://${host}:${addr.port}`;
  return {
    url,
    requests: emu.requests,
    boots: emu.boots,
    faults: emu.faults,
    resource: (p) => emu.get(normalisePath(p)),
    get sessionCount() {
      return emu.sessions.size;
    },
    close: async () => {
      emu.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await emu.settled();
    },
  };
}

class Emulator {
  readonly requests: RecordedRequest[] = [];
  readonly boots: BootEvent[] = [];
  readonly faults: FaultSet;
  readonly sessions = new Map<string, { id: string; path: string }>();
  readonly #r: Map<string, Json>;
  readonly #allow: Map<string, string>;
  readonly #versions = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #powerTimers = new Map<string, NodeJS.Timeout[]>();
  readonly #progressTimers = new Map<string, NodeJS.Timeout>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #staleReads = new Map<string, number>();
  readonly #pushed = new Map<string, { url: string; fetch: BootEvent['fetch'] }>();
  #passwordChange: boolean;
  #nextSession = 1;
  #nextTask = 1;
  #stopped = false;
  readonly #transitionMs: number;
  readonly #taskMs: number;
  readonly #osBootMs: number;
  readonly #user: string;
  #password: string;

  constructor(
    tree: ResourceTree,
    readonly persona: EmulatorPersona | undefined,
    readonly opts: BmcEmulatorOptions,
  ) {
    this.#r = tree.resources;
    this.#allow = tree.allow;
    this.faults = new FaultSet(opts.faults ?? []);
    this.#passwordChange = opts.passwordChangeRequired === true;
    this.#transitionMs = opts.powerTransitionMs ?? 1_500;
    this.#taskMs = opts.taskDurationMs ?? 1_000;
    this.#osBootMs = opts.osBootMs ?? 1_500;
    this.#user = opts.username ?? 'admin';
    this.#password = opts.password ?? 'password';
  }

  get(path: string): Json | undefined {
    return this.#r.get(path);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  setSerialOfPreferredSystem(serial: string): void {
    const systems = this.#systems();
    const sys = systems.find((s) => s.SystemType === 'DPU') ?? systems[0];
    if (sys) sys.SerialNumber = serial;
  }

  #systems(): Json[] {
    return [...this.#r.values()].filter(
      (j) =>
        /#ComputerSystem\./.test(String(j['@odata.type'])) && !String(j['@odata.id']).endsWith('/Settings'),
    );
  }

  #etag(path: string): string {
    return `"${path.length.toString(16)}-${this.#versions.get(path) ?? 0}"`;
  }

  #touch(path: string): void {
    this.#versions.set(path, (this.#versions.get(path) ?? 0) + 1);
  }

  #later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#stopped) fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch(() => undefined).finally(() => this.#pending.delete(q));
    this.#pending.add(q);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    const path = normalisePath(rawPath);
    const text = await readBody(req);
    let body: unknown;
    if (text.trim()) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    const ifMatch = headerValue(req.headers['if-match']);
    if (this.opts.recordRequests !== false) this.requests.push({ method, path, body, ifMatch });

    const fault = this.faults.take(method, path);
    if (fault) {
      if (fault.delayMs) await new Promise<void>((r) => this.#later(fault.delayMs!, r));
      if (fault.reset) {
        req.socket.destroy();
        return;
      }
      if (fault.status) {
        const headers: Record<string, string> = {};
        if (fault.retryAfter !== undefined) headers['Retry-After'] = String(fault.retryAfter);
        send(
          res,
          fault.status,
          errorBody(
            fault.messageId ?? `${REG}.ServiceTemporarilyUnavailable`,
            fault.message ?? 'Injected fault.',
          ),
          headers,
        );
        return;
      }
    }
    try {
      if (text.trim() && body === undefined)
        throw fail(400, `${REG}.MalformedJSON`, 'The request body submitted was malformed JSON.');
      const out = await this.#route(method, path, req, body, text);
      send(res, out.status, out.body, out.headers);
    } catch (err) {
      if (err instanceof HttpFailure) send(res, err.status, err.body, err.headers);
      else throw err;
    }
  }

  async #route(
    method: string,
    path: string,
    req: IncomingMessage,
    body: unknown,
    text: string,
  ): Promise<{ status: number; body?: Json; headers?: Record<string, string> }> {
    if (method === 'GET' && path === '/redfish') return { status: 200, body: { v1: '/redfish/v1/' } };
    const anonymous =
      method === 'GET' &&
      (path === '/redfish/v1' || path === '/redfish/v1/odata' || path === '/redfish/v1/$metadata');
    const sessionsPath = this.#sessionsPath();
    if (method === 'POST' && path === sessionsPath) return this.#login(body);
    if (anonymous) return this.#getResource(path);
    const session = this.#authenticate(req);
    if (this.#passwordChange && !this.#passwordChangeExempt(method, path))
      throw fail(
        403,
        `${REG}.PasswordChangeRequired`,
        "The password provided for this account must be changed before access is granted.  PATCH the Password property for this account located at the target URI '/redfish/v1/AccountService/Accounts/1' to complete this process.",
        {
          args: ['/redfish/v1/AccountService/Accounts/1'],
          resolution:
            'Change the password for this account using a PATCH to the Password property at the URI provided.',
        },
      );
    switch (method) {
      case 'GET':
      case 'HEAD':
        return this.#getResource(path);
      case 'DELETE':
        if (path.startsWith(`${sessionsPath}/`)) return this.#logout(path, session);
        throw fail(
          405,
          `${REG}.OperationNotAllowed`,
          'The HTTP method is not allowed on this URI.',
          {},
          { Allow: 'GET' },
        );
      case 'POST':
        return this.#post(path, body, text);
      case 'PATCH':
        return this.#patch(path, body, headerValue(req.headers['if-match']));
      default:
        throw fail(405, `${REG}.OperationNotAllowed`, `${method} is not allowed.`);
    }
  }

  #passwordChangeExempt(method: string, path: string): boolean {
    if (path.startsWith('/redfish/v1/AccountService/Accounts')) return method === 'GET' || method === 'PATCH';
    return path.startsWith(`${this.#sessionsPath()}/`) && method === 'DELETE';
  }

  #sessionsPath(): string {
    const root = this.#r.get('/redfish/v1');
    const id = root?.Links?.Sessions?.['@odata.id'];
    return normalisePath(typeof id === 'string' ? id : '/redfish/v1/SessionService/Sessions');
  }

  #credentialsOk(user: unknown, password: unknown): boolean {
    if (typeof user !== 'string' || typeof password !== 'string') return false;
    const a = Buffer.from(`${user}\0${password}`);
    const b = Buffer.from(`${this.#user}\0${this.#password}`);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  #authenticate(req: IncomingMessage): string | undefined {
    const token = headerValue(req.headers['x-auth-token']);
    if (token) {
      if (this.sessions.has(token)) return token;
      throw fail(
        401,
        `${REG}.NoValidSession`,
        'There is no valid session established with the implementation.',
        {
          resolution: 'Establish a session before attempting any operations.',
        },
      );
    }
    const auth = headerValue(req.headers.authorization);
    if (auth?.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      if (this.#credentialsOk(u, rest.join(':'))) return undefined;
    }
    throw fail(
      401,
      `${REG}.InsufficientPrivilege`,
      'There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.',
      {},
      { 'WWW-Authenticate': 'Basic realm="Redfish"' },
    );
  }

  #login(body: unknown): { status: number; body: Json; headers: Record<string, string> } {
    const b = (body ?? {}) as Json;
    if (!this.#credentialsOk(b.UserName, b.Password))
      throw fail(
        401,
        `${REG}.ResourceAtUriUnauthorized`,
        'While accessing the resource at the URI, the service received an authorization error.',
        { args: [this.#sessionsPath()] },
      );
    if (this.sessions.size >= (this.opts.maxSessions ?? 16))
      throw fail(
        503,
        `${REG}.SessionLimitExceeded`,
        'The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.',
        {
          resolution:
            'Reduce the number of other sessions before trying to establish the session or increase the limit of simultaneous sessions (if supported).',
        },
        { 'Retry-After': '1' },
      );
    const id = String(this.#nextSession++);
    const token = randomBytes(16).toString('hex');
    const path = `${this.#sessionsPath()}/${id}`;
    this.sessions.set(token, { id, path });
    const session = {
      '@odata.id': path,
      '@odata.type': '#Session.v1_7_0.Session',
      Id: id,
      UserName: b.UserName,
      Password: null,
    };
    this.#r.set(path, session);
    this.#syncCollection(this.#sessionsPath());
    return { status: 201, body: session, headers: { 'X-Auth-Token': token, Location: path } };
  }

  #logout(path: string, token: string | undefined): { status: number } {
    const entry = [...this.sessions.entries()].find(([, s]) => s.path === path);
    if (!entry)
      throw fail(
        404,
        `${REG}.ResourceNotFound`,
        `The requested resource of type Session named '${path}' was not found.`,
      );
    if (token !== undefined && token !== entry[0] && this.sessions.has(token)) {
      // Any authenticated admin may delete sessions (DSP0266); keep it simple.
    }
    this.sessions.delete(entry[0]);
    this.#r.delete(path);
    this.#syncCollection(this.#sessionsPath());
    return { status: 204 };
  }

  #syncCollection(collectionPath: string): void {
    const c = this.#r.get(collectionPath);
    if (!c) return;
    const prefix = `${collectionPath}/`;
    const members = [...this.#r.keys()].filter(
      (k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/'),
    );
    c.Members = members.map((m) => ({ '@odata.id': m }));
    c['Members@odata.count'] = members.length;
    this.#touch(collectionPath);
  }

  #getResource(path: string): { status: number; body: Json; headers: Record<string, string> } {
    const monitor = /^\/redfish\/v1\/TaskService\/TaskMonitors\/(\d+)$/.exec(path);
    if (monitor) {
      const task = this.#r.get(`/redfish/v1/TaskService/Tasks/${monitor[1]}`);
      if (!task) throw fail(404, `${REG}.ResourceNotFound`, 'The task monitor was not found.');
      if (task.TaskState === 'Running' || task.TaskState === 'New')
        return { status: 202, body: task, headers: { Location: path, 'Retry-After': '1' } };
      return { status: 200, body: task, headers: {} };
    }
    const json = this.#r.get(path);
    if (!json)
      throw fail(
        404,
        `${REG}.ResourceNotFound`,
        `The requested resource of type unknown named '${path}' was not found.`,
        {
          args: ['unknown', path],
        },
      );
    let out = json;
    const stale = this.#staleReads.get(path) ?? 0;
    if (stale > 0) {
      // Dell iDRAC reports Inserted briefly after eject (Ironic story 2008504).
      this.#staleReads.set(path, stale - 1);
      out = { ...json, Inserted: true };
    }
    const headers: Record<string, string> = { ETag: this.#etag(path) };
    const allow = this.#allow.get(path);
    if (allow) headers.Allow = allow;
    return { status: 200, body: out, headers };
  }

  async #post(
    path: string,
    body: unknown,
    text: string,
  ): Promise<{ status: number; body?: Json; headers?: Record<string, string> }> {
    const m = /^(.*)\/Actions\/([A-Za-z]+\.[A-Za-z]+)$/.exec(path);
    if (!m)
      throw fail(405, `${REG}.OperationNotAllowed`, 'POST is not allowed on this URI.', {}, { Allow: 'GET' });
    const owner = m[1]!;
    const action = m[2]!;
    const b = (body ?? {}) as Json;
    switch (action) {
      case 'ComputerSystem.Reset':
        return this.#reset(owner, b);
      case 'VirtualMedia.InsertMedia':
        return this.#insert(owner, b);
      case 'VirtualMedia.EjectMedia':
        return this.#eject(owner, text);
      case 'UpdateService.SimpleUpdate':
        return this.#simpleUpdate(b);
      case 'Manager.Reset':
        return { status: 204 };
      default:
        throw fail(
          400,
          `${REG}.ActionNotSupported`,
          `The action ${action} is not supported by the resource.`,
          { args: [action] },
        );
    }
  }

  #actionOf(owner: string, name: string): Json {
    const res = this.#r.get(owner);
    const act = res?.Actions?.[`#${name}`];
    if (!res || !act)
      throw fail(
        404,
        `${REG}.ResourceNotFound`,
        `The requested resource of type Action named '${name}' was not found.`,
      );
    return act;
  }

  // --- power ---------------------------------------------------------------------------------------

  #reset(sysPath: string, b: Json): { status: number } {
    const act = this.#actionOf(sysPath, 'ComputerSystem.Reset');
    const allowed: string[] = act['ResetType@Redfish.AllowableValues'] ?? [];
    const type = b.ResetType ?? 'ForceRestart';
    if (typeof type !== 'string' || (allowed.length > 0 && !allowed.includes(type)))
      throw fail(
        400,
        `${REG}.ActionParameterNotSupported`,
        `The parameter ResetType for the action ComputerSystem.Reset is not supported on the target resource.`,
        {
          args: [String(type), 'ResetType'],
          related: ['#/ResetType'],
        },
      );
    const sys = this.#r.get(sysPath)!;
    const state = sys.PowerState;
    const T = this.#transitionMs;
    this.#cancelPower(sysPath);
    const plan: [string, number][] = [];
    if (
      type === 'ForceOff' ||
      type === 'GracefulShutdown' ||
      (type === 'PushPowerButton' && state === 'On')
    ) {
      if (state !== 'Off') plan.push(['PoweringOff', 0], ['Off', T]);
    } else if (type === 'On' || type === 'ForceOn' || (state === 'Off' && type !== 'Nmi')) {
      if (state !== 'On') plan.push(['PoweringOn', 0], ['On', T]);
    } else if (type !== 'Nmi') {
      plan.push(['PoweringOff', 0], ['PoweringOn', T / 2], ['On', T / 2]);
    }
    if (plan.length > 0) {
      this.#applySettings(sysPath);
      this.#restartBootProgress(sysPath);
    }
    // Fault: the system enters the first transition and stays there (a BMC that never reports On).
    if (this.faults.stallPower) plan.splice(1);
    // Steps are chained (each schedules the next) rather than scheduled at absolute offsets: under
    // load Node may run two expired timers of different durations out of order, which once left a
    // system "PoweringOn" after it had reached "On".
    const timers: NodeJS.Timeout[] = [];
    const step = (i: number) => {
      const next = plan[i];
      if (!next) return;
      const [s, dt] = next;
      const apply = () => {
        sys.PowerState = s;
        this.#touch(sysPath);
        if (s === 'On') {
          this.#boot(sysPath);
          this.#advanceBootProgress(sysPath, 1);
        }
        step(i + 1);
      };
      if (dt === 0) apply();
      else timers.push(this.#later(dt, apply));
    };
    step(0);
    this.#powerTimers.set(sysPath, timers);
    return { status: 204 };
  }

  #cancelPower(sysPath: string): void {
    for (const t of this.#powerTimers.get(sysPath) ?? []) {
      clearTimeout(t);
      this.#timers.delete(t);
    }
    this.#powerTimers.delete(sysPath);
  }

  // --- boot progress (BlueField BootProgress.OemLastState) ------------------------------------------

  #setBootProgress(sysPath: string, state: string): void {
    const sys = this.#r.get(sysPath)!;
    const { LastStateTime: _, ...rest } = sys.BootProgress ?? {};
    sys.BootProgress = {
      ...rest,
      LastState: 'OEM',
      OemLastState: state,
      ...(this.faults.bootProgressWithoutTime ? {} : { LastStateTime: new Date().toISOString() }),
    };
    this.#touch(sysPath);
  }

  /** A reset starts the Arm over: the first state now, the rest once the system is On. */
  #restartBootProgress(sysPath: string): void {
    const states = this.persona?.bootProgress;
    if (!states?.length || !this.#r.get(sysPath)?.BootProgress) return;
    const t = this.#progressTimers.get(sysPath);
    if (t) {
      clearTimeout(t);
      this.#timers.delete(t);
    }
    this.#progressTimers.delete(sysPath);
    if (this.faults.frozenBootProgress) return; // fault: the BMC did not notice the reboot
    this.#setBootProgress(sysPath, states[0]!);
  }

  #advanceBootProgress(sysPath: string, i: number): void {
    const states = this.persona?.bootProgress;
    const state = states?.[i];
    if (!states || !state || this.faults.frozenBootProgress) return;
    const cur = this.#r.get(sysPath)?.BootProgress?.OemLastState;
    if (cur !== states[i - 1] || cur === this.faults.bootProgressStopsAt) return; // fault: stuck
    const t = this.#later(this.#osBootMs / (states.length - 1), () => {
      this.#progressTimers.delete(sysPath);
      this.#setBootProgress(sysPath, state);
      this.#advanceBootProgress(sysPath, i + 1);
    });
    this.#progressTimers.set(sysPath, t);
  }

  /** BlueField: boot settings PATCHed to `{system}/Settings` apply at the next reset. */
  #applySettings(sysPath: string): void {
    const sys = this.#r.get(sysPath)!;
    const settingsPath = sys['@Redfish.Settings']?.SettingsObject?.['@odata.id'];
    const settings = typeof settingsPath === 'string' ? this.#r.get(normalisePath(settingsPath)) : undefined;
    if (!settings?.Boot || !sys.Boot) return;
    Object.assign(sys.Boot, settings.Boot);
    this.#touch(sysPath);
  }

  #boot(sysPath: string): void {
    const sys = this.#r.get(sysPath)!;
    const boot = sys.Boot as Json | undefined;
    let via: BootVia | undefined;
    let url: string | undefined;
    if (boot?.BootSourceOverrideEnabled && boot.BootSourceOverrideEnabled !== 'Disabled') {
      const target = boot.BootSourceOverrideTarget;
      const cdTarget = this.persona?.rules.virtualCdTarget ?? 'Cd';
      if (target === cdTarget) {
        const slot = this.#slotsOf(sysPath).find(
          (s) => s.Inserted === true && (s.MediaTypes ?? []).some((t: string) => t === 'CD' || t === 'DVD'),
        );
        if (slot && typeof slot.Image === 'string') {
          via = 'virtual-media';
          url = slot.Image;
        }
      } else if (target === 'UefiHttp' && typeof boot.HttpBootUri === 'string' && boot.HttpBootUri) {
        via = 'http-boot';
        url = boot.HttpBootUri;
      }
      if (boot.BootSourceOverrideEnabled === 'Once') {
        // DSP2046 ComputerSystem: "If set to Once, the value is reset to Disabled after the
        // BootSourceOverrideTarget actions have completed successfully."
        boot.BootSourceOverrideEnabled = 'Disabled';
        boot.BootSourceOverrideTarget = 'None';
        this.#touch(sysPath);
        const settingsPath = sys['@Redfish.Settings']?.SettingsObject?.['@odata.id'];
        const settings =
          typeof settingsPath === 'string' ? this.#r.get(normalisePath(settingsPath)) : undefined;
        if (settings?.Boot)
          Object.assign(settings.Boot, {
            BootSourceOverrideEnabled: 'Disabled',
            BootSourceOverrideTarget: 'None',
          });
      }
    }
    const pushed = this.#pushed.get(sysPath);
    if (!via && pushed) {
      this.#pushed.delete(sysPath);
      this.#report({
        systemId: String(sys.Id),
        serial: String(sys.SerialNumber ?? ''),
        imageUrl: pushed.url,
        via: 'image-push',
        fetch: pushed.fetch,
      });
      return;
    }
    if (!via || !url) return;
    const imageUrl = url;
    const kind = via;
    this.#track(
      (async () => {
        let fetch: BootEvent['fetch'];
        try {
          fetch = await fetchImageLikeABmc(imageUrl, this.opts.imageFetch);
        } catch (err) {
          fetch = { error: String((err as Error)?.message ?? err) };
        }
        if (this.#stopped) return;
        this.#report({
          systemId: String(sys.Id),
          serial: String(sys.SerialNumber ?? ''),
          imageUrl,
          via: kind,
          fetch,
        });
      })(),
    );
  }

  #report(event: BootEvent): void {
    this.boots.push(event);
    if (this.opts.onBoot) this.#track(Promise.resolve().then(() => this.opts.onBoot!(event)));
  }

  // --- virtual media -------------------------------------------------------------------------------

  /** Slots usable by a system: its own collection, then its managers' (how sushy/Ironic find them). */
  #slotsOf(sysPath: string): Json[] {
    const sys = this.#r.get(sysPath);
    const colls: string[] = [];
    if (sys?.VirtualMedia?.['@odata.id']) colls.push(sys.VirtualMedia['@odata.id']);
    for (const m of sys?.Links?.ManagedBy ?? []) {
      const mgr = this.#r.get(normalisePath(m['@odata.id']));
      if (mgr?.VirtualMedia?.['@odata.id']) colls.push(mgr.VirtualMedia['@odata.id']);
    }
    const out: Json[] = [];
    for (const c of colls) {
      for (const mem of this.#r.get(normalisePath(c))?.Members ?? []) {
        const s = this.#r.get(normalisePath(mem['@odata.id']));
        if (s && !out.includes(s)) out.push(s);
      }
    }
    return out;
  }

  #insert(slotPath: string, b: Json): { status: number } {
    this.#actionOf(slotPath, 'VirtualMedia.InsertMedia');
    const slot = this.#r.get(slotPath)!;
    const rules = this.persona?.rules ?? {};
    if (typeof b.Image !== 'string' || !b.Image)
      throw fail(
        400,
        `${REG}.ActionParameterMissing`,
        'The action VirtualMedia.InsertMedia requires the parameter Image to be present in the request body.',
        {
          args: ['VirtualMedia.InsertMedia', 'Image'],
          related: ['#/Image'],
        },
      );
    if (rules.rejectInsertedProps) {
      // Supermicro X11/X12 (sushy fix-insert-media-payload; ansible community.general#4839).
      for (const prop of ['Inserted', 'WriteProtected'])
        if (prop in b)
          throw fail(
            400,
            `${REG}.PropertyUnknown`,
            `The property ${prop} is not in the list of valid properties for the resource.`,
            {
              args: [prop],
              related: [`#/${prop}`],
            },
          );
    }
    const allowed: string[] =
      slot.Actions?.['#VirtualMedia.InsertMedia']?.['TransferProtocolType@Redfish.AllowableValues'] ?? [];
    if (b.TransferProtocolType !== undefined && allowed.length && !allowed.includes(b.TransferProtocolType))
      throw fail(
        400,
        `${REG}.ActionParameterValueNotInList`,
        `The value '${b.TransferProtocolType}' for the parameter TransferProtocolType in the action VirtualMedia.InsertMedia is not in the list of acceptable values.`,
        {
          related: ['#/TransferProtocolType'],
        },
      );
    if (rules.httpsOnly) {
      // openbmc/bmcweb virtual_media.hpp getTransferProtocolFromParam: only https:// and smb://.
      const scheme = /^([a-z]+):\/\//i.exec(b.Image)?.[1]?.toLowerCase();
      const ok = scheme
        ? scheme === 'https' || scheme === 'smb'
        : b.TransferProtocolType === 'HTTPS' || b.TransferProtocolType === 'CIFS';
      if (!ok)
        throw fail(
          400,
          `${REG}.ResourceAtUriInUnknownFormat`,
          `The resource at the URI '${b.Image}' is in a format not recognized by the service.`,
          {
            args: [b.Image],
            related: ['#/Image'],
          },
        );
    }
    if (rules.requireTransferMethod && b.TransferMethod !== 'Stream')
      throw fail(
        400,
        `${REG}.ActionParameterMissing`,
        'The action VirtualMedia.InsertMedia requires the parameter TransferMethod to be present in the request body.',
        {
          args: ['VirtualMedia.InsertMedia', 'TransferMethod'],
          related: ['#/TransferMethod'],
        },
      );
    if (slot.Inserted === true)
      throw fail(
        409,
        `${REG}.ResourceInUse`,
        'The change to the requested resource failed because the resource is in use or in transition.',
        {
          resolution: 'Eject the media first.',
        },
      );
    this.#mount(
      slotPath,
      b.Image,
      b.Inserted !== false,
      b.WriteProtected ?? true,
      b.TransferProtocolType,
      b.TransferMethod,
    );
    return { status: 204 };
  }

  #mount(
    slotPath: string,
    image: string,
    inserted: boolean,
    wp: boolean,
    proto?: string,
    method?: string,
  ): void {
    const slot = this.#r.get(slotPath)!;
    Object.assign(slot, {
      Image: image,
      ImageName: image.split('/').pop() ?? image,
      Inserted: inserted,
      WriteProtected: wp,
      ConnectedVia: 'URI',
      ...(proto ? { TransferProtocolType: proto } : {}),
      ...(method ? { TransferMethod: method } : {}),
    });
    this.#touch(slotPath);
  }

  #unmount(slotPath: string): void {
    if (this.faults.stuckMedia) return; // fault: the slot stays inserted
    const slot = this.#r.get(slotPath)!;
    Object.assign(slot, { Image: null, ImageName: null, Inserted: false, ConnectedVia: 'NotConnected' });
    if ('TransferProtocolType' in slot) slot.TransferProtocolType = null;
    this.#touch(slotPath);
    const stale = this.persona?.rules.staleInsertedReads ?? 0;
    if (stale > 0) this.#staleReads.set(slotPath, stale);
  }

  #eject(slotPath: string, text: string): { status: number } {
    this.#actionOf(slotPath, 'VirtualMedia.EjectMedia');
    if (this.persona?.rules.ejectNeedsBody && !text.trim())
      // HPE iLO: EjectMedia without a body → 415 (sushy fix-eject-media-empty-dict).
      throw fail(
        415,
        `${REG}.UnsupportedMediaType`,
        'The request specified a Content-Type header that is not supported.',
      );
    this.#unmount(slotPath);
    return { status: 204 };
  }

  // --- update service ------------------------------------------------------------------------------

  #simpleUpdate(b: Json): { status: number; body: Json; headers: Record<string, string> } {
    const svc = this.#r.get('/redfish/v1/UpdateService');
    const act = svc?.Actions?.['#UpdateService.SimpleUpdate'];
    if (!act) throw fail(404, `${REG}.ResourceNotFound`, 'SimpleUpdate is not supported.');
    if (typeof b.ImageURI !== 'string' || !b.ImageURI)
      throw fail(
        400,
        `${REG}.ActionParameterMissing`,
        'The action UpdateService.SimpleUpdate requires the parameter ImageURI to be present in the request body.',
        {
          related: ['#/ImageURI'],
        },
      );
    const protos: string[] = act['TransferProtocol@Redfish.AllowableValues'] ?? [];
    if (b.TransferProtocol !== undefined && protos.length && !protos.includes(b.TransferProtocol))
      throw fail(
        400,
        `${REG}.ActionParameterValueNotInList`,
        `The value '${b.TransferProtocol}' for the parameter TransferProtocol in the action UpdateService.SimpleUpdate is not in the list of acceptable values.`,
        {
          related: ['#/TransferProtocol'],
        },
      );
    const targets: string[] = Array.isArray(b.Targets) ? b.Targets : [];
    for (const t of targets) {
      if (typeof t !== 'string' || !this.#r.has(normalisePath(t.startsWith('/') ? t : `/${t}`)))
        throw fail(
          400,
          `${REG}.ActionParameterValueNotInList`,
          `The value '${String(t)}' for the parameter Targets in the action UpdateService.SimpleUpdate is not in the list of acceptable values.`,
          {
            related: ['#/Targets'],
          },
        );
    }
    const id = String(this.#nextTask++);
    const taskPath = `/redfish/v1/TaskService/Tasks/${id}`;
    const monitor = `/redfish/v1/TaskService/TaskMonitors/${id}`;
    const task: Json = {
      '@odata.id': taskPath,
      '@odata.type': '#Task.v1_7_4.Task',
      Id: id,
      Name: 'SimpleUpdate',
      TaskState: 'Running',
      TaskStatus: 'OK',
      PercentComplete: 0,
      TaskMonitor: monitor,
      StartTime: new Date().toISOString(),
      Messages: [],
    };
    this.#r.set(taskPath, task);
    this.#syncCollection('/redfish/v1/TaskService/Tasks');
    const url = b.ImageURI;
    const osTarget = targets.some((t) => /(^|\/)(DPU_OS|[^/]*OS_Image[^/]*)$/i.test(t));
    const rshim = [...this.#r.entries()].find(([p]) => p.endsWith('/Oem/Nvidia'))?.[1];
    this.#track(
      (async () => {
        let fetch: BootEvent['fetch'];
        try {
          fetch = await fetchImageLikeABmc(url, this.opts.imageFetch);
        } catch (err) {
          fetch = { error: String((err as Error)?.message ?? err) };
        }
        if (this.#stopped) return;
        task.PercentComplete = 50;
        if (this.faults.stallTasks) return; // fault: the task never finishes
        await new Promise<void>((r) => this.#later(this.#taskMs, r));
        if (this.#stopped) return;
        const finish = (state: string, messageId: string, message: string) => {
          Object.assign(task, {
            TaskState: state,
            TaskStatus: state === 'Completed' ? 'OK' : 'Critical',
            PercentComplete: state === 'Completed' ? 100 : task.PercentComplete,
            EndTime: new Date().toISOString(),
            Messages: [
              {
                MessageId: messageId,
                Message: message,
                MessageArgs: [id],
                Severity: state === 'Completed' ? 'OK' : 'Critical',
              },
            ],
          });
          this.#touch(taskPath);
        };
        if ('error' in fetch)
          return finish(
            'Exception',
            'Update.1.0.TransferFailed',
            `Transfer of image '${url}' failed: ${fetch.error}`,
          );
        if (this.faults.failTasks)
          return finish(
            'Exception',
            'TaskEvent.1.0.TaskAborted',
            `The task with Id '${id}' has been aborted: ${this.faults.failTasks}`,
          );
        if (osTarget && rshim && rshim.BmcRShim?.BmcRShimEnabled !== true)
          // Emulator model of the BlueField docs: the BFB goes to the DPU through the BMC's RShim.
          return finish(
            'Exception',
            'TaskEvent.1.0.TaskAborted',
            'The BFB could not be pushed: BMC RShim is disabled (enable BmcRShim under Managers/Bluefield_BMC/Oem/Nvidia).',
          );
        if (osTarget) {
          const sys = this.#systems().find((s) => s.SystemType === 'DPU') ?? this.#systems()[0];
          if (sys) this.#pushed.set(normalisePath(String(sys['@odata.id'])), { url, fetch });
        }
        finish('Completed', 'TaskEvent.1.0.TaskCompletedOK', `The task with Id '${id}' has completed.`);
      })(),
    );
    return { status: 202, body: task, headers: { Location: monitor, 'Retry-After': '1' } };
  }

  // --- PATCH ---------------------------------------------------------------------------------------

  #patch(
    path: string,
    body: unknown,
    ifMatch: string | undefined,
  ): { status: number; body: Json; headers: Record<string, string> } {
    const res = this.#r.get(path);
    if (!res)
      throw fail(404, `${REG}.ResourceNotFound`, `The requested resource named '${path}' was not found.`);
    if (ifMatch !== undefined && ifMatch !== this.#etag(path) && ifMatch !== '*')
      throw fail(
        412,
        `${REG}.PreconditionFailed`,
        'The ETag supplied did not match the ETag required to change this resource.',
        {
          resolution: 'Try the operation again using the appropriate ETag.',
        },
      );
    const b = (body ?? {}) as Json;
    const type = String(res['@odata.type'] ?? '');
    if (/#ComputerSystem\./.test(type)) this.#patchSystem(path, res, b);
    else if (/#VirtualMedia\./.test(type)) this.#patchMedia(path, res, b);
    else if (path.endsWith('/Oem/Nvidia')) {
      if (b.BmcRShim && typeof b.BmcRShim === 'object') {
        res.BmcRShim = { ...res.BmcRShim, ...b.BmcRShim };
      }
    } else if (path.startsWith('/redfish/v1/AccountService/Accounts/')) {
      if (typeof b.Password === 'string') {
        this.#passwordChange = false;
        // The emulator keeps one account; the new password applies to it.
        this.#password = b.Password;
      }
    } else
      throw fail(
        405,
        `${REG}.OperationNotAllowed`,
        'PATCH is not allowed on this URI.',
        {},
        { Allow: this.#allow.get(path) ?? 'GET' },
      );
    this.#touch(path);
    return { status: 200, body: res, headers: { ETag: this.#etag(path) } };
  }

  #patchSystem(path: string, sys: Json, b: Json): void {
    for (const k of Object.keys(b))
      if (k !== 'Boot' && k !== 'AssetTag')
        throw fail(
          400,
          `${REG}.PropertyNotWritable`,
          `The property ${k} is a read only property and cannot be assigned a value.`,
          { related: [`#/${k}`] },
        );
    if (typeof b.AssetTag === 'string') sys.AssetTag = b.AssetTag;
    if (!b.Boot) return;
    if (!sys.Boot)
      throw fail(
        400,
        `${REG}.PropertyUnknown`,
        'The property Boot is not in the list of valid properties for the resource.',
        { related: ['#/Boot'] },
      );
    const settingsPath = sys['@Redfish.Settings']?.SettingsObject?.['@odata.id'];
    if (this.persona?.bootOnSettings && typeof settingsPath === 'string')
      // BlueField BMC docs: boot configuration is PATCHed to Systems/Bluefield/Settings.
      throw fail(
        400,
        `${REG}.PropertyNotWritable`,
        'The property Boot is a read only property and cannot be assigned a value.',
        {
          related: ['#/Boot'],
          resolution: `Apply boot settings through ${settingsPath}.`,
        },
      );
    const sysPath = path.endsWith('/Settings') ? path.slice(0, -'/Settings'.length) : path;
    if (this.persona?.rules.rejectBootDuringPost && this.#r.get(sysPath)?.PowerState === 'PoweringOn')
      // HPE iLO: boot changes during POST are refused (Ironic post_boot_retry_*).
      throw fail(
        400,
        'iLO.2.15.UnableToModifyDuringSystemPOST',
        'The value for the property cannot be changed while the computer system is in POST.',
        {
          resolution: 'Retry the operation when the system is either off or has completed POST.',
        },
      );
    const boot = b.Boot as Json;
    const cur = sys.Boot as Json;
    const targets: string[] =
      this.#r.get(sysPath)?.Boot?.['BootSourceOverrideTarget@Redfish.AllowableValues'] ?? [];
    for (const k of Object.keys(boot)) {
      if (
        !(k in cur) &&
        !['BootSourceOverrideEnabled', 'BootSourceOverrideTarget', 'BootSourceOverrideMode'].includes(k)
      )
        throw fail(
          400,
          `${REG}.PropertyUnknown`,
          `The property ${k} is not in the list of valid properties for the resource.`,
          { related: [`#/Boot/${k}`] },
        );
    }
    if (
      boot.BootSourceOverrideTarget !== undefined &&
      targets.length &&
      !targets.includes(boot.BootSourceOverrideTarget)
    )
      throw fail(
        400,
        `${REG}.PropertyValueNotInList`,
        `The value '${boot.BootSourceOverrideTarget}' for the property BootSourceOverrideTarget is not in the list of acceptable values.`,
        {
          args: [String(boot.BootSourceOverrideTarget), 'BootSourceOverrideTarget'],
          related: ['#/Boot/BootSourceOverrideTarget'],
        },
      );
    if (
      boot.BootSourceOverrideEnabled !== undefined &&
      !['Disabled', 'Once', 'Continuous'].includes(boot.BootSourceOverrideEnabled)
    )
      throw fail(
        400,
        `${REG}.PropertyValueNotInList`,
        `The value '${boot.BootSourceOverrideEnabled}' for the property BootSourceOverrideEnabled is not in the list of acceptable values.`,
        {
          related: ['#/Boot/BootSourceOverrideEnabled'],
        },
      );
    if (
      boot.BootSourceOverrideMode !== undefined &&
      !['UEFI', 'Legacy'].includes(boot.BootSourceOverrideMode)
    )
      throw fail(
        400,
        `${REG}.PropertyValueNotInList`,
        `The value '${boot.BootSourceOverrideMode}' for the property BootSourceOverrideMode is not in the list of acceptable values.`,
        {
          related: ['#/Boot/BootSourceOverrideMode'],
        },
      );
    // A target with Enabled omitted keeps "Disabled" on many BMCs (Supermicro must get Enabled every time).
    Object.assign(cur, boot);
  }

  #patchMedia(path: string, slot: Json, b: Json): void {
    const allow = this.#allow.get(path);
    if (allow && !/PATCH/.test(allow))
      throw fail(
        405,
        `${REG}.OperationNotAllowed`,
        'PATCH is not allowed on this virtual media resource; use its actions.',
        {},
        { Allow: allow },
      );
    if (this.persona?.rules.patchNeedsInserted && typeof b.Image === 'string' && b.Inserted === undefined)
      // Lenovo XCC (python-redfish-lenovo#9): PATCH insert needs Inserted.
      throw fail(
        400,
        `${REG}.PropertyMissing`,
        'The property Inserted is a required property and must be included in the request.',
        { related: ['#/Inserted'] },
      );
    if (typeof b.Image === 'string' && b.Image && b.Inserted !== false) {
      this.#mount(path, b.Image, true, b.WriteProtected ?? true, b.TransferProtocolType, b.TransferMethod);
    } else if (b.Image === null || b.Inserted === false) {
      this.#unmount(path);
    } else if ('WriteProtected' in b) slot.WriteProtected = Boolean(b.WriteProtected);
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(
  res: ServerResponse,
  status: number,
  body: Json | undefined,
  headers: Record<string, string> = {},
): void {
  const text = body === undefined || status === 204 ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'OData-Version': '4.0',
    ...(text ? { 'Content-Type': 'application/json; charset=utf-8' } : {}),
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}
