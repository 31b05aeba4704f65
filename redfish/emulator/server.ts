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
import { randomBytes } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { RedfishError } from '../errors.js';
import { type BootEvent, EmulatorContext } from './context.js';
import { type FaultRule, FaultSet } from './faults.js';
import type { ImageFetchOptions } from './image-fetch.js';
import { errorBody, fail, HttpFailure, REG, type Reply } from './messages.js';
import { describedBy, metadataXml, odataServiceDocument } from './metadata.js';
import { PatchHandler } from './patch.js';
import {
  EMULATOR_PERSONAS,
  type EmulatorPersona,
  type EmulatorPersonaId,
  type SuccessKind,
} from './personas.js';
import { PowerAndBoot } from './power-boot.js';
import {
  buildPersonaTree,
  type Json,
  loadMockupTree,
  normalisePath,
  type ResourceTree,
} from './resources.js';
import { headerValue, Sessions } from './sessions.js';
import { UpdateAndTasks } from './update-tasks.js';
import { VirtualMedia } from './virtual-media.js';

export type { BootEvent, BootVia } from './context.js';

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
  /**
   * `basic`: no `Links.Sessions`, no SessionService, HTTP Basic only — what sushy-tools with
   * `SUSHY_EMULATOR_AUTH_FILE` serves (every unauthenticated request, a session login too, gets 401).
   * Default `session` (sessions and Basic).
   */
  readonly auth?: 'session' | 'basic';
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
  if (options.auth === 'basic') withoutSessions(tree);
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
    boots: emu.ctx.boots,
    faults: emu.ctx.faults,
    resource: (p) => emu.ctx.r.get(normalisePath(p)),
    get sessionCount() {
      return emu.sessions.byToken.size;
    },
    close: async () => {
      emu.ctx.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await emu.ctx.settled();
    },
  };
}

/** Routes requests to the handler modules; owns nothing but the request log. */
class Emulator {
  readonly requests: RecordedRequest[] = [];
  readonly ctx: EmulatorContext;
  readonly sessions: Sessions;
  readonly #media: VirtualMedia;
  readonly #power: PowerAndBoot;
  readonly #update: UpdateAndTasks;
  readonly #patch: PatchHandler;

