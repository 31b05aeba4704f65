/**
 * Boot-image download (RFC 8572 §5.6): from the conveyed `download-uri`s in
 * order, hashing in the same pass as writing, resuming with `Range` after a
 * broken connection, and verifying the SHA-256 from `image-verification`
 * before the file is handed on. Memory stays flat: bytes stream from the
 * socket to the file with backpressure.
 *
 * TLS for image downloads is not authenticated and presents no client
 * certificate: integrity comes from the hash in verified conveyed information,
 * not from the channel (many image hosts are mirrors the device has no anchor
 * for), and the IDevID is not shown to hosts that are not bootstrap servers.
 *
 * Because the channel is not authenticated, the host may be hostile, so every
 * wait is bounded: the idle timeout (no byte for `idleTimeoutMs`), and an
 * overall rate floor — after a grace period the download must have averaged
 * `minRate` bytes/s, so an image announced as N bytes ends by
 * grace + N ÷ minRate, and a host dribbling a byte a second is cut whether or
 * not it announced a size. The file is created with O_EXCL|O_NOFOLLOW: a
 * symlink planted at the image path is never followed.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants, type WriteStream } from 'node:fs';
import { open as openFile, rm } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { once } from 'node:events';
import { AgentError } from './errors.js';
import { activeTraceparent } from '../otel/index.js';

/** Settings of {@link downloadImage}. */
export interface DownloadOptions {
  /** `download-uri` values, tried in order (http or https). */
  uris: readonly string[];
  /** Expected SHA-256 (32 bytes). */
  sha256: Uint8Array;
  /** Where the verified image ends up (written in place; deleted again on a bad hash). */
  dest: string;
  /** Time without any byte before a connection counts as broken, ms. */
  idleTimeoutMs: number;
  /** Resumes allowed per URI after broken connections (default 5). */
  maxResumes?: number;
  /**
   * Largest image accepted, in bytes (default 64 GiB). A server announcing more is refused
   * at once, and a body running past it is cut: the hash is only known at the end, so
   * without a bound a hostile server could fill the disk first.
   */
  maxBytes?: number;
  /**
   * Slowest average rate tolerated, bytes/s, after a grace period of `idleTimeoutMs`
   * (default {@link DEFAULT_MIN_DOWNLOAD_RATE}): the overall deadline is
   * grace + size ÷ minRate.
   */
  minRate?: number;
  /** Ends the download at once (the agent's SIGTERM). */
  signal?: AbortSignal;
  /** Told about each finished attempt (for logs). */
  onEvent?: (message: string) => void;
}

/** Default {@link DownloadOptions.minRate}: 64 KiB/s (a 4 GiB image may take 18 h, no more). */
export const DEFAULT_MIN_DOWNLOAD_RATE = 64 * 1024;

/** A verified download. */
export interface Downloaded {
  uri: string;
  path: string;
  bytes: number;
  /** Connections broken mid-body and resumed. */
  resumes: number;
  durationMs: number;
}

function open(
  uri: URL,
  offset: number,
  idleTimeoutMs: number,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const headers: Record<string, string> = { 'user-agent': 'sztp-client' };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  // The image service records the read under the agent's download span (W3C trace context).
  const traceparent = activeTraceparent();
  if (traceparent) headers.traceparent = traceparent;
  return new Promise((resolve, reject) => {
    const req =
      uri.protocol === 'https:'
        ? httpsGet(uri, { headers, rejectUnauthorized: false, timeout: idleTimeoutMs, signal })
        : httpGet(uri, { headers, timeout: idleTimeoutMs, signal });
    req.once('timeout', () => req.destroy(new Error(`no data for ${idleTimeoutMs} ms`)));
    req.once('error', reject);
    req.once('response', resolve);
  });
}

/** The image is larger than {@link DownloadOptions.maxBytes}: not worth resuming or retrying. */
class ImageTooLarge extends Error {}

/**
 * Default {@link DownloadOptions.maxBytes}: 16 GiB — above any DPU OS image or installer
 * ISO seen (BlueField BFBs are 1–2 GiB), and well below a disk a hostile host could fill.
 */
export const DEFAULT_MAX_IMAGE_BYTES = 16 * 1024 ** 3;

