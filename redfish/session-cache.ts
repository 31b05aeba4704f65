/**
 * A cache of Redfish sessions keyed by BMC + credentials + TLS settings.
 * BMC session pools are small (iDRAC answers 503 `RAC0218` at its limit;
 * gofish#75, theforeman/smart-proxy#895 leaked sessions), so clients that share
 * one cache reuse a live session instead of opening another; Ironic keys its
 * cache the same way (`connection_cache_size`, address+user+password+verify_ca).
 */
import { createHash } from 'node:crypto';

/** One live session: its token and the session resource to DELETE on logout. */
export interface CachedSession {
  readonly token: string;
  readonly location: string | undefined;
}

/** Session store shared by any number of {@link RedfishClient}s. No global instance exists. */
export class SessionCache {
  readonly #sessions = new Map<string, CachedSession>();

  /** Cache key for a BMC origin, user, password and TLS mode (the password is hashed, never stored). */
  static key(origin: string, username: string, password: string, tlsMode: string): string {
    const h = createHash('sha256').update(`${username}\0${password}\0${tlsMode}`).digest('hex').slice(0, 32);
    return `${origin}#${h}`;
  }

  get(key: string): CachedSession | undefined {
    return this.#sessions.get(key);
  }

  set(key: string, session: CachedSession): void {
    this.#sessions.set(key, session);
  }

  /** Drops `key` only if it still holds `token` (another client may have re-authenticated). */
  delete(key: string, token?: string): void {
    const cur = this.#sessions.get(key);
    if (cur && (token === undefined || cur.token === token)) this.#sessions.delete(key);
  }

  get size(): number {
    return this.#sessions.size;
  }
}