  constructor(
    tree: ResourceTree,
    persona: EmulatorPersona | undefined,
    readonly opts: BmcEmulatorOptions,
  ) {
    this.ctx = new EmulatorContext(
      tree.resources,
      tree.allow,
      persona,
      new FaultSet(opts.faults ?? []),
      opts,
    );
    this.sessions = new Sessions(this.ctx, opts);
    this.#media = new VirtualMedia(this.ctx);
    this.#power = new PowerAndBoot(this.ctx, this.#media, {
      transitionMs: opts.powerTransitionMs ?? 1_500,
      osBootMs: opts.osBootMs ?? 1_500,
    });
    this.#update = new UpdateAndTasks(this.ctx, this.#power, opts.taskDurationMs ?? 1_000);
    this.#patch = new PatchHandler(this.ctx, this.#media, this.sessions);
  }

  setSerialOfPreferredSystem(serial: string): void {
    const systems = this.ctx.systems();
    const sys = systems.find((s) => s.SystemType === 'DPU') ?? systems[0];
    if (sys) sys.SerialNumber = serial;
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

    const fault = this.ctx.faults.take(method, path);
    if (fault) {
      if (fault.delayMs) await new Promise<void>((r) => this.ctx.later(fault.delayMs!, r));
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
      const odataVersion = headerValue(req.headers['odata-version']);
      if (odataVersion !== undefined && odataVersion.trim() !== '4.0')
        // DSP0266 "Request headers": an unsupported OData-Version is rejected with 412.
        throw fail(
          412,
          `${REG}.HeaderInvalid`,
          `The header 'OData-Version: ${odataVersion}' is invalid: this service supports OData 4.0.`,
          { args: [`OData-Version: ${odataVersion}`] },
        );
      const out = await this.#route(method, path, req, body, text);
      if (out.text !== undefined) sendText(res, out.status, out.text, out.contentType ?? 'text/plain');
      else send(res, out.status, out.body, out.headers);
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
  ): Promise<Reply> {
    if (method === 'GET' && path === '/redfish') return { status: 200, body: { v1: '/redfish/v1/' } };
    const anonymous =
      method === 'GET' &&
      (path === '/redfish/v1' || path === '/redfish/v1/odata' || path === '/redfish/v1/$metadata');
    const sessionsPath = this.sessions.path();
    // DSP0266 "POST (create)": a create may also be POSTed to the collection's `Members` property.
    if (
      method === 'POST' &&
      (path === sessionsPath || path === `${sessionsPath}/Members`) &&
      this.sessions.enabled
    )
      return this.sessions.login(body);
    if (method === 'GET' && path === '/redfish/v1/$metadata')
      return {
        status: 200,
        text: metadataXml(this.ctx.r.values()),
        contentType: 'application/xml; charset=utf-8',
      };
    if (method === 'GET' && path === '/redfish/v1/odata')
      return { status: 200, body: odataServiceDocument(this.ctx.r.get('/redfish/v1')) };
    if (anonymous) return this.#getResource(path);
    this.sessions.authenticate(req);
    this.sessions.checkPasswordChange(method, path);
    switch (method) {
      case 'GET':
      case 'HEAD':
        return this.#getResource(path);
      case 'DELETE':
        if (path.startsWith(`${sessionsPath}/`)) return this.sessions.logout(path);
        throw this.#notAllowed(method, path);
      case 'POST':
        return this.#post(path, body, text);
      case 'PATCH':
        try {
          return this.#succeeded(
            path.endsWith('/Oem/Nvidia') ? 'rshim' : 'patch',
            this.#patch.patch(path, body, headerValue(req.headers['if-match'])),
          );
        } catch (err) {
          // The resource's full Allow (GET, HEAD, …) rather than the PATCH handler's view of it.
          if (err instanceof HttpFailure && err.status === 405 && !this.ctx.allow.has(path))
            throw this.#notAllowed('PATCH', path);
          throw err;
        }
      default:
        throw this.#notAllowed(method, path);
    }
  }

  /**
   * The methods a resource supports (DSP0266 "Allow" header): the tree's own `Allow` (mockups), else
   * GET/HEAD plus PATCH where the emulator handles it, POST on the sessions collection, DELETE on a session.
   */
  #allowOf(path: string, json: Json | undefined): string {
    const fixed = this.ctx.allow.get(path);
    if (fixed) return fixed;
    const methods = ['GET', 'HEAD'];
    const type = String(json?.['@odata.type'] ?? '');
    const sessions = this.sessions.path();
    if (/#(ComputerSystem|VirtualMedia|ManagerAccount)\./.test(type) || path.endsWith('/Oem/Nvidia'))
      methods.push('PATCH');
    if (path === sessions) methods.push('POST');
    if (path.startsWith(`${sessions}/`)) methods.push('DELETE');
    return methods.join(', ');
  }

  /** 405 with the resource's `Allow` (DSP0266 RESP_HEADERS_ALLOW_METHOD_NOT_ALLOWED); 404 when there is none. */
  #notAllowed(method: string, path: string): HttpFailure {
    const json = this.ctx.r.get(path);
    if (!json)
      return fail(404, `${REG}.ResourceNotFound`, `The requested resource named '${path}' was not found.`, {
        args: ['unknown', path],
      });
    return fail(
      405,
      `${REG}.OperationNotAllowed`,
      `${method} is not allowed on this URI.`,
      {},
      { Allow: this.#allowOf(path, json) },
    );
  }

  #getResource(path: string): Reply {
    const monitor = this.#update.monitor(path);
    if (monitor) return monitor;
    const json = this.ctx.r.get(path);
    if (!json)
      throw fail(
        404,
        `${REG}.ResourceNotFound`,
        `The requested resource of type unknown named '${path}' was not found.`,
        {
          args: ['unknown', path],
        },
      );
    const headers: Record<string, string> = {
      ETag: this.ctx.etag(path),
      Allow: this.#allowOf(path, json),
      // Resources change under power and tasks: clients must not reuse a cached copy.
      'Cache-Control': 'no-cache',
    };
    const schema = describedBy(json);
    if (schema) headers.Link = `<${schema}>; rel=describedby`;
    return { status: 200, body: this.#media.view(path, json), headers };
  }

  /**
   * A success as the persona words it: 200 with its `@Message.ExtendedInfo` (under `error` for HPE
   * iLO) where it sends messages for this kind of request, else the handler's own answer.
   */
  #succeeded(kind: SuccessKind, reply: Reply): Reply {
    const success = this.ctx.persona?.success;
    const list = success?.messages[kind];
    if (!list?.length || reply.status >= 300) return reply;
    const info = list.map((m) => ({
      '@odata.type': '#Message.v1_1_1.Message',
      MessageId: m.id,
      ...(m.text !== undefined ? { Message: m.text, MessageArgs: [] } : {}),
      ...(m.severity !== undefined ? { MessageSeverity: m.severity } : {}),
      ...(m.resolution !== undefined ? { Resolution: m.resolution } : {}),
    }));
    const body: Json = success?.wrapInError
      ? {
          error: {
            code: success.wrapInError,
            message: 'See @Message.ExtendedInfo for more information.',
            '@Message.ExtendedInfo': info,
          },
        }
      : { '@Message.ExtendedInfo': info };
    return { status: 200, body, headers: reply.headers ?? {} };
  }

  async #post(path: string, body: unknown, text: string): Promise<Reply> {
    const m = /^(.*)\/Actions\/([A-Za-z]+\.[A-Za-z]+)$/.exec(path);
    if (!m) throw this.#notAllowed('POST', path);
    const owner = m[1]!;
    const action = m[2]!;
    const b = (body ?? {}) as Json;
    switch (action) {
      case 'ComputerSystem.Reset':
        return this.#succeeded('reset', this.#power.reset(owner, b));
      case 'VirtualMedia.InsertMedia':
        return this.#succeeded('insert', this.#media.insert(owner, b));
      case 'VirtualMedia.EjectMedia':
        return this.#succeeded('eject', this.#media.eject(owner, text));
      case 'UpdateService.SimpleUpdate':
        return this.#update.simpleUpdate(b);
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
}

/** Removes session login from a tree (the `auth: 'basic'` service). */
function withoutSessions(tree: ResourceTree): void {
  const root = tree.resources.get('/redfish/v1');
  if (root) {
    delete root.SessionService;
    if (root.Links) delete root.Links.Sessions;
  }
  for (const p of [...tree.resources.keys()])
    if (p === '/redfish/v1/SessionService' || p.startsWith('/redfish/v1/SessionService/'))
      tree.resources.delete(p);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res.writeHead(status, {
    'OData-Version': '4.0',
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-cache',
  });
  res.end(text);
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
