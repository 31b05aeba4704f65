/**
 * The dashboard's data layer: every call to the operator API goes through
 * {@link Api}, which sends the token as a bearer header (never in a URL) and
 * turns every failure into an {@link ApiFailure} with a kind the page can
 * explain: `auth` (the token was refused), `unreachable` (the API went away),
 * or `problem` (the API said no, with its problem body's code and detail).
 *
 * Calls go through the typed client generated from the OpenAPI document
 * (`web/api/`: openapi-typescript types + openapi-fetch). The view types below
 * are what the pages read; the client's answers are checked against the
 * generated schema at each call site.
 */
import {
  type ApiClient,
  ApiProblemError,
  ApiUnreachableError,
  createApiClient,
  ok,
  type paths,
} from '../api';

/** Why a call failed, in the terms the page shows. */
export type FailureKind = 'auth' | 'forbidden' | 'unreachable' | 'problem';

/** A failed API call. */
export class ApiFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly status = 0,
    readonly code?: string,
  ) {
    super(message);
  }
}

export type Role = 'admin' | 'operator' | 'viewer';
export interface Session {
  name: string;
  role: Role;
  traceUiUrl: string | null;
}
export type DeviceState = 'registered' | 'pending' | 'bootstrapping' | 'provisioned' | 'failed';
export interface Device {
  serial: string;
  profile: string | null;
  state: DeviceState;
  hwModel: string | null;
  labels: Record<string, string>;
  bmc: string | null;
  /** SHA-256 of the IDevID the device presented, when one was recorded. */
  idevidFingerprint: string | null;
  lastProgress: { type: string; message: string | null; at: string } | null;
  createdAt: string;
  updatedAt: string;
}
/** A revoked device identity. */
export interface RevokedIdevid {
  fingerprint: string;
  reason: string | null;
  revokedAt: string;
  revokedBy: string;
}
export interface StepView {
  step: string;
  attempt: number;
  startedAt: string;
  finishedAt: string | null;
  result: string;
  detail: string | null;
  errorCode: string | null;
  bmcMessages: unknown[] | null;
}
export interface RunView {
  serial: string;
  state: string;
  step: string;
  attempt: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: { code: string; message: string; bmcMessages?: unknown[] } | null;
  traceId?: string | null;
  steps?: StepView[];
}
export interface JobHead {
  id: string;
  kind: string;
  state: string;
  params: Record<string, unknown>;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  counts: Record<string, number>;
}
export interface Job extends JobHead {
  devices: RunView[];
}
export interface BmcCheck {
  at: string;
  ok: boolean;
  report?: Record<string, unknown>;
  error?: { code: string; message: string };
}
export interface Bmc {
  id: string;
  address: string;
  username: string;
  insecure: boolean;
  auth: string;
  profile?: string;
  system?: string;
  labels: Record<string, string>;
  lastCheck?: BmcCheck;
  createdAt: string;
  updatedAt: string;
}
export interface Image {
  name: string;
  size: number;
  sha256: string;
  [k: string]: unknown;
}
export interface Profile {
  name: string;
  version?: number;
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}
export interface BootstrapEvent {
  id: string;
  kind: string;
  progressType: string | null;
  message: string | null;
  remoteAddress: string | null;
  at: string;
}
interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}
/** Turns the client's errors into what the page explains. */
function failure(err: unknown): unknown {
  if (err instanceof ApiUnreachableError)
    return new ApiFailure(
      'unreachable',
      'the dpu-ztp API did not answer (the service is down or unreachable)',
    );
  if (err instanceof ApiProblemError) {
    const code = String(err.code);
    if (err.status === 401) return new ApiFailure('auth', err.detail, 401, code);
    if (err.status === 403) return new ApiFailure('forbidden', err.detail, 403, code);
    if (err.status === 502 || err.status === 504 || (err.status === 503 && code !== 'API_ERR_UNAVAILABLE'))
      return new ApiFailure('unreachable', `the API answered ${err.status}: ${err.detail}`, err.status, code);
    return new ApiFailure('problem', err.detail, err.status, code);
  }
  return err;
}

/** `GET /jobs` filters, as the generated schema types them. */
type JobsQuery = NonNullable<paths['/api/v1/jobs']['get']['parameters']['query']>;

type Answer<T> = Promise<{ data?: T; error?: unknown; response: Response }>;

/** A random Idempotency-Key, so a retried click never starts a job twice. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}

const once = () => ({ headers: { 'idempotency-key': idempotencyKey() } });

/** The operator API with one token. */
export class Api {
  readonly client: ApiClient;
  constructor(
    readonly token: string,
    base = location.origin,
  ) {
    this.client = createApiClient({ baseUrl: base, token });
  }

