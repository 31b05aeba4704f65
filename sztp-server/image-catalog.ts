/**
 * Image metadata lookups for the byte-serving hot path: one database query per
 * name per few seconds instead of one per request (a BMC reading an ISO sends
 * thousands of small Range requests).
 *
 * Caching is safe because a stored file never changes: an upload writes a new
 * file under a new path and the old one is unlinked after the row moves on
 * (see bootstrap/image-store.ts). A stale entry therefore names either the old,
 * complete, self-consistent file or a path that no longer exists, and
 * `image-serving.ts` re-reads the row on ENOENT.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from '../db/index.js';

/** What serving needs to know about one image. */
export interface ServedImage {
  name: string;
  size: number;
  sha256: string;
  contentType: string;
  /** Absolute path of the (immutable) file. */
  path: string;
  /** Strong entity tag derived from the SHA-256 (RFC 9110 §8.8.3). */
  etag: string;
  /** Last-Modified in ms, truncated to whole seconds as HTTP dates are. */
  lastModifiedMs: number;
  /** Last-Modified as an IMF-fixdate. */
  lastModified: string;
}

/** Options of the catalog. */
export interface ImageCatalogOptions {
  /** The images directory; relative paths in the `images` table resolve against it. */
  dir: string;
  /** How long a looked-up row is reused (default 5000 ms). */
  ttlMs?: number;
}

/** Looks up images by name with a short-lived cache. */
export class ImageCatalog {
  readonly #db: Kysely<Database>;
  readonly #dir: string;
  readonly #ttlMs: number;
  readonly #cache = new Map<string, { image: ServedImage; at: number }>();
  readonly #inflight = new Map<string, Promise<ServedImage | undefined>>();

  constructor(db: Kysely<Database>, opts: ImageCatalogOptions) {
    this.#db = db;
    this.#dir = resolve(opts.dir);
    this.#ttlMs = opts.ttlMs ?? 5000;
  }

  /** The image named `name` if a fresh entry is cached (no waiting), else undefined. */
  peek(name: string): ServedImage | undefined {
    const hit = this.#cache.get(name);
    return hit && performance.now() - hit.at < this.#ttlMs ? hit.image : undefined;
  }

  /** The image named `name`, or undefined. `fresh` skips the cache. */
  async get(name: string, fresh = false): Promise<ServedImage | undefined> {
    const hit = this.#cache.get(name);
    if (hit && !fresh && performance.now() - hit.at < this.#ttlMs) return hit.image;
    const pending = this.#inflight.get(name);
    if (pending) return pending;
    const p = this.#load(name).finally(() => this.#inflight.delete(name));
    this.#inflight.set(name, p);
    return p;
  }

  /** Forgets one name (after an upload or delete in this process), or everything. */
  invalidate(name?: string): void {
    if (name === undefined) this.#cache.clear();
    else this.#cache.delete(name);
  }

  async #load(name: string): Promise<ServedImage | undefined> {
    const row = await this.#db
      .selectFrom('images')
      .select(['name', 'size', 'sha256', 'content_type', 'path', 'created_at'])
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row) {
      this.#cache.delete(name);
      return undefined;
    }
    const path = resolve(this.#dir, row.path);
    const rel = relative(this.#dir, path);
    // Defence in depth: a row can only ever name a file inside the images directory.
    if (rel.startsWith('..') || isAbsolute(rel))
      throw new Error(`image ${name}: path outside the images dir`);
    const lastModifiedMs = Math.floor(new Date(row.created_at).getTime() / 1000) * 1000;
    const image: ServedImage = {
      name: row.name,
      size: Number(row.size),
      sha256: row.sha256,
      contentType: row.content_type,
      path,
      etag: `"${row.sha256}"`,
      lastModifiedMs,
      lastModified: new Date(lastModifiedMs).toUTCString(),
    };
    this.#cache.set(name, { image, at: performance.now() });
    return image;
  }
}
