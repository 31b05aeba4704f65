/**
 * The image store: files under `<data-dir>/images/`, metadata in the `images`
 * table.
 *
 * An upload streams to `images/.tmp/<random>.part` while SHA-256, SHA-384 and
 * SHA-512 are computed in the same pass; only a complete, verified body is
 * renamed into place, under a path of its own (`<name>@<random>`), and the row
 * is switched to it in a transaction. Stored files are therefore immutable:
 * a reader that resolved a row always gets that row's bytes (or ENOENT, once
 * a newer upload or a delete has unlinked it), never a mix, and nothing partial
 * is ever named by a row. Concurrent uploads of one name serialise on an
 * advisory lock at commit time: the last to complete wins, every one of them
 * succeeds, and the files they replaced are removed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, statfs, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Kysely, sql } from 'kysely';
import type { Database, Image } from '../db/index.js';
import { ApiError } from './errors.js';

/** Hash algorithms computed for every image, with their hex digest lengths. */
export const IMAGE_HASHES = { sha256: 64, sha384: 96, sha512: 128 } as const;
/** One of the computed hashes. */
export type ImageHash = keyof typeof IMAGE_HASHES;

/** Options of the store. */
export interface ImageStoreOptions {
  /** The images directory (`<data-dir>/images`). */
  dir: string;
  /** Largest accepted image in bytes (default 64 GiB). */
  maxBytes?: number;
  /** Stored files no row names are removed by `sweep()` once older than this (default 1 h). */
  staleMs?: number;
  /**
   * A `.part` file that is not one of this process's uploads in flight is removed by
   * `sweep()` once nothing wrote to it for this long (default 5 min: an upload that
   * stalls that long has been cut off by the request timeout; another replica sharing
   * the directory keeps writing to its own).
   */
  partIdleMs?: number;
  /** Clock (ms since the epoch) for the age checks (tests pass their own). */
  now?: () => number;
  /**
   * Opens the temporary file's write stream. Only for tests that cannot make a
   * small filesystem (no tmpfs mount allowed) to provoke ENOSPC.
   */
  openTemp?: (path: string) => Writable;
}

/** A received, hashed upload waiting to be committed. */
export interface ReceivedImage {
  tmpPath: string;
  size: number;
  sha256: string;
  sha384: string;
  sha512: string;
}

/** What the uploader states about an image. */
export interface ImageMeta {
  osName?: string | undefined;
  osVersion?: string | undefined;
}

/** Errors of a body that ended early (the client went away). */
const ABORTED = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);
/** Errors of a full disk or quota. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/** Content type by kind: ISO images for virtual media, opaque bytes otherwise. */
export function imageContentType(name: string): string {
  return /\.iso$/i.test(name) ? 'application/x-iso9660-image' : 'application/octet-stream';
}

/** Stores images on disk and their metadata in the database. */
export class ImageStore {
  readonly dir: string;
  readonly maxBytes: number;
  readonly #tmp: string;
  readonly #db: Kysely<Database>;
  readonly #staleMs: number;
  readonly #partIdleMs: number;
  readonly #now: () => number;
  readonly #openTemp: ((path: string) => Writable) | undefined;
  /** Temporary files of uploads in flight in this process (received, not yet committed or discarded). */
  readonly #inFlight = new Set<string>();
  #sweeping: Promise<string[]> | undefined;
  /** The sweep started when the last upload in flight ended (tests await it). */
  idleSweep: Promise<string[]> = Promise.resolve([]);

  constructor(db: Kysely<Database>, opts: ImageStoreOptions) {
    this.#db = db;
    this.dir = resolve(opts.dir);
    this.#tmp = join(this.dir, '.tmp');
    this.maxBytes = opts.maxBytes ?? 64 * 1024 ** 3;
    this.#staleMs = opts.staleMs ?? 3600_000;
    this.#partIdleMs = opts.partIdleMs ?? 300_000;
    this.#now = opts.now ?? Date.now;
    this.#openTemp = opts.openTemp;
  }