  async #ok<T>(pending: Answer<T>): Promise<T> {
    try {
      return (await ok(pending)) as T;
    } catch (err) {
      throw failure(err);
    }
  }

  session = () => this.#ok(this.client.GET('/api/v1/session')) as Promise<Session>;

  /** Every device (cursor pages of 500; bounded). */
  async devices(max = 20_000): Promise<Device[]> {
    const out: Device[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#ok(
        this.client.GET('/api/v1/devices', {
          params: { query: { limit: 500, ...(cursor ? { cursor } : {}) } },
        }),
      );
      out.push(...(page.items as unknown as Device[]));
      cursor = page.nextCursor ?? undefined;
    } while (cursor && out.length < max);
    return out;
  }
  device = async (serial: string) =>
    (await this.#ok(
      this.client.GET('/api/v1/devices/{serial}', { params: { path: { serial } } }),
    )) as unknown as Device;
  deviceEvents = async (serial: string) =>
    (await this.#ok(
      this.client.GET('/api/v1/devices/{serial}/events', {
        params: { path: { serial }, query: { limit: 1000 } },
      }),
    )) as unknown as Page<BootstrapEvent>;
  jobs = async (query: JobsQuery = {}) =>
    (await this.#ok(
      this.client.GET('/api/v1/jobs', {
        params: { query: { limit: 50, ...query } },
      }),
    )) as unknown as Page<JobHead>;
  job = async (id: string, steps = false) =>
    (await this.#ok(
      this.client.GET('/api/v1/jobs/{id}', { params: { path: { id }, query: steps ? { steps: true } : {} } }),
    )) as unknown as Job;
  provision = async (devices: string[]) =>
    (await this.#ok(
      this.client.POST('/api/v1/jobs', { body: { kind: 'provision', devices }, ...once() }),
    )) as unknown as Job;
  cancelJob = async (id: string) =>
    (await this.#ok(
      this.client.POST('/api/v1/jobs/{id}/cancel', { params: { path: { id } }, ...once() }),
    )) as unknown as Job;
  retryJob = async (id: string) =>
    (await this.#ok(
      this.client.POST('/api/v1/jobs/{id}/retry', { params: { path: { id } }, ...once() }),
    )) as unknown as Job;
  async bmcs(max = 20_000): Promise<Bmc[]> {
    const out: Bmc[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#ok(
        this.client.GET('/api/v1/bmcs', { params: { query: { limit: 500, ...(cursor ? { cursor } : {}) } } }),
      );
      out.push(...(page.items as unknown as Bmc[]));
      cursor = page.nextCursor ?? undefined;
    } while (cursor && out.length < max);
    return out;
  }
  bmc = async (id: string) =>
    (await this.#ok(this.client.GET('/api/v1/bmcs/{id}', { params: { path: { id } } }))) as unknown as Bmc;
  /**
   * Creates BMC `id`. Create-only (`If-None-Match: *`): a BMC that already has this id is
   * refused with 412, never replaced (a replace would reset its CA, labels and last check).
   */
  addBmc = async (
    id: string,
    body: { address: string; username: string; password: string; insecure?: boolean },
  ) =>
    (await this.#ok(
      this.client.PUT('/api/v1/bmcs/{id}', {
        params: { path: { id }, header: { 'If-None-Match': '*' } },
        body,
      }),
    )) as unknown as Bmc;
  checkBmc = async (id: string) =>
    (await this.#ok(
      this.client.POST('/api/v1/bmcs/{id}/check', { params: { path: { id } }, ...once() }),
    )) as unknown as BmcCheck;
  /** The revocation of `fingerprint`, or undefined when it is not revoked (the API's 404). */
  revocation = async (fingerprint: string): Promise<RevokedIdevid | undefined> => {
    try {
      return (await this.#ok(
        this.client.GET('/api/v1/revoked-idevids/{fingerprint}', { params: { path: { fingerprint } } }),
      )) as RevokedIdevid;
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 404) return undefined;
      throw err;
    }
  };
  revokeIdevid = async (fingerprint: string, reason: string) =>
    (await this.#ok(
      this.client.PUT('/api/v1/revoked-idevids/{fingerprint}', {
        params: { path: { fingerprint } },
        body: reason ? { reason } : {},
      }),
    )) as RevokedIdevid;
  unrevokeIdevid = async (fingerprint: string) => {
    await this.#ok(
      this.client.DELETE('/api/v1/revoked-idevids/{fingerprint}', { params: { path: { fingerprint } } }),
    );
  };
  images = async () => (await this.#ok(this.client.GET('/api/v1/images'))) as unknown as Page<Image>;
  profiles = async () => (await this.#ok(this.client.GET('/api/v1/profiles'))) as unknown as Page<Profile>;
}
