/**
 * The Node floor for the images benchmark's random-range phase: a bare
 * `node:http` server that answers `Range: bytes=a-b` with one synchronous
 * `pread` and the same response headers the image service sends, nothing
 * else (no lookup, no preconditions, no recording). Forked by
 * images.bench.ts; it prints its port to the parent over IPC.
 */
import { fork } from 'node:child_process';
import { openSync, readSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts the floor server on `file`; resolves with its URL, pid and a stop function. */
export async function startRangeFloor(
  file: string,
  size: number,
): Promise<{ url: string; pid: number; stop(): void }> {
  const child = fork(new URL(import.meta.url), ['--serve', file, String(size)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve(m as number));
    child.once('exit', (code) => reject(new Error(`range floor exited ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}/images/bench.iso`,
    pid: child.pid as number,
    stop: () => child.kill(),
  };
}

if (process.argv[2] === '--serve' && process.send) {
  const fd = openSync(process.argv[3] as string, 'r');
  const size = Number(process.argv[4]);
  const server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) {
      res.writeHead(400).end();
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), size - 1);
    const buf = Buffer.allocUnsafe(end - start + 1);
    readSync(fd, buf, 0, buf.length, start);
    res.writeHead(206, {
      'accept-ranges': 'bytes',
      etag: '"floor"',
      'last-modified': 'Sun, 22 Nov 2026 00:00:00 GMT',
      'content-range': `bytes ${start}-${end}/${size}`,
      'content-type': 'application/x-iso9660-image',
      'content-length': String(buf.length),
    });
    res.end(buf);
  });
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as AddressInfo).port));
}
