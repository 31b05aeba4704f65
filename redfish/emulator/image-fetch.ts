/**
 * Fetches an image the way BMCs do before and while booting it: `HEAD` for
 * size, a `Range` read (media streaming issues partial GETs — aws/eks-anywhere#10484),
 * then the whole file. The emulator uses this so that an image service that
 * breaks real BMCs breaks the emulator too.
 */
import { Agent, request } from 'undici';

/** What the fetch saw. */
export interface ImageFetchResult {
  readonly headStatus: number;
  readonly rangeStatus: number;
  readonly bytes: number;
  readonly contentLength: number | undefined;
}

/** TLS/timeouts for image fetches. */
export interface ImageFetchOptions {
  /** Accept any TLS certificate from the image server (a BMC with verification off). */
  readonly insecure?: boolean;
  readonly ca?: string | Buffer;
  readonly timeoutMs?: number;
}

/** HEAD, Range 0-1023, then full GET of `url`; throws with a BMC-like message on any failure. */
export async function fetchImageLikeABmc(
  url: string,
  opts: ImageFetchOptions = {},
): Promise<ImageFetchResult> {
  const scheme = new URL(url).protocol;
  if (scheme !== 'http:' && scheme !== 'https:') throw new Error(`unsupported image URL scheme ${scheme}`);
  const timeout = opts.timeoutMs ?? 60_000;
  const dispatcher = new Agent({
    connect: { rejectUnauthorized: opts.insecure !== true, ...(opts.ca ? { ca: opts.ca } : {}), timeout },
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });
  try {
    const head = await request(url, { method: 'HEAD', dispatcher });
    await head.body.dump();
    if (head.statusCode >= 400) throw new Error(`HEAD ${url} answered ${head.statusCode}`);
    const len = Number(head.headers['content-length']);
    const range = await request(url, { method: 'GET', headers: { Range: 'bytes=0-1023' }, dispatcher });
    await range.body.dump();
    if (range.statusCode >= 400) throw new Error(`GET ${url} (Range) answered ${range.statusCode}`);
    const full = await request(url, { method: 'GET', dispatcher });
    let bytes = 0;
    for await (const chunk of full.body) bytes += (chunk as Buffer).length;
    if (full.statusCode >= 400) throw new Error(`GET ${url} answered ${full.statusCode}`);
    return {
      headStatus: head.statusCode,
      rangeStatus: range.statusCode,
      bytes,
      contentLength: Number.isFinite(len) ? len : undefined,
    };
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}