  /** Creates the directories (mode 0750). */
  async init(): Promise<void> {
    await mkdir(this.#tmp, { recursive: true, mode: 0o750 });
  }

  /**
   * Removes orphaned temporary files (not this process's uploads in flight, unwritten for
   * `partIdleMs`) and stored files no row names once older than `staleMs` (left by a crash
   * between rename and commit). Runs at start-up and again whenever the last upload in
   * flight ends, so an aborted upload's leftovers do not wait for a restart. Age, not
   * process start, decides: another process may share the directory.
   */
  sweep(now = this.#now()): Promise<string[]> {
    this.#sweeping ??= this.#sweep(now).finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweep(now: number): Promise<string[]> {
    const removed: string[] = [];
    const older = async (p: string, ms: number) => now - (await stat(p)).mtimeMs > ms;
    const old = (p: string) => older(p, this.#staleMs);
    for (const f of await readdir(this.#tmp).catch(() => [] as string[])) {
      const p = join(this.#tmp, f);
      if (this.#inFlight.has(p)) continue;
      if (await older(p, this.#partIdleMs).catch(() => false))
        await unlink(p).then(
          () => removed.push(p),
          () => {},
        );
    }
    const named = new Set((await this.#db.selectFrom('images').select('path').execute()).map((r) => r.path));
    for (const f of await readdir(this.dir)) {
      if (!f.includes('@') || named.has(f)) continue;
      const p = join(this.dir, f);
      if (await old(p).catch(() => false))
        await unlink(p).then(
          () => removed.push(p),
          () => {},
        );
    }
    return removed;
  }

  /**
   * Images the database knows whose file this process's directory lacks or holds with
   * another size (a shared volume not mounted, lagging, or damaged on this replica).
   * Looks at up to `limit` rows (newest first).
   */
  async checkFiles(limit = 10_000): Promise<{ checked: number; missing: string[]; wrongSize: string[] }> {
    const rows = await this.#db
      .selectFrom('images')
      .select(['name', 'path', 'size'])
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute();
    const missing: string[] = [];
    const wrongSize: string[] = [];
    await Promise.all(
      rows.map(async (r) => {
        const st = await stat(join(this.dir, r.path)).catch(() => undefined);
        if (!st) missing.push(r.name);
        else if (st.size !== Number(r.size)) wrongSize.push(r.name);
      }),
    );
    return { checked: rows.length, missing: missing.sort(), wrongSize: wrongSize.sort() };
  }

  /** Free bytes for non-root users on the store's filesystem. */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.dir);
    return s.bavail * s.bsize;
  }

  /**
   * Streams `body` to a temporary file, hashing as it goes. Throws ApiError
   * (413 too large, 507 no space, 400 aborted) after removing the temporary
   * file; on success the caller must `commit` or `discard`.
   */
  async receive(body: Readable): Promise<ReceivedImage> {
    const tmpPath = join(this.#tmp, `${randomBytes(12).toString('hex')}.part`);
    this.#inFlight.add(tmpPath);
    try {
      return await this.#receive(body, tmpPath);
    } catch (err) {
      this.#ended(tmpPath);
      throw err;
    }
  }

  /** An upload's temporary file is no longer in flight; the last one to end starts a sweep. */
  #ended(tmpPath: string): void {
    if (!this.#inFlight.delete(tmpPath) || this.#inFlight.size > 0) return;
    this.idleSweep = this.sweep().catch(() => []);
  }

  async #receive(body: Readable, tmpPath: string): Promise<ReceivedImage> {
    const hashes = {
      sha256: createHash('sha256'),
      sha384: createHash('sha384'),
      sha512: createHash('sha512'),
    };
    let size = 0;
    const max = this.maxBytes;
    const tee = new Transform({
      // Large chunks: fewer hash and write calls per GiB.
      readableHighWaterMark: 1024 * 1024,
      writableHighWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > max) {
          done(new ApiError('API_ERR_BODY_TOO_LARGE', `image larger than the ${max}-byte limit`));
          return;
        }
        hashes.sha256.update(chunk);
        hashes.sha384.update(chunk);
        hashes.sha512.update(chunk);
        done(null, chunk);
      },
    });
    const out = this.#openTemp
      ? this.#openTemp(tmpPath)
      : createWriteStream(tmpPath, { flags: 'wx', mode: 0o640, highWaterMark: 1024 * 1024 });
    try {
      await pipeline(body, tee, out);
      // Durable before it can be renamed into place.
      const fh = await open(tmpPath, 'r');
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      await unlink(tmpPath).catch(() => {});
      throw uploadError(err);
    }
    if (size === 0) {
      await unlink(tmpPath).catch(() => {});
      throw new ApiError('API_ERR_BAD_REQUEST', 'empty body: send the image bytes');
    }
    return {
      tmpPath,
      size,
      sha256: hashes.sha256.digest('hex'),
      sha384: hashes.sha384.digest('hex'),
      sha512: hashes.sha512.digest('hex'),
    };
  }

  /** Removes a received upload that will not be committed. */
  async discard(r: ReceivedImage): Promise<void> {
    await unlink(r.tmpPath).catch(() => {});
    this.#ended(r.tmpPath);
  }

  /**
   * Moves a received upload into place as `name` and points the row at it.
   * Returns the row and whether it replaced an earlier image.
   */
  async commit(
    name: string,
    r: ReceivedImage,
    meta: ImageMeta,
  ): Promise<{ image: Image; replaced: boolean }> {
    const file = `${name}@${randomBytes(8).toString('hex')}`;
    const path = join(this.dir, file);
    try {
      await rename(r.tmpPath, path);
    } catch (err) {
      await unlink(r.tmpPath).catch(() => {});
      throw uploadError(err);
    } finally {
      this.#ended(r.tmpPath);
    }
    await syncDir(this.dir);
    let result: { image: Image; old: string | undefined };
    try {
      result = await this.#db.transaction().execute(async (tx) => {
        // Serialises concurrent commits of one name (the row may not exist yet, so FOR UPDATE cannot).
        await sql`select pg_advisory_xact_lock(hashtext(${`dpu-ztp.image:${name}`}))`.execute(tx);
        const prev = await tx.selectFrom('images').select('path').where('name', '=', name).executeTakeFirst();
        const values = {
          size: String(r.size),
          sha256: r.sha256,
          sha384: r.sha384,
          sha512: r.sha512,
          content_type: imageContentType(name),
          os_name: meta.osName ?? null,
          os_version: meta.osVersion ?? null,
          path: file,
          created_at: new Date(),
        };
        const image = prev
          ? await tx
              .updateTable('images')
              .set(values)
              .where('name', '=', name)
              .returningAll()
              .executeTakeFirstOrThrow()
          : await tx
              .insertInto('images')
              .values({ name, ...values })
              .returningAll()
              .executeTakeFirstOrThrow();
        return { image, old: prev?.path };
      });
    } catch (err) {
      await unlink(path).catch(() => {});
      throw err;
    }
    // Readers holding the old file open keep reading it; new lookups get the new row.
    if (result.old && result.old !== file) await unlink(join(this.dir, result.old)).catch(() => {});
    return { image: result.image, replaced: result.old !== undefined };
  }

  /** Deletes an image's row and then its file; returns false when there is none. */
  async remove(name: string): Promise<boolean> {
    const row = await this.#db
      .deleteFrom('images')
      .where('name', '=', name)
      .returning('path')
      .executeTakeFirst();
    if (!row) return false;
    await unlink(join(this.dir, row.path)).catch(() => {});
    return true;
  }
}

async function syncDir(dir: string): Promise<void> {
  // POSIX: the rename is durable once the directory is synced.
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => {});
  await fh.close();
}

function uploadError(err: unknown): Error {
  if (err instanceof ApiError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  if (NO_SPACE.has(code)) {
    return new ApiError(
      'API_ERR_INSUFFICIENT_STORAGE',
      `the image store is full (${code}); nothing was stored`,
    );
  }
  if (ABORTED.has(code) || (err as Error)?.message === 'aborted') {
    return new ApiError(
      'API_ERR_BAD_REQUEST',
      'the upload ended before the body was complete; nothing was stored',
    );
  }
  return err as Error;
}
