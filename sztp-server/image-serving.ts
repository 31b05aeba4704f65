/**
 * `GET|HEAD /images/{name}`: image bytes for BMCs (virtual media reads ISOs in
 * Range requests) and devices (whole multi-GB downloads), on the plain-HTTP
 * images listener and on the device TLS listener.
 *
 * RFC 9110 semantics (see http-range.ts): `Accept-Ranges: bytes`, single byte
 * ranges (206 + Content-Range), 416 with `Content-Range: bytes *\/size`,
 * `If-Range`, a strong ETag from the image's SHA-256 (not size+mtime: an image
 * replaced by one of equal size must never satisfy an old If-Range),
 * If-None-Match/If-Modified-Since (304), If-Match/If-Unmodified-Since (412).
 *
 * The body path is a small loop instead of `fs.createReadStream().pipe()`:
 * Node has no sendfile, so throughput comes from large reads (512 KiB) and
 * memory from reusing them. Each response has at most two chunks in flight
 * (one being read while the previous is written), a chunk goes back to a
 * shared pool only when the socket has taken it (back-pressure: a slow client
 * holds two chunks, never more), and the pool is capped; past the cap, small
 * unpooled chunks keep everyone moving. Measured here (1 GiB, loopback, 2
 * cores; `npm run bench`): 1.1x nginx's sendfile for one stream, 1.2x for 8
 * and 1.3x for 32, with RSS growth under 20 MiB at 32 downloads.
 */
import { randomBytes } from 'node:crypto';
import { close, fstat, open, read, readSync } from 'node:fs';
import {
  type IncomingMessage,
  type Server,
  type ServerResponse,
  createServer as createHttpServer,
} from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { context, trace } from '@opentelemetry/api';
import { Attr, instruments, listenerAttrs, recordSpanError, SpanName, tracer } from '../otel/index.js';
import { type ByteRange, evaluatePreconditions, ifRangeAllows, parseRange } from './http-range.js';
import type { ImageCatalog, ServedImage } from './image-catalog.js';
import type { ImageFetchLog } from './image-fetch-log.js';
import { type ImageTokenTraces, parseTraceparent } from './job-trace.js';

/** What the serving plugin needs. */
export interface ImageServingOptions {
  catalog: ImageCatalog;
  /** Where fetches are recorded; none records nothing. */
  fetchLog?: ImageFetchLog | undefined;
  /** Which listener this is, as recorded with each fetch. */
  listener: 'http' | 'https';
  /** Read size per chunk of a body (default 512 KiB). */
  chunkBytes?: number;
  /** Most bytes kept in reusable chunks per listener (default 32 MiB). */
  poolBytes?: number;
  /**
   * The provisioning trace of an image token (`/images/t/<token>/<name>`, the URL a job hands its BMC):
   * reads with a known token are recorded in that trace. A token never changes who may read what.
   */
  traces?: ImageTokenTraces | undefined;
}

/**
 * The rule for image names (mirrors `ResourceName` of the operator API, which
 * sztp-server may not import): no path separators, no leading dot, no NUL,
 * at most 128 bytes. Anything else is a 400 before any lookup.
 */
export const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Chunk size past the pool's cap (and the largest range read in one go). */
const SMALL = 64 * 1024;

/** Reusable read buffers of one size, at most `max` of them. */
class ChunkPool {
  readonly #free: Buffer[] = [];
  #count = 0;
  constructor(
    readonly size: number,
    readonly max: number,
  ) {}
  acquire(): Buffer {
    const b = this.#free.pop();
    if (b) return b;
    if (this.#count < this.max) {
      this.#count++;
      return Buffer.allocUnsafeSlow(this.size);
    }
    return Buffer.allocUnsafe(SMALL);
  }
  /** The socket is done with `b`. */
  release(b: Buffer): void {
    if (b.length === this.size) this.#free.push(b);
  }
  /** `b` may still be referenced by a dead socket: never reuse it, let it be collected. */
  forget(b: Buffer): void {
    if (b.length === this.size) this.#count--;
  }
}

/**
 * Opens an image file and checks it holds the row's size. Stored files are complete
 * before any row names them (written, fsynced, renamed), but on a volume shared by
 * several replicas one replica's view may lag (or a copy may be damaged): a file of
 * another size is refused as `EIMAGESIZE`, never served.
 */
