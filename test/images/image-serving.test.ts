/**
 * `GET|HEAD /images/{name}` over real HTTP against RFC 9110, with curl (`-r`)
 * and undici, on a 2 GiB + 1000 byte sparse image with data written past
 * 2^31 (offsets above the 32-bit range), and the fetch log.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { closeSync, openSync, readFileSync, readSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend } from '../helpers/db.js';
import { haveTool } from '../helpers/tools.js';
import { type ImageHarness, startImageHarness } from './harness.js';

const run = promisify(execFile);
const SIZE = 2 ** 31 + 1000;
/** Where recognisable bytes are written into the sparse file. */
const MARKS = [0, 4095, 2 ** 31 - 3, 2 ** 31 + 500, SIZE - 16];
let h: ImageHarness;
let file: string;
let sha256: string;
let etag: string;
let lastModified: string;

beforeAll(async () => {
  h = await startImageHarness();
  file = join(h.dir, 'big.iso@test');
  const fd = openSync(file, 'w');
  truncateSync(file, SIZE);
  for (const at of MARKS) writeSync(fd, Buffer.from(`M${at}`.padEnd(16, '.')), 0, 16, at);
  closeSync(fd);
  // Asynchronously: the API in this process counts a blocked event loop as overload (503).
  sha256 = (await run('sha256sum', [file])).stdout.split(' ')[0] as string;
  etag = `"${sha256}"`;
  await h.t.db
    .insertInto('images')
    .values({
      name: 'big.iso',
      size: SIZE,
      sha256,
      sha384: '0'.repeat(96),
      sha512: '0'.repeat(128),
      content_type: 'application/x-iso9660-image',
      path: 'big.iso@test',
      created_at: new Date('2026-11-20T10:00:00.250Z'),
    })
    .execute();
  lastModified = new Date('2026-11-20T10:00:00Z').toUTCString();
});
afterAll(async () => {
  await h?.close();
});

/** Splits a multipart/byteranges body into parts (header lines lower-cased, body bytes). */
function parseMultipart(body: Buffer, boundary: string) {
  const parts: Array<{ headers: Record<string, string>; body: Buffer }> = [];
  const delimiter = Buffer.from(`--${boundary}`);
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const after = at + delimiter.length;
    if (body.subarray(after, after + 2).toString() === '--') break; // closing delimiter
    const headEnd = body.indexOf('\r\n\r\n', after);
    const headers = Object.fromEntries(
      body
        .subarray(after + 2, headEnd)
        .toString('latin1')
        .split('\r\n')
        .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
    );
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headEnd + 4);
    parts.push({ headers, body: body.subarray(headEnd + 4, next) });
    at = next + 2;
  }
  return parts;
}

function bytesAt(start: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(length);
  readSync(fd, b, 0, length, start);
  closeSync(fd);
  return b;
}

const url = () => `${h.imagesUrl}/images/big.iso`;

async function get(headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url(), { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers as Record<string, string>, body };
}