/** Opens the image file afresh: an existing file (or symlink) at `dest` is removed, never written through. */
async function createImageFile(dest: string): Promise<WriteStream> {
  await rm(dest, { force: true });
  const fh = await openFile(
    dest,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  return fh.createWriteStream({ highWaterMark: 1 << 20 }) as unknown as WriteStream;
}

async function closeStream(out: WriteStream): Promise<void> {
  if (out.closed) return;
  out.end();
  await once(out, 'close');
}

/** Downloads from one URI with resumes; returns the bytes written and whether the hash matched. */
async function fromUri(
  uri: URL,
  o: DownloadOptions,
): Promise<{ bytes: number; resumes: number; match: boolean; digest: string }> {
  let out = await createImageFile(o.dest);
  let hash: Hash = createHash('sha256');
  let offset = 0;
  let total: number | undefined;
  let resumes = 0;
  // The rate floor: after the grace period, bytes received (resumes included) must keep
  // up with minRate, checked every second and on every chunk.
  const started = Date.now();
  let received = 0;
  const minRate = o.minRate ?? DEFAULT_MIN_DOWNLOAD_RATE;
  const grace = o.idleTimeoutMs;
  const slow = new AbortController();
  const tooSlow = () => {
    const elapsed = Date.now() - started;
    if (elapsed > grace && received < (minRate * (elapsed - grace)) / 1000)
      slow.abort(
        new Error(
          `slower than the minimum rate of ${minRate} bytes/s (--min-download-rate): ${received} bytes in ${Math.round(elapsed / 1000)} s`,
        ),
      );
  };
  const ticker = setInterval(tooSlow, 1000);
  const signal = o.signal ? AbortSignal.any([o.signal, slow.signal]) : slow.signal;
  const stopped = () => (signal.reason instanceof Error ? signal.reason : new Error('stopped'));
  try {
    for (;;) {
      let res: IncomingMessage;
      try {
        res = await open(uri, offset, o.idleTimeoutMs, signal);
      } catch (err) {
        if (signal.aborted) throw stopped();
        if (offset > 0 && resumes < (o.maxResumes ?? 5)) {
          resumes++;
          continue;
        }
        throw err;
      }
      const status = res.statusCode ?? 0;
      if (offset > 0 && status === 206) {
        const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
        if (!m || Number(m[1]) !== offset) {
          res.destroy();
          throw new Error(
            `Content-Range ${String(res.headers['content-range'])} does not resume at ${offset}`,
          );
        }
        if (m[2] !== '*') total = Number(m[2]);
      } else if (status === 200) {
        if (offset > 0) {
          // The server ignored Range: start over, with a fresh hash.
          o.onEvent?.(`${uri.href}: server ignored Range, restarting from 0`);
          await closeStream(out);
          out = await createImageFile(o.dest);
          hash = createHash('sha256');
          offset = 0;
        }
        const len = res.headers['content-length'];
        total = len !== undefined ? Number(len) : undefined;
      } else {
        res.resume();
        throw new Error(`HTTP ${status}`);
      }
      // The announced size, when given, is the limit for this download (never above maxBytes).
      const max = Math.min(o.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES, total ?? Number.POSITIVE_INFINITY);
      if (total !== undefined && total > (o.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES)) {
        res.destroy();
        throw new ImageTooLarge(
          `image is ${total} bytes, over the ${o.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES}-byte limit (--max-image-size)`,
        );
      }
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          if (offset + chunk.length > max) {
            res.destroy();
            throw new ImageTooLarge(
              total !== undefined && max === total
                ? `image grew past its announced ${total} bytes; download cut`
                : `image grew past the ${max}-byte limit (--max-image-size); download cut`,
            );
          }
          hash.update(chunk);
          offset += chunk.length;
          received += chunk.length;
          if (!out.write(chunk)) await once(out, 'drain');
        }
        if (signal.aborted) throw stopped();
        if (total !== undefined && offset < total)
          throw new Error(`connection closed at ${offset} of ${total} bytes`);
        if (res.readableAborted || (res as IncomingMessage & { aborted?: boolean }).aborted)
          throw new Error('connection aborted');
      } catch (err) {
        if (signal.aborted) throw stopped();
        if (!(err instanceof ImageTooLarge) && resumes < (o.maxResumes ?? 5)) {
          resumes++;
          o.onEvent?.(`${uri.href}: ${(err as Error).message}; resuming at byte ${offset}`);
          continue;
        }
        throw err;
      }
      break;
    }
  } finally {
    clearInterval(ticker);
    await closeStream(out);
  }
  const digest = hash.digest();
  return {
    bytes: offset,
    resumes,
    match: Buffer.from(o.sha256).equals(digest),
    digest: digest.toString('hex'),
  };
}

/** `download-uri` entries tried at most (a list of thousands is not a mirror list). */
const MAX_DOWNLOAD_URIS = 16;

/**
 * Downloads and verifies the boot image.
 *
 * @throws AgentError `SZTP_CLIENT_ERR_IMAGE_HASH` when a download completed with the wrong
 *   hash and no other URI gave the right one; `SZTP_CLIENT_ERR_IMAGE_DOWNLOAD` otherwise
 */
export async function downloadImage(o: DownloadOptions): Promise<Downloaded> {
  const started = Date.now();
  const failures: string[] = [];
  let wrongHash = false;
  for (const raw of o.uris.slice(0, MAX_DOWNLOAD_URIS)) {
    let uri: URL;
    try {
      uri = new URL(raw);
      if (uri.protocol !== 'https:' && uri.protocol !== 'http:') throw new Error('not http(s)');
    } catch {
      failures.push(`${raw}: unsupported URI`);
      continue;
    }
    try {
      const r = await fromUri(uri, o);
      if (r.match) {
        return {
          uri: raw,
          path: o.dest,
          bytes: r.bytes,
          resumes: r.resumes,
          durationMs: Date.now() - started,
        };
      }
      wrongHash = true;
      failures.push(`${raw}: sha-256 ${r.digest} does not match image-verification`);
    } catch (err) {
      failures.push(`${raw}: ${(err as Error).message}`);
    }
    // Never leave unverified bytes where an installer might pick them up.
    await rm(o.dest, { force: true });
    if (o.signal?.aborted) break;
    o.onEvent?.(failures[failures.length - 1] as string);
  }
  throw new AgentError(
    wrongHash ? 'SZTP_CLIENT_ERR_IMAGE_HASH' : 'SZTP_CLIENT_ERR_IMAGE_DOWNLOAD',
    failures.join('; ') || 'no download-uri',
  );
}