const openFd = (path: string, size: number) =>
  new Promise<number>((resolve, reject) =>
    open(path, 'r', (err, fd) => {
      if (err) return reject(err);
      fstat(fd, (e, st) => {
        if (!e && st.size === size) return resolve(fd);
        close(fd, () => {});
        reject(
          e ??
            Object.assign(new Error(`${path} holds ${st.size} bytes, its row says ${size}`), {
              code: 'EIMAGESIZE',
            }),
        );
      });
    }),
  );
const closeFd = (fd: number) => close(fd, () => {});
const readAt = (fd: number, buf: Buffer, length: number, position: number) =>
  new Promise<number>((resolve, reject) =>
    read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );

/**
 * Reads for small ranges (a BMC's 4 KiB virtual-media reads): synchronous
 * while they come from the page cache, on the thread pool otherwise. A cached
 * `pread` of 64 KiB or less takes microseconds, less than handing it to the
 * thread pool and back (measured: 4 KiB random ranges over 16 connections went
 * from ~0.47x to ~0.57x nginx's rate). A read that waits for a slow device would
 * stall the event loop, so SLOW_STREAK reads in a row that each take longer than
 * SLOW_READ_MS switch this listener to thread-pool reads for the next
 * ASYNC_HOLD_MS: on slow storage the loop blocks for at most SLOW_STREAK device
 * reads per second; an SSD's ~0.1 ms reads stay synchronous. (nginx without
 * `aio threads` blocks its worker on every such read.) One slow read alone does
 * not switch: on shared cores a cached read is now and then preempted for a
 * millisecond or more, and switching on each of those cost a fifth of the
 * random-range rate here (9.5-11k vs 12.4-12.7k req/s).
 */
const SLOW_READ_MS = 1;
const SLOW_STREAK = 2;
const SLAB = 128 * 1024;
const ASYNC_HOLD_MS = 1000;
class SmallReads {
  #asyncUntil = 0;
  /**
   * Small read buffers are cut from 128 KiB slabs (Node's own pool stops below 4 KiB).
   * A response still being written keeps its slab: small, so a stalled client pins 128 KiB.
   */
  #slab = Buffer.allocUnsafeSlow(SLAB);
  #slabUsed = 0;
  /** Slow synchronous reads in a row. */
  #slow = 0;
  /**
   * Reads exactly `length` bytes at `position` into a new buffer (throws if the file is
   * shorter): synchronously while reads are fast, else a promise of the thread pool's read.
   */
  read(fd: number, length: number, position: number): Buffer | Promise<Buffer> {
    if (this.#slabUsed + length > SLAB) {
      this.#slab = Buffer.allocUnsafeSlow(SLAB);
      this.#slabUsed = 0;
    }
    const buf = this.#slab.subarray(this.#slabUsed, this.#slabUsed + length);
    this.#slabUsed += (length + 7) & ~7;
    const t0 = performance.now();
    if (t0 < this.#asyncUntil) {
      return readAt(fd, buf, length, position).then((n) => {
        if (n !== length) throw new Error('image file is shorter than its recorded size');
        return buf;
      });
    }
    const n = readSync(fd, buf, 0, length, position);
    const t1 = performance.now();
    if (t1 - t0 <= SLOW_READ_MS) this.#slow = 0;
    else if (++this.#slow >= SLOW_STREAK) {
      this.#slow = 0;
      this.#asyncUntil = t1 + ASYNC_HOLD_MS;
    }
    if (n !== length) throw new Error('image file is shorter than its recorded size');
    return buf;
  }
}

/**
 * Open file descriptors shared by the requests for one path, closed 2 s after
 * the last one is done. Safe because a stored path never changes content (a
 * new upload gets a new path): a descriptor kept past an unlink still reads
 * the bytes its row (and ETag) describe. Saves an open and a close per BMC
 * range read.
 */
interface OpenFile {
  fd: Promise<number>;
  /** The descriptor once open. */
  value?: number;
  refs: number;
  timer?: NodeJS.Timeout | undefined;
}