describe.skipIf(!haveTool('curl'))(`image serving with curl -r (${backend})`, () => {
  /** Runs curl (asynchronously: the server shares this event loop) and returns status, headers, body. */
  async function curl(args: string[]) {
    const headerFile = join(h.dir, '.curl-headers');
    const r = await run('curl', ['-sS', '-D', headerFile, '-o', '-', ...args, url()], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    const head = readFileSync(headerFile, 'latin1');
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]);
    const headers: Record<string, string> = Object.fromEntries(
      head
        .split('\r\n')
        .slice(1)
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
    );
    return { status, headers, body: r.stdout as Buffer };
  }

  it.each([
    ['0-15', 0, 16],
    ['2147483645-2147483660', 2 ** 31 - 3, 16], // across 2^31
    [`${2 ** 31 + 500}-${2 ** 31 + 515}`, 2 ** 31 + 500, 16],
    [`${SIZE - 16}-`, SIZE - 16, 16], // open-ended
    ['-16', SIZE - 16, 16], // suffix
    ['4000-70000', 4000, 66001], // streamed (> 64 KiB)
  ])('-r %s', async (range, start, length) => {
    const r = await curl(['-r', range]);
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes ${start}-${start + length - 1}/${SIZE}`);
    expect(r.headers['content-length']).toBe(String(length));
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.headers.etag).toBe(etag);
    expect(r.body.equals(bytesAt(start, length))).toBe(true);
  });

  it('answers several ranges as multipart/byteranges (curl -r a-b,c-d), above 2^31 too', async () => {
    const ranges: Array<[number, number]> = [
      [2 ** 31 + 500, 2 ** 31 + 515],
      [0, 15],
      [100_000, 100_000 + 70_000], // a part larger than one small read
    ];
    const r = await curl(['-r', ranges.map(([a, b]) => `${a}-${b}`).join(',')]);
    expect(r.status).toBe(206);
    const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(r.headers['content-type'] ?? '')?.[1];
    expect(boundary, r.headers['content-type']).toBeDefined();
    expect(r.headers['content-length']).toBe(String(r.body.length));
    const parts = parseMultipart(r.body, boundary as string);
    expect(parts.map((p) => p.headers['content-range'])).toEqual(
      ranges.map(([a, b]) => `bytes ${a}-${b}/${SIZE}`),
    );
    for (const [i, [a, b]] of ranges.entries()) {
      expect(parts[i]?.headers['content-type']).toBe('application/x-iso9660-image');
      expect(parts[i]?.body.equals(bytesAt(a, b - a + 1)), `part ${i}`).toBe(true);
    }
  });

  it('coalesces overlapping ranges, drops unsatisfiable ones, and HEAD tells the multipart length', async () => {
    const merged = await curl(['-r', '0-9,5-19']);
    expect(merged.status).toBe(206);
    expect(merged.headers['content-range']).toBe(`bytes 0-19/${SIZE}`);
    expect(merged.body.equals(bytesAt(0, 20))).toBe(true);
    const one = await curl(['-r', `${SIZE}-,16-31`]);
    expect(one.headers['content-range']).toBe(`bytes 16-31/${SIZE}`);
    const get2 = await get({ range: 'bytes=0-0,-1' });
    const head = await get({ range: 'bytes=0-0,-1' }, 'HEAD');
    expect(head.status).toBe(206);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(String(get2.body.length));
    const none = await curl(['-r', `${SIZE}-,${SIZE + 5}-`]);
    expect(none.status).toBe(416);
  });

  it('416 with Content-Range: bytes */size past the end', async () => {
    const r = await curl(['-r', `${SIZE}-`]);
    expect(r.status).toBe(416);
    expect(r.headers['content-range']).toBe(`bytes */${SIZE}`);
  });

  it('HEAD tells size, type, validators without a body', async () => {
    const r = await curl(['-I']);
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(SIZE));
    expect(r.headers['content-type']).toBe('application/x-iso9660-image');
    expect(r.headers['last-modified']).toBe(lastModified);
    expect(r.headers.etag).toBe(etag);
  });
});

describe(`image serving with undici (${backend})`, () => {
  it('If-Range: a strong ETag match or the exact date gives 206; else, or a weak tag, the whole image', async () => {
    const range = { range: `bytes=${2 ** 31 + 500}-${2 ** 31 + 515}` };
    const hit = await get({ ...range, 'if-range': etag });
    expect(hit.status).toBe(206);
    expect(hit.body.toString()).toBe(`M${2 ** 31 + 500}`.padEnd(16, '.'));
    expect((await get({ ...range, 'if-range': lastModified })).status).toBe(206);
    for (const ifRange of ['"other"', `W/${etag}`, new Date(Date.parse(lastModified) + 1000).toUTCString()]) {
      const r = await get({ ...range, 'if-range': ifRange }, 'HEAD');
      expect(r.status, ifRange).toBe(200);
      expect(r.headers['content-length']).toBe(String(SIZE));
    }
  });

  it('304 on If-None-Match / If-Modified-Since, 412 on If-Match / If-Unmodified-Since', async () => {
    const conditionals: Record<string, string>[] = [
      { 'if-none-match': etag },
      { 'if-none-match': `"x", W/${etag}` },
      { 'if-modified-since': lastModified },
      { 'if-none-match': '*' },
    ];
    for (const hdr of conditionals) {
      const r = await get(hdr);
      expect(r.status, JSON.stringify(hdr)).toBe(304);
      expect(r.body.length).toBe(0);
      expect(r.headers.etag).toBe(etag);
    }
    expect((await get({ 'if-none-match': '"x"', 'if-modified-since': lastModified }, 'HEAD')).status).toBe(
      200,
    );
    expect((await get({ 'if-match': '"x"' })).status).toBe(412);
    expect((await get({ 'if-unmodified-since': 'Thu, 01 Jan 2026 00:00:00 GMT' })).status).toBe(412);
    expect((await get({ 'if-match': etag, range: 'bytes=0-3' })).status).toBe(206);
  });

  it('ignores malformed, non-byte and too many ranges (200, whole image)', async () => {
    const many = `bytes=${Array.from({ length: 17 }, (_, i) => `${i * 100}-${i * 100 + 9}`).join(',')}`;
    for (const range of ['bytes=0-1,5-3', 'bytes=5-3', 'bytes=x-', 'lines=1-2', many]) {
      const r = await get({ range }, 'HEAD');
      expect(r.status, range).toBe(200);
      expect(r.headers['content-length']).toBe(String(SIZE));
    }
  });

  it('streams a whole multi-GB image with the right hash', async () => {
    const { createHash } = await import('node:crypto');
    const res = await request(url());
    expect(res.statusCode).toBe(200);
    const hash = createHash('sha256');
    let n = 0;
    for await (const c of res.body) {
      hash.update(c as Buffer);
      n += (c as Buffer).length;
    }
    expect(n).toBe(SIZE);
    expect(hash.digest('hex')).toBe(sha256);
  });

  it('images listener routing: query ignored, name decoded, other methods and paths to Fastify', async () => {
    // A query string is ignored; the name is percent-decoded.
    const q = await request(`${url()}?job=42`, { headers: { range: 'bytes=0-9' } });
    expect(q.statusCode).toBe(206);
    expect((await q.body.arrayBuffer()).byteLength).toBe(10);
    const enc = await request(`${h.imagesUrl}/images/big%2Eiso`, { headers: { range: 'bytes=0-0' } });
    expect(enc.statusCode).toBe(206);
    await enc.body.dump();
    // Other methods, nested paths and other routes reach Fastify.
    for (const [method, path, status] of [
      ['POST', '/images/big.iso', 404],
      ['DELETE', '/images/big.iso', 404],
      ['GET', '/images/', 404],
      ['GET', '/images/big.iso/x', 404],
      ['GET', '/healthz', 200],
    ] as const) {
      const r = await request(`${h.imagesUrl}${path}`, { method });
      await r.body.dump();
      expect(r.statusCode, `${method} ${path}`).toBe(status);
    }
    // HEAD once the image is known and its file open (the synchronous path) still sends no body.
    const head = await get({ range: 'bytes=0-4095' }, 'HEAD');
    expect(head.status).toBe(206);
    expect(head.headers['content-length']).toBe('4096');
    expect(head.body.length).toBe(0);
  });

  it('serves application/octet-stream for non-ISO names, 404 for unknown ones', async () => {
    await h.t.db
      .insertInto('images')
      .values({
        name: 'fw.bfb',
        size: SIZE,
        sha256,
        sha384: '0'.repeat(96),
        sha512: '0'.repeat(128),
        content_type: 'application/octet-stream',
        path: 'big.iso@test',
      })
      .execute();
    const r = await request(`${h.imagesUrl}/images/fw.bfb`, { method: 'HEAD' });
    expect(r.headers['content-type']).toBe('application/octet-stream');
    await r.body.dump();
    const missing = await request(`${h.imagesUrl}/images/nope.iso`);
    expect(missing.statusCode).toBe(404);
    await missing.body.dump();
  });

  it('records every fetch: image, client, listener, status, range, bytes, duration', async () => {
    await h.fetchLog.flush();
    await h.t.db.deleteFrom('image_fetches').execute();
    await get({ range: 'bytes=10-19' });
    await get({ 'if-none-match': etag });
    await request(`${h.imagesUrl}/images/nope.iso`).then((r) => r.body.dump());
    // A client that goes away mid-body is recorded with what it got.
    const ac = new AbortController();
    const partial = await request(url(), { signal: ac.signal });
    for await (const _ of partial.body) {
      ac.abort();
      break;
    }
    await h.fetchLog.flush();
    let rows: Awaited<ReturnType<typeof fetches>> = [];
    async function fetches() {
      return h.t.db.selectFrom('image_fetches').selectAll().orderBy('id').execute();
    }
    for (let i = 0; i < 100 && rows.length < 4; i++) {
      await new Promise((r) => setTimeout(r, 20));
      await h.fetchLog.flush();
      rows = await fetches();
    }
    const view = rows.map((r) => ({
      image: r.image,
      status: r.status,
      range: r.range,
      bytes: Number(r.bytes_sent),
      listener: r.listener,
    }));
    expect(view.slice(0, 3), JSON.stringify(view)).toEqual([
      { image: 'big.iso', status: 206, range: 'bytes=10-19', bytes: 10, listener: 'http' },
      { image: 'big.iso', status: 304, range: null, bytes: 0, listener: 'http' },
      { image: 'nope.iso', status: 404, range: null, bytes: 0, listener: 'http' },
    ]);
    expect(view[3]).toMatchObject({ image: 'big.iso', status: 200 });
    expect(view[3]!.bytes).toBeLessThan(SIZE);
    for (const r of rows) {
      expect(r.client_address).toBe('127.0.0.1');
      expect(r.duration_ms).toBeGreaterThanOrEqual(0);
    }
    // …and the operator API shows them.
    const res = await request(`${h.apiUrl}/api/v1/images/big.iso/fetches?limit=2`, {
      headers: { authorization: `Bearer ${h.tokens.viewer}` },
    });
    const body = (await res.body.json()) as { items: Array<{ status: number }> };
    expect(body.items.map((i) => i.status)).toEqual([200, 304]);
  });

  it("folds one client's range reads within a flush into one row listing every range", async () => {
    await h.fetchLog.flush();
    await h.t.db.deleteFrom('image_fetches').execute();
    const ranges = ['bytes=0-4095', 'bytes=8192-12287', 'bytes=-10', 'bytes=0-4095'];
    // Concurrently, so that they land in one flush window (the harness flushes every 20 ms).
    await Promise.all(ranges.map((range) => get({ range }).then((r) => expect(r.status).toBe(206))));
    await get({ range: 'bytes=0-0,5-5' }); // a multi-range request (multipart): its own row
    await h.fetchLog.flush();
    const rows = await h.t.db.selectFrom('image_fetches').selectAll().orderBy('id').execute();
    const multipart = rows.filter((r) => r.range === 'bytes=0-0,5-5');
    expect(multipart).toHaveLength(1);
    expect(multipart[0]).toMatchObject({ status: 206, requests: 1 });
    const reads = rows.filter((r) => r.status === 206 && r !== multipart[0]);
    expect(reads.reduce((n, r) => n + r.requests, 0)).toBe(4);
    const listed = reads.flatMap((r) => (r.range as string).slice(6).split(','));
    expect(listed.sort()).toEqual(['-10', '0-4095', '0-4095', '8192-12287']);
    expect(reads.reduce((n, r) => n + Number(r.bytes_sent), 0)).toBe(4096 * 3 + 10);
    expect(reads.length).toBeLessThan(4); // at least two of them shared a row
    const res = await request(`${h.apiUrl}/api/v1/images/big.iso/fetches`, {
      headers: { authorization: `Bearer ${h.tokens.viewer}` },
    });
    const body = (await res.body.json()) as { items: Array<{ status: number; requests: number }> };
    expect(body.items.filter((i) => i.status === 206).reduce((n, i) => n + i.requests, 0)).toBe(5);
  });
});
