/**
 * Throttling of failed HTTP Basic authentications (RFC 8572 §5.3 lets a device
 * authenticate with a password; a password can be guessed). Failures are
 * counted per serial and per client address in fixed windows; once either
 * count reaches its limit, further Basic attempts for that serial or from that
 * address are answered 429 without checking the password until the window
 * ends. Memory is bounded: at most `maxTracked` serials and addresses each
 * (least recently failing forgotten first).
 */
import { Lru } from './lru.js';

/** Limits of {@link AuthThrottle}; every field has a documented default (README "HTTP Basic throttling"). */
export interface AuthThrottleOptions {
  /** Failed attempts for one serial per window before it is locked (default 10). */
  perSerial?: number | undefined;
  /** Failed attempts from one address per window before it is locked (default 50). */
  perAddress?: number | undefined;
  /** Window length, ms (default 300 000: 5 minutes). */
  windowMs?: number | undefined;
  /** Serials and addresses tracked at most, each (default 10 000). */
  maxTracked?: number | undefined;
}

/** Defaults of {@link AuthThrottleOptions}. */
export const AUTH_THROTTLE_DEFAULTS = {
  perSerial: 10,
  perAddress: 50,
  windowMs: 300_000,
  maxTracked: 10_000,
} as const;

interface Window {
  start: number;
  failures: number;
}

/** Counts failed authentications and says when to refuse. */
export class AuthThrottle {
  readonly #o: Required<{ [K in keyof AuthThrottleOptions]: number }>;
  readonly #now: () => Date;
  readonly #serials: Lru<string, Window>;
  readonly #addresses: Lru<string, Window>;

  constructor(options: AuthThrottleOptions | undefined, now: () => Date) {
    this.#o = {
      perSerial: options?.perSerial ?? AUTH_THROTTLE_DEFAULTS.perSerial,
      perAddress: options?.perAddress ?? AUTH_THROTTLE_DEFAULTS.perAddress,
      windowMs: options?.windowMs ?? AUTH_THROTTLE_DEFAULTS.windowMs,
      maxTracked: options?.maxTracked ?? AUTH_THROTTLE_DEFAULTS.maxTracked,
    };
    this.#now = now;
    // Lru holds up to 2 × its size: halve it so maxTracked is the real bound.
    this.#serials = new Lru(Math.ceil(this.#o.maxTracked / 2));
    this.#addresses = new Lru(Math.ceil(this.#o.maxTracked / 2));
  }

  /** Seconds until the caller may try again, or 0 when neither the serial nor the address is locked. */
  retryAfter(serial: string, address: string | undefined): number {
    const now = this.#now().getTime();
    const locked = (w: Window | undefined, limit: number) =>
      w && now - w.start < this.#o.windowMs && w.failures >= limit
        ? Math.ceil((w.start + this.#o.windowMs - now) / 1000)
        : 0;
    return Math.max(
      locked(this.#serials.peek(serial), this.#o.perSerial),
      address === undefined ? 0 : locked(this.#addresses.peek(address), this.#o.perAddress),
    );
  }

  /** Counts one failed attempt. */
  failed(serial: string, address: string | undefined): void {
    const now = this.#now().getTime();
    const bump = (m: Lru<string, Window>, k: string) => {
      const w = m.get(k);
      if (!w || now - w.start >= this.#o.windowMs) m.set(k, { start: now, failures: 1 });
      else w.failures++;
    };
    bump(this.#serials, serial);
    if (address !== undefined) bump(this.#addresses, address);
  }

  /** Serials and addresses tracked now (for the memory-bound test). */
  get tracked(): number {
    return this.#serials.size + this.#addresses.size;
  }
}