class FdCache {
  readonly #open = new Map<string, OpenFile>();
  /** The descriptor for `path` if it is already open (taking a reference), else undefined. */
  tryAcquire(path: string): number | undefined {
    const e = this.#open.get(path);
    if (e?.value === undefined) return undefined;
    e.refs++;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    return e.value;
  }
  async acquire(path: string, size: number): Promise<number> {
    let e = this.#open.get(path);
    if (!e) {
      const entry: OpenFile = { fd: openFd(path, size), refs: 0 };
      entry.fd.then(
        (fd) => {
          entry.value = fd;
        },
        () => this.#open.delete(path),
      );
      this.#open.set(path, entry);
      e = entry;
    }
    e.refs++;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    try {
      return await e.fd;
    } catch (err) {
      e.refs--;
      throw err;
    }
  }
  #closing = false;
  release(path: string): void {
    const e = this.#open.get(path);
    if (!e || --e.refs > 0) return;
    const drop = () => {
      if (e.refs > 0) return;
      this.#open.delete(path);
      void e.fd.then(closeFd, () => {});
    };
    if (this.#closing) drop();
    else e.timer = setTimeout(drop, 2000).unref();
  }
  /** Closes idle descriptors now and the others as their last request finishes (never one in use). */
  closeIdle(): void {
    this.#closing = true;
    for (const [path, e] of this.#open) {
      if (e.refs > 0) continue;
      if (e.timer) clearTimeout(e.timer);
      this.#open.delete(path);
      void e.fd.then(closeFd, () => {});
    }
  }
}

/** One chunk on its way to the socket. */
interface InFlight {
  buf: Buffer;
  settled: boolean;
  done: Promise<void>;
}

/**
 * Writes bytes [start, end] of `fd` to `res`, two chunks deep. Resolves with
 * the bytes the socket took; stops early (without throwing) when the client
 * goes away. With `part` (one part of a multipart body) it leaves the response
 * open and uses the caller's close signal.
 */
async function sendFile(
  res: ServerResponse,
  fd: number,
  start: number,
  end: number,
  pool: ChunkPool,
  done: () => void,
  part?: { closed: Promise<void> },
): Promise<number> {
  const closed = part?.closed ?? new Promise<void>((resolve) => res.once('close', resolve));
  const slots: Array<InFlight | undefined> = [undefined, undefined];
  let pos = start;
  let sent = 0;
  let i = 0;
  const wait = async (s: InFlight | undefined) => {
    if (s) await Promise.race([s.done, closed]);
  };
  try {
    while (pos <= end && !res.destroyed) {
      i ^= 1;
      await wait(slots[i]);
      if (res.destroyed) break;
      const buf = pool.acquire();
      let n: number;
      try {
        n = await readAt(fd, buf, Math.min(buf.length, end - pos + 1), pos);
      } catch (err) {
        pool.release(buf);
        throw err;
      }
      if (n === 0) {
        pool.release(buf);
        throw new Error('image file is shorter than its recorded size');
      }
      pos += n;
      const slot: InFlight = { buf, settled: false, done: Promise.resolve() };
      slot.done = new Promise<void>((resolve) => {
        res.write(n === buf.length ? buf : buf.subarray(0, n), (err) => {
          if (!slot.settled) {
            slot.settled = true;
            if (err) pool.forget(buf);
            else {
              sent += n;
              pool.release(buf);
            }
          }
          resolve();
        });
      });
      slots[i] = slot;
    }
    await Promise.all(slots.map(wait));
    if (!res.destroyed && !part) res.end();
  } catch (err) {
    // Headers are out: the only honest signal left is a cut connection.
    res.destroy(err as Error);
  } finally {
    for (const s of slots) {
      if (s && !s.settled) {
        s.settled = true;
        pool.forget(s.buf);
      }
    }
    done();
  }
  return sent;
}

/** A `multipart/byteranges` body (RFC 9110 §14.6): each part's header lines, then the closing delimiter. */
function multipartLayout(
  ranges: ByteRange[],
  contentType: string,
  size: number,
): { boundary: string; heads: Buffer[]; tail: Buffer; length: number } {
  const boundary = randomBytes(16).toString('hex');
  const heads = ranges.map((r, i) =>
    Buffer.from(
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\ncontent-type: ${contentType}\r\ncontent-range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`,
      'latin1',
    ),
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  let length = tail.length;
  for (const [i, r] of ranges.entries()) length += (heads[i] as Buffer).length + r.end - r.start + 1;
  return { boundary, heads, tail, length };
}

/** Writes a multipart body laid out by `multipartLayout`; resolves with the body bytes the socket took. */
async function sendParts(
  res: ServerResponse,
  fd: number,
  ranges: ByteRange[],
  layout: { heads: Buffer[]; tail: Buffer },
  pool: ChunkPool,
  done: () => void,
): Promise<number> {
  const closed = new Promise<void>((resolve) => res.once('close', resolve));
  let sent = 0;
  try {
    for (const [i, r] of ranges.entries()) {
      if (res.destroyed) break;
      const head = layout.heads[i] as Buffer;
      res.write(head);
      sent += head.length;
      sent += await sendFile(res, fd, r.start, r.end, pool, () => {}, { closed });
    }
    if (!res.destroyed) {
      res.end(layout.tail);
      sent += layout.tail.length;
    }
  } finally {
    done();
  }
  return sent;
}

function incomingContext(h: string | string[] | undefined) {
  return typeof h === 'string' ? parseTraceparent(h) : undefined;
}

/** An image token in a URL path: base64url, 1–64 characters (the jobs code makes 12). */
export const IMAGE_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The image name (and token) of a `GET|HEAD /images/{name}` or `/images/t/{token}/{name}` request URL,
 * undefined for any other URL. The token sits in the path, not the query, so the URL still ends in the
 * image's own name (some BMCs refuse query strings, or an ISO URL not ending in `.iso`).
 */
export function imageRequest(
  method: string | undefined,
  url: string | undefined,
): { name: string; token?: string } | undefined {
  if ((method !== 'GET' && method !== 'HEAD') || !url?.startsWith('/images/')) return undefined;
  const q = url.indexOf('?');
  let raw = url.slice(8, q < 0 ? undefined : q);
  let token: string | undefined;
  if (raw.startsWith('t/')) {
    const slash = raw.indexOf('/', 2);
    token = raw.slice(2, slash < 0 ? undefined : slash);
    if (slash < 0 || !IMAGE_TOKEN.test(token)) return undefined;
    raw = raw.slice(slash + 1);
  }
  if (raw === '' || raw.includes('/')) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    name = '\0'; // undecodable: answered 400 like any other bad name
  }
  return token ? { name, token } : { name };
}

/** The image name of a `GET|HEAD /images/{name}` (or tokened) request URL, undefined for any other URL. */
export function imageRequestName(method: string | undefined, url: string | undefined): string | undefined {
  return imageRequest(method, url)?.name;
}

/**
 * Serves image bytes on Node's own request and response objects. Used twice:
 * in front of Fastify on the images listener (see `imageServerFactory`), where
 * a BMC's thousands of 4 KiB range reads skip Fastify's per-request work
 * (request/reply objects, child logger, hooks), and behind a Fastify route on
 * the device listener (`imageServing`).
 */
export class ImageServer {
  readonly #o: ImageServingOptions;
  readonly #log: FastifyBaseLogger | undefined;
  readonly #pool: ChunkPool;
  readonly #fds = new FdCache();
  readonly #small = new SmallReads();
  readonly #metrics = instruments();

  constructor(opts: ImageServingOptions, log?: FastifyBaseLogger) {
    this.#o = opts;
    // The listener's byte counter starts at 0, so its first download already shows as a rate.
    this.#metrics.imageBytesSent.add(0, listenerAttrs[opts.listener]);
    this.#log = log;
    const chunk = opts.chunkBytes ?? 512 * 1024;
    this.#pool = new ChunkPool(chunk, Math.max(2, Math.floor((opts.poolBytes ?? 32 * 1024 * 1024) / chunk)));
  }

  /**
   * Answers `GET|HEAD /images/{name}`; never throws (a failure is a 500, or a cut
   * connection once headers are out). Returns a promise only when it had to wait: a
   * small range of a known image with its file already open is answered synchronously
   * (a BMC's 4 KiB reads; the promise chain was measurable there).
   */
  handle(req: IncomingMessage, res: ServerResponse, name: string, token?: string): Promise<void> | undefined {
    const traces = this.#o.traces;
    if (token === undefined || !traces) return this.#handle(req, res, name, undefined, undefined);
    let tp: string | undefined;
    try {
      tp = traces.forImageToken(token);
    } catch {
      tp = undefined;
    }
    if (tp !== undefined) return this.#handle(req, res, name, token, tp);
    // Not known here yet (the first read, or the run started on another replica a moment ago): wait
    // briefly for the lookup. A wrong token is remembered as such and costs no wait after the first.
    const clientAddress = req.socket.remoteAddress;
    return traces
      .forImageTokenWaiting(token)
      .catch(() => undefined)
      .then((found) => this.#handle(req, res, name, token, found, clientAddress));
  }

  #handle(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    token: string | undefined,
    traceparent: string | undefined,
    address?: string,
  ): Promise<void> | undefined {
    const t0 = performance.now();
    const range = req.headers.range;
    const clientAddress = address ?? req.socket.remoteAddress; // read now: gone once the socket closes
    if (!IMAGE_NAME.test(name)) {
      text(res, 400, 'bad image name');
      return undefined;
    }
    // A run's token names its trace; otherwise the client's own W3C context, if it sent one (the agent).
    const job = parseTraceparent(traceparent) ?? incomingContext(req.headers.traceparent);
    const span = tracer().startSpan(
      SpanName.imageServe,
      {
        attributes: {
          [Attr.image]: name,
          [Attr.imageListener]: this.#o.listener,
          [Attr.httpRequestMethod]: req.method ?? 'GET',
          ...(range !== undefined ? { [Attr.imageRange]: range } : {}),
          ...(token !== undefined ? { [Attr.imageToken]: job !== undefined } : {}),
        },
      },
      job ? trace.setSpanContext(context.active(), job) : context.active(),
    );
    const metrics = this.#metrics;
    const lattrs = listenerAttrs[this.#o.listener];
    metrics.imageActiveDownloads.add(1, lattrs);
    const finish = (bytes: number) => {
      metrics.imageActiveDownloads.add(-1, lattrs);
      if (bytes > 0) metrics.imageBytesSent.add(bytes, lattrs);
      span.setAttribute(Attr.httpStatusCode, res.statusCode);
      span.setAttribute(Attr.imageBytesSent, bytes);
      span.end();
      this.#o.fetchLog?.record({
        image: name,
        clientAddress,
        listener: this.#o.listener,
        status: res.statusCode,
        range,
        bytesSent: bytes,
        durationMs: performance.now() - t0,
      });
    };
    const fail = (err: unknown) => {
      recordSpanError(span, err);
      this.#log?.error({ err, image: name }, 'image request failed');
      if (!res.headersSent) text(res, 500, 'internal error');
      else res.destroy(err as Error);
      finish(0);
    };
    try {
      const head = req.method === 'HEAD';
      const image = this.#o.catalog.peek(name);
      const fd = image && !head ? this.#fds.tryAcquire(image.path) : undefined;
      const out =
        image && (head || fd !== undefined)
          ? this.#serve(req, res, image, fd)
          : this.#respond(req, res, name);
      if (typeof out === 'number') {
        finish(out);
        return undefined;
      }
      return out.then(finish, fail);
    } catch (err) {
      fail(err);
      return undefined;
    }
  }

  /** Closes idle file descriptors and writes queued fetch records. */
  async close(): Promise<void> {
    this.#fds.closeIdle();
    await this.#o.fetchLog?.flush();
  }

  /**
   * Opens the image's file, re-reading the row when a newer upload or a delete
   * unlinked it in between (uploads racing each other can do that a few times).
   */
  async #openImage(
    name: string,
  ): Promise<{ image: ServedImage; fd: number } | { missing: true } | undefined> {
    let image = await this.#o.catalog.get(name);
    for (let attempt = 1; image; attempt++) {
      try {
        return { image, fd: await this.#fds.acquire(image.path, image.size) };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'EIMAGESIZE') throw err;
        // The row names a file this replica cannot see whole (yet): a shared volume that lags.
        if (attempt >= 5) return { missing: true };
      }
      image = await this.#o.catalog.get(name, true);
    }
    return undefined;
  }

  /** Looks the image up and opens its file (waiting), then answers like `#serve`. */
  async #respond(req: IncomingMessage, res: ServerResponse, name: string): Promise<number> {
    const head = req.method === 'HEAD';
    const found = head
      ? await this.#o.catalog.get(name).then((image) => image && { image, fd: undefined })
      : await this.#openImage(name);
    if (!found) {
      text(res, 404, `no image ${name}`);
      return 0;
    }
    if ('missing' in found) {
      text(res, 503, `image ${name} is not (yet) complete on this replica's image volume`, {
        'retry-after': '5',
      });
      return 0;
    }
    return this.#serve(req, res, found.image, found.fd);
  }

  /**
   * Answers for a known image (`fd` holds a reference from the FdCache, released here;
   * undefined for HEAD). Returns the body bytes sent — at once when it could answer
   * synchronously, else a promise that settles when the response is done.
   */
  #serve(
    req: IncomingMessage,
    res: ServerResponse,
    image: ServedImage,
    fd: number | undefined,
  ): number | Promise<number> {
    const release = () => {
      if (fd !== undefined) this.#fds.release(image.path);
    };
    const h = req.headers;
    const headers: Record<string, string> = {
      'accept-ranges': 'bytes',
      etag: image.etag,
      'last-modified': image.lastModified,
    };
    const pre = evaluatePreconditions(h, image);
    const r =
      pre !== 'proceed'
        ? undefined
        : ifRangeAllows(h['if-range'] as string | undefined, image)
          ? parseRange(h.range, image.size)
          : ({ kind: 'full' } as const);
    if (!r || r.kind === 'unsatisfiable') {
      release();
      if (pre === 'not-modified') {
        res.writeHead(304, headers);
        res.end();
      } else if (pre === 'failed') text(res, 412, 'precondition failed', headers);
      else text(res, 416, 'range not satisfiable', { ...headers, 'content-range': `bytes */${image.size}` });
      return 0;
    }
    if (r.kind === 'multipart') {
      const layout = multipartLayout(r.ranges, image.contentType, image.size);
      headers['content-type'] = `multipart/byteranges; boundary=${layout.boundary}`;
      headers['content-length'] = String(layout.length);
      res.writeHead(206, headers);
      if (fd === undefined) {
        res.end();
        return 0;
      }
      return sendParts(res, fd, r.ranges, layout, this.#pool, release);
    }
    const start = r.kind === 'partial' ? r.start : 0;
    const end = r.kind === 'partial' ? r.end : image.size - 1;
    const length = end - start + 1;
    if (r.kind === 'partial') headers['content-range'] = `bytes ${start}-${end}/${image.size}`;
    headers['content-type'] = image.contentType;
    headers['content-length'] = String(length);
    const status = r.kind === 'partial' ? 206 : 200;
    if (fd === undefined || length === 0) {
      release();
      res.writeHead(status, headers);
      res.end();
      return 0;
    }
    if (length <= SMALL) {
      // One read, one write: the common BMC virtual-media request (a few KiB).
      let read: Buffer | Promise<Buffer>;
      try {
        read = this.#small.read(fd, length, start);
      } catch (err) {
        release();
        throw err;
      }
      const send = (buf: Buffer) => {
        res.writeHead(status, headers);
        res.end(buf);
        return length;
      };
      if (!(read instanceof Promise)) {
        release();
        return send(read);
      }
      return read.then(send).finally(release);
    }
    res.writeHead(status, headers);
    return sendFile(res, fd, start, end, this.#pool, release);
  }
}

/** A short plain-text response (errors). */
function text(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  const body = `${message}\n`;
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/**
 * A Fastify `serverFactory` for the plain-HTTP images listener: `GET|HEAD
 * /images/{name}` goes straight to `images`, everything else to Fastify.
 * Measured on 4 KiB random ranges: Fastify's routing, request/reply objects and
 * per-request child logger were about a fifth of the server's CPU per request.
 */
export function imageServerFactory(images: ImageServer) {
  return (fastify: (req: IncomingMessage, res: ServerResponse) => void): Server =>
    createHttpServer((req, res) => {
      const image = imageRequest(req.method, req.url);
      if (image === undefined) fastify(req, res);
      else void images.handle(req, res, image.name, image.token);
    });
}

/** Registers `GET` and `HEAD /images/:name` on an app (the device listener) as Fastify routes. */
export async function imageServing(app: FastifyInstance, opts: ImageServingOptions): Promise<void> {
  const images = new ImageServer(opts, app.log);
  const handle = async (
    req: FastifyRequest<{ Params: { name: string; token?: string } }>,
    reply: FastifyReply,
  ) => {
    const token = req.params.token;
    if (token !== undefined && !IMAGE_TOKEN.test(token)) {
      reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
      return;
    }
    reply.hijack();
    await images.handle(req.raw, reply.raw, req.params.name, token);
  };
  // Own HEAD route (exposeHeadRoute off): a HEAD must not open and read the file.
  // Request logging is off for these routes: a BMC mounting an ISO sends
  // thousands of reads, each already recorded in image_fetches.
  const route = { logLevel: 'warn', exposeHeadRoute: false } as const;
  app.get<{ Params: { name: string } }>('/images/:name', route, handle);
  app.head<{ Params: { name: string } }>('/images/:name', route, handle);
  app.get<{ Params: { name: string; token: string } }>('/images/t/:token/:name', route, handle);
  app.head<{ Params: { name: string; token: string } }>('/images/t/:token/:name', route, handle);
  app.addHook('onClose', () => images.close());
}
