/**
 * The device-row cache of the bootstrap service: a device with its profile's
 * columns, kept for `ttlMs` while one query every half of it checks all cached
 * rows against the database (`updated_at` of the device and its profile's
 * version), so a retry storm costs no per-request queries and a change made by
 * any replica reaches devices within `ttlMs`. The clock is injected; the
 * background check can be turned off and driven by {@link DeviceRowCache.revalidate}.
 */
import { type Kysely, sql } from 'kysely';
import type { Database, Device } from '../db/index.js';
import { Lru } from './lru.js';

/** A device row with its profile's columns (null when it has none). */
export type DeviceWithProfile = Device & {
  profile_spec: Record<string, unknown> | null;
  profile_version: number | null;
  profile_updated_at: Date | null;
};

/** Options of {@link DeviceRowCache}. */
export interface DeviceRowCacheOptions {
  db: Kysely<Database>;
  /** How stale a cached row may get, ms (0: read the database on every request). */
  ttlMs: number;
  /** A cached row no request used for this long is dropped instead of checked (default 60 000 ms). */
  idleMs?: number | undefined;
  /** Rows kept at most (default 10 000). */
  size?: number | undefined;
  now: () => Date;
  /** Run {@link DeviceRowCache.revalidate} every `ttlMs / 2` on a timer while rows are cached (default true). */
  timer?: boolean | undefined;
}

interface Entry {
  row: DeviceWithProfile;
  fetchedAt: number;
  usedAt: number;
}

/** Cached device rows (with their profiles). */
export class DeviceRowCache {
  readonly #o: DeviceRowCacheOptions;
  readonly #rows: Lru<string, Entry>;
  /** Start of the last revalidation of cached rows that succeeded: they were current then. */
  #checkedAt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  #revalidating = false;

  constructor(options: DeviceRowCacheOptions) {
    this.#o = options;
    this.#rows = new Lru(options.size ?? 10_000);
  }

  #ms(): number {
    return this.#o.now().getTime();
  }

  /** The device with its profile: from the cache while fresh, else one query; undefined when not registered. */
  async get(serial: string): Promise<DeviceWithProfile | undefined> {
    const ttl = this.#o.ttlMs;
    const cached = ttl > 0 ? this.#rows.get(serial) : undefined;
    if (cached) {
      const now = this.#ms();
      if (now - Math.max(cached.fetchedAt, this.#checkedAt) < ttl) {
        cached.usedAt = now;
        return cached.row;
      }
    }
    // One query for the device and its profile: this is the hot path of every request.
    const device = await this.#o.db
      .selectFrom('devices')
      .leftJoin('profiles', 'profiles.name', 'devices.profile')
      .selectAll('devices')
      .select([
        'profiles.spec as profile_spec',
        'profiles.version as profile_version',
        'profiles.updated_at as profile_updated_at',
      ])
      .where('devices.serial', '=', serial)
      .executeTakeFirst();
    if (device && device.state !== 'pending' && ttl > 0) {
      const now = this.#ms();
      this.#rows.set(serial, { row: device, fetchedAt: now, usedAt: now });
      if (this.#o.timer !== false)
        this.#timer ??= setInterval(() => void this.revalidate(), Math.max(1, ttl / 2)).unref();
    }
    return device;
  }

  /** Forgets a row (its state is about to change). */
  delete(serial: string): void {
    this.#rows.delete(serial);
  }

  /** Rows cached now. */
  get size(): number {
    return this.#rows.size;
  }

  /**
   * Checks every cached device row against the database in one query and drops the
   * ones that changed (device `updated_at`, profile version or `updated_at`) or are gone.
   * On failure the whole cache is dropped, so a database that cannot answer never
   * leaves stale rows in use.
   */
  async revalidate(): Promise<void> {
    if (this.#revalidating) return;
    // Rows no request used for a while are dropped rather than checked: the background
    // work follows the devices that are retrying now, not every device seen since start.
    const idleBefore = this.#ms() - (this.#o.idleMs ?? 60_000);
    for (const serial of this.#rows.keys()) {
      const e = this.#rows.peek(serial);
      if (e && e.usedAt < idleBefore) this.#rows.delete(serial);
    }
    const serials = this.#rows.keys();
    if (serials.length === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    this.#revalidating = true;
    const start = this.#ms();
    try {
      const rows = await this.#o.db
        .selectFrom('devices')
        .leftJoin('profiles', 'profiles.name', 'devices.profile')
        .select([
          'devices.serial',
          'devices.updated_at',
          'profiles.version as profile_version',
          'profiles.updated_at as profile_updated_at',
        ])
        .where(sql<boolean>`devices.serial = any(${serials}::text[])`)
        .execute();
      const current = new Map(rows.map((r) => [r.serial, r]));
      for (const serial of serials) {
        const entry = this.#rows.peek(serial);
        if (!entry || entry.fetchedAt > start) continue; // fetched after this check began
        const now = current.get(serial);
        const same =
          now !== undefined &&
          now.updated_at.getTime() === entry.row.updated_at.getTime() &&
          now.profile_version === entry.row.profile_version &&
          (now.profile_updated_at?.getTime() ?? null) === (entry.row.profile_updated_at?.getTime() ?? null);
        if (!same) this.#rows.delete(serial);
      }
      this.#checkedAt = start;
    } catch {
      this.#rows.clear();
    } finally {
      this.#revalidating = false;
    }
  }

  /** Stops the background check. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
