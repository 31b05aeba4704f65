/**
 * Emulated authentication: session login/logout (DSP0266 "Redfish session
 * login authentication"), X-Auth-Token and HTTP Basic, the session limit
 * (iDRAC RAC0218-like 503) and PasswordChangeRequired (BlueField after reset).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { EmulatorContext } from './context.js';
import { fail, REG, type Reply } from './messages.js';
import { type Json, normalisePath } from './resources.js';

/** Options of {@link Sessions}. */
export interface SessionOptions {
  readonly username?: string;
  readonly password?: string;
  readonly passwordChangeRequired?: boolean;
  readonly maxSessions?: number;
}

/** The emulator's one account and its sessions. */
export class Sessions {
  /** Live sessions by token. */
  readonly byToken = new Map<string, { id: string; path: string }>();
  #passwordChange: boolean;
  #nextSession = 1;
  readonly #user: string;
  #password: string;

  constructor(
    private readonly ctx: EmulatorContext,
    private readonly opts: SessionOptions,
  ) {
    this.#passwordChange = opts.passwordChangeRequired === true;
    this.#user = opts.username ?? 'admin';
    this.#password = opts.password ?? 'password';
  }

  /** The sessions collection: the root's `Links.Sessions`, else the DSP0266 default. */
  path(): string {
    const root = this.ctx.r.get('/redfish/v1');
    const id = root?.Links?.Sessions?.['@odata.id'];
    return normalisePath(typeof id === 'string' ? id : '/redfish/v1/SessionService/Sessions');
  }

  /** True when the service root advertises session login (no Links.Sessions = Basic only). */
  get enabled(): boolean {
    return this.ctx.r.has(this.path());
  }

  /** A PATCH of the account's Password: the new password applies and the change requirement ends. */
  setPassword(password: string): void {
    this.#passwordChange = false;
    this.#password = password;
  }

  /** Throws 403 PasswordChangeRequired unless the request may go through. */
  checkPasswordChange(method: string, path: string): void {
    if (!this.#passwordChange || this.#exempt(method, path)) return;
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
  }

  #exempt(method: string, path: string): boolean {
    if (path.startsWith('/redfish/v1/AccountService/Accounts')) return method === 'GET' || method === 'PATCH';
    return path.startsWith(`${this.path()}/`) && method === 'DELETE';
  }

  #credentialsOk(user: unknown, password: unknown): boolean {
    if (typeof user !== 'string' || typeof password !== 'string') return false;
    const a = Buffer.from(`${user}\0${password}`);
    const b = Buffer.from(`${this.#user}\0${this.#password}`);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** The session token of an authenticated request, `undefined` for Basic; throws 401 otherwise. */
  authenticate(req: IncomingMessage): string | undefined {
    const token = headerValue(req.headers['x-auth-token']);
    if (token) {
      if (this.byToken.has(token)) return token;
      throw fail(
        401,
        `${REG}.NoValidSession`,
        'There is no valid session established with the implementation.',
        {
          resolution: 'Establish a session before attempting any operations.',
        },
        { 'WWW-Authenticate': 'Basic realm="Redfish"' },
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

  /** POST to the sessions collection. */
  login(body: unknown): Reply {
    const b = (body ?? {}) as Json;
    if (!this.#credentialsOk(b.UserName, b.Password))
      throw fail(
        401,
        `${REG}.ResourceAtUriUnauthorized`,
        'While accessing the resource at the URI, the service received an authorization error.',
        { args: [this.path()] },
      );
    if (this.byToken.size >= (this.opts.maxSessions ?? 16))
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
    const path = `${this.path()}/${id}`;
    this.byToken.set(token, { id, path });
    const session = {
      '@odata.id': path,
      '@odata.type': '#Session.v1_7_0.Session',
      Id: id,
      Name: `User Session ${id}`,
      UserName: b.UserName,
      Password: null,
    };
    this.ctx.r.set(path, session);
    this.ctx.syncCollection(this.path());
    return { status: 201, body: session, headers: { 'X-Auth-Token': token, Location: path } };
  }

  /** DELETE of a session (any authenticated client may end any session; DSP0266 allows admins to). */
  logout(path: string): Reply {
    const entry = [...this.byToken.entries()].find(([, s]) => s.path === path);
    if (!entry)
      throw fail(
        404,
        `${REG}.ResourceNotFound`,
        `The requested resource of type Session named '${path}' was not found.`,
      );
    this.byToken.delete(entry[0]);
    this.ctx.r.delete(path);
    this.ctx.syncCollection(this.path());
    return { status: 204 };
  }
}

/** The first value of a request header. */
export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
