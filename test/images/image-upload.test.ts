/**
 * Image uploads over real HTTP (undici, raw sockets) on the backend this run
 * targets: hashes against sha256sum/sha384sum/sha512sum, expected-hash
 * mismatch, interrupted uploads, concurrent uploads of one name, bad names,
 * disk full (a real 4 MiB tmpfs), deletes of images in use. After every
 * failure: no row, no file, no temporary file.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend } from '../helpers/db.js';
import { haveTool, inCI, isRoot } from '../helpers/tools.js';
import { type ImageHarness, startImageHarness } from './harness.js';

let h: ImageHarness;
const work = join(tmpdir(), `dpu-ztp-upload-${process.pid}`);
beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  h = await startImageHarness();
});
afterAll(async () => {
  await h?.close();
  // Here, not in the tmpfs block: a skipped block runs no hooks.
  if (fullDisk) spawnSync('umount', [fullDisk]);
  rmSync(work, { recursive: true, force: true });
});

function put(
  name: string,
  body: Buffer | Readable,
  headers: Record<string, string> = {},
  as: 'operator' | 'viewer' | 'admin' = 'operator',
) {
  return request(`${h.apiUrl}/api/v1/images/${name}`, {
    method: 'PUT',
    body,
    headers: {
      authorization: `Bearer ${h.tokens[as]}`,
      'content-type': 'application/octet-stream',
      ...headers,
    },
  });
}

async function json(res: Awaited<ReturnType<typeof request>>) {
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
}

/** Stored files and temporary files of the store, and its rows. */
async function state() {
  return {
    files: readdirSync(h.dir).filter((f) => f !== '.tmp'),
    tmp: readdirSync(join(h.dir, '.tmp')),
    rows: (
      await h.t.db.selectFrom('images').select(['name', 'sha256', 'path']).orderBy('name').execute()
    ).map((r) => `${r.name}:${r.sha256.slice(0, 8)}`),
  };
}

async function until(cond: () => Promise<boolean> | boolean, ms = 5000) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function download(name: string): Promise<{ status: number; etag: string; body: Buffer }> {
  const res = await request(`${h.imagesUrl}/images/${name}`);
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, etag: String(res.headers.etag ?? ''), body };
}

const sum = (tool: string, file: string) => execFileSync(tool, [file], { encoding: 'utf8' }).split(' ')[0];

describe.skipIf(!haveTool('sha256sum'))(`image upload (${backend})`, () => {
  it('stores a streamed upload with the hashes sha256sum/sha384sum/sha512sum compute, and serves the same bytes', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 13);
    const file = join(work, 'a.bin');
    writeFileSync(file, data);
    // A chunked body (no Content-Length), in uneven pieces.
    const pieces = [data.subarray(0, 1), data.subarray(1, 70_001), data.subarray(70_001)];
    const res = await json(
      await put('os-a.iso?osName=debian&osVersion=12', Readable.from(pieces), {
        'content-type': 'application/x-iso9660-image',
      }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({
      name: 'os-a.iso',
      size: data.length,
      sha256: sum('sha256sum', file),
      sha384: sum('sha384sum', file),
      sha512: sum('sha512sum', file),
      contentType: 'application/x-iso9660-image',
      osName: 'debian',
      osVersion: '12',
    });
    expect(res.body.urls.http).toBe(`${h.imagesUrl}/images/os-a.iso`);
    expect(res.body.urls.https).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/images\/os-a\.iso$/);
    const got = await download('os-a.iso');
    expect(got.status).toBe(200);
    expect(got.etag).toBe(`"${res.body.sha256}"`);
    expect(got.body.equals(data)).toBe(true);

    const list = await json(
      await request(`${h.apiUrl}/api/v1/images`, { headers: { authorization: `Bearer ${h.tokens.viewer}` } }),
    );
    expect(list.body.items.map((i: { name: string }) => i.name)).toContain('os-a.iso');
    const one = await json(
      await request(`${h.apiUrl}/api/v1/images/os-a.iso`, {
        headers: { authorization: `Bearer ${h.tokens.viewer}` },
      }),
    );
    expect(one.body.sha512).toBe(res.body.sha512);
    expect((await state()).tmp).toEqual([]);
  });

  it('accepts matching X-Expected-Sha256/384/512 and refuses a mismatch leaving nothing behind', async () => {
    const data = randomBytes(300_000);
    const file = join(work, 'b.bin');
    writeFileSync(file, data);
    const ok = await json(
      await put('b.bin', data, {
        'x-expected-sha256': sum('sha256sum', file)!.toUpperCase(),
        'x-expected-sha384': sum('sha384sum', file)!,
        'x-expected-sha512': sum('sha512sum', file)!,
      }),
    );
    expect(ok.status).toBe(201);
    expect(ok.body.contentType).toBe('application/octet-stream');

    const before = await state();
    const bad = await json(await put('c.bin', data, { 'x-expected-sha256': 'ab'.repeat(32) }));
    expect(bad.status).toBe(422);
    expect(bad.body.code).toBe('API_ERR_HASH_MISMATCH');
    expect(bad.body.actual).toBe(sum('sha256sum', file));
    // A mismatching replacement leaves the existing image untouched.
    const bad2 = await json(
      await put('b.bin', randomBytes(1000), { 'x-expected-sha512': sum('sha512sum', file)! }),
    );
    expect(bad2.status).toBe(422);
    const malformed = await json(await put('c.bin', data, { 'x-expected-sha384': 'xyz' }));
    expect(malformed.status).toBe(400);
    expect(await state()).toEqual(before);
    expect((await download('b.bin')).body.equals(data)).toBe(true);
  });

  it('leaves nothing behind when the client disconnects mid-upload (new name and replacement)', async () => {
    const keep = randomBytes(100_000);
    expect((await put('keep.bin', keep)).statusCode).toBe(201);
    const before = await state();
    for (const name of ['gone.bin', 'keep.bin']) {
      const sock = connect(Number(new URL(h.apiUrl).port), '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write(
        `PUT /api/v1/images/${name} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${h.tokens.operator}\r\n` +
          `content-type: application/octet-stream\r\ncontent-length: ${64 * 1024 * 1024}\r\n\r\n`,
      );
      sock.write(randomBytes(3 * 1024 * 1024));
      // Wait until the server has started writing the temporary file, then cut the connection.
      await until(() => readdirSync(join(h.dir, '.tmp')).length > 0);
      sock.destroy();
      await until(() => readdirSync(join(h.dir, '.tmp')).length === 0);
    }
    expect(await state()).toEqual(before);
    expect((await download('keep.bin')).body.equals(keep)).toBe(true);
    expect((await download('gone.bin')).status).toBe(404);
  });

  it('never exposes a partial image while uploads of one name race; the last complete one wins', async () => {
    const bodies = Array.from({ length: 6 }, (_, i) => randomBytes(1024 * 1024 + i));
    let stop = false;
    let reads = 0;
    // Readers check every body they get against its own ETag (the SHA-256).
    const reader = (async () => {
      const { createHash } = await import('node:crypto');
      while (!stop) {
        const got = await download('race.bin');
        if (got.status === 200) {
          reads++;
          expect(`"${createHash('sha256').update(got.body).digest('hex')}"`).toBe(got.etag);
          expect(bodies.some((b) => b.equals(got.body))).toBe(true);
        } else expect(got.status).toBe(404);
      }
    })();
    const results = await Promise.all(
      bodies.map((b) =>
        // Streamed slowly in pieces so the uploads overlap.
        put(
          'race.bin',
          Readable.from(
            (async function* () {
              for (let o = 0; o < b.length; o += 128 * 1024) {
                yield b.subarray(o, o + 128 * 1024);
                await new Promise((r) => setTimeout(r, 2));
              }
            })(),
          ),
        ).then(json),
      ),
    );
    stop = true;
    await reader;
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    const row = await h.t.db
      .selectFrom('images')
      .selectAll()
      .where('name', '=', 'race.bin')
      .executeTakeFirstOrThrow();
    const final = await download('race.bin');
    expect(final.etag).toBe(`"${row.sha256}"`);
    expect(bodies.some((b) => b.equals(final.body))).toBe(true);
    // Exactly one file for the name: every replaced one was removed.
    expect(readdirSync(h.dir).filter((f) => f.startsWith('race.bin@'))).toEqual([row.path]);
    expect(readdirSync(join(h.dir, '.tmp'))).toEqual([]);
    expect(reads).toBeGreaterThan(0);
  });

  it('rejects path traversal, NUL, absolute and over-long names on both listeners', async () => {
    const before = await state();
    const names = [
      '..%2F..%2Fetc%2Fpasswd',
      '%2e%2e%2f%2e%2e%2fescape',
      '%2e%2e',
      '..',
      '.hidden',
      '%2Fetc%2Fpasswd',
      'a%00b',
      'a%2Fb',
      'a\\b',
      'x'.repeat(256),
      'é.iso',
      'y'.repeat(129),
    ];
    for (const n of names) {
      const res = await put(n, Buffer.from('data'));
      await res.body.dump();
      // 414 (URI too long) for names past the router's 256-byte parameter limit.
      expect([400, 404, 414], n).toContain(res.statusCode);
      const get = await request(`${h.imagesUrl}/images/${n}`);
      await get.body.dump();
      expect([400, 404, 414], n).toContain(get.statusCode);
    }
    // Raw request targets that an HTTP client would normalise away.
    for (const target of [
      '/images/../../etc/passwd',
      '/images/%2e%2e/%2e%2e/etc/passwd',
      '/images//etc/passwd',
    ]) {
      const res = await rawGet(Number(new URL(h.imagesUrl).port), target);
      expect([400, 404], target).toContain(res);
    }
    expect(await state()).toEqual(before);
  });

  it('needs the operator role to upload, and an image a profile uses needs ?force=true to delete', async () => {
    const v = await put('viewer.bin', Buffer.from('x'), {}, 'viewer');
    expect(v.statusCode).toBe(403);
    await v.body.dump();
    expect((await put('used.iso', randomBytes(1000))).statusCode).toBe(201);
    const prof = await request(`${h.apiUrl}/api/v1/profiles/p1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${h.tokens.operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'onboarding',
        bootImage: { osName: 'x', osVersion: '1', image: 'used.iso' },
      }),
    });
    expect(prof.statusCode).toBe(201);
    await prof.body.dump();
    const del = (q = '') =>
      request(`${h.apiUrl}/api/v1/images/used.iso${q}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${h.tokens.operator}` },
      }).then(json);
    const refused = await del();
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/p1/);
    expect((await del('?force=true')).status).toBe(204);
    expect((await del('?force=true')).status).toBe(404);
    expect(readdirSync(h.dir).filter((f) => f.startsWith('used.iso@'))).toEqual([]);
    expect((await download('used.iso')).status).toBe(404);
  });

  it('refuses an image over the size limit with 413 and keeps nothing', async () => {
    const small = await startImageHarness({ store: { maxBytes: 100_000 } });
    try {
      const auth = `authorization: Bearer ${small.tokens.operator}`;
      // Declared too large: answered from the headers. Chunked: answered once the
      // limit is crossed. Read on a raw socket, so the answer is seen even when the
      // server stops reading the body (an HTTP client may fail its write first).
      for (const [head, chunks] of [
        [`content-length: 200000\r\n${auth}`, [randomBytes(200_000)]],
        [`transfer-encoding: chunked\r\n${auth}`, [randomBytes(60_000), randomBytes(60_000)]],
      ] as const) {
        const res = await rawRequest(
          Number(new URL(small.apiUrl).port),
          `PUT /api/v1/images/big.bin HTTP/1.1\r\nhost: x\r\n${head}\r\n\r\n`,
          head.startsWith('transfer')
            ? chunks.map((c) =>
                Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]),
              )
            : chunks,
        );
        expect(res.status, head).toBe(413);
        expect(JSON.parse(res.body).code).toBe('API_ERR_BODY_TOO_LARGE');
      }
      await until(() => readdirSync(join(small.dir, '.tmp')).length === 0);
      expect(readdirSync(small.dir)).toEqual(['.tmp']);
    } finally {
      await small.close();
    }
  });
});

/**
 * Writes a raw request head and body chunks (write errors ignored: the server may
 * stop reading once it has answered) and resolves with the response's status and body.
 */
function rawRequest(
  port: number,
  head: string,
  chunks: readonly Buffer[],
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const done = () => {
      const text = buf.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(text);
      const len = /\r\ncontent-length: (\d+)/i.exec(text);
      if (m && len && Buffer.byteLength(m[2] as string, 'latin1') >= Number(len[1])) {
        s.destroy();
        resolve({ status: Number(m[1]), body: (m[2] as string).slice(0, Number(len[1])) });
        return true;
      }
      return false;
    };
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      done();
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (!done())
        reject(
          new Error(`connection closed without a whole response: ${buf.toString('latin1').slice(0, 200)}`),
        );
    });
    s.write(head);
    for (const c of chunks) s.write(c);
  });
}

/** Sends a GET with a raw request target and returns the status code. */
function rawGet(port: number, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    s.on('data', (c) => {
      buf += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', reject);
    s.write(`GET ${target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
  });
}

/** Mounts a tmpfs of `size` on a new directory; undefined when this process may not mount. */
function tmpfs(size: string): string | undefined {
  if (!isRoot()) return undefined;
  const dir = join(work, `tmpfs-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  return r.status === 0 ? dir : undefined;
}

const fullDisk = tmpfs('4m');
describe.skipIf(!fullDisk)('image upload on a full disk (a real 4 MiB tmpfs)', () => {
  it('answers 507 (early when Content-Length says so, mid-stream otherwise) and leaves nothing', async () => {
    const small = await startImageHarness({ dir: fullDisk as string });
    try {
      // Declared too large: refused before any byte is written.
      const early = await rawRequest(
        Number(new URL(small.apiUrl).port),
        `PUT /api/v1/images/full.iso HTTP/1.1\r\nhost: x\r\ncontent-length: ${8 * 1024 * 1024}\r\nauthorization: Bearer ${small.tokens.operator}\r\n\r\n`,
        [randomBytes(8 * 1024 * 1024)],
      );
      expect(early.status).toBe(507);
      expect(JSON.parse(early.body).code).toBe('API_ERR_INSUFFICIENT_STORAGE');
      // Chunked: the write fails with ENOSPC part-way.
      const mid = await request(`${small.apiUrl}/api/v1/images/full.iso`, {
        method: 'PUT',
        body: Readable.from(Array.from({ length: 8 }, () => randomBytes(1024 * 1024))),
        headers: { authorization: `Bearer ${small.tokens.operator}` },
      }).then(json);
      expect(mid.status).toBe(507);
      expect(mid.body.code).toBe('API_ERR_INSUFFICIENT_STORAGE');
      await until(() => readdirSync(join(fullDisk as string, '.tmp')).length === 0);
      expect(readdirSync(fullDisk as string)).toEqual(['.tmp']);
      // The store still works once there is room.
      const ok = await request(`${small.apiUrl}/api/v1/images/fits.iso`, {
        method: 'PUT',
        body: randomBytes(1024 * 1024),
        headers: { authorization: `Bearer ${small.tokens.operator}` },
      }).then(json);
      expect(ok.status).toBe(201);
    } finally {
      await small.close();
    }
  });
});

describe(`image names at the limit (${backend})`, () => {
  it('takes a 128-byte name on the API and the images listener', async () => {
    const name = `${'n'.repeat(124)}.iso`;
    const res = await put(name, Buffer.from('abc'));
    expect(res.statusCode).toBe(201);
    await res.body.dump();
    const got = await download(name);
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe('abc');
  });
});

/** A write stream that takes `room` bytes, then fails like a full disk (ENOSPC) — for hosts where mounting a tmpfs is not allowed. */
function fillingStream(path: string, room: number): Writable {
  let used = 0;
  const file = createWriteStream(path, { flags: 'wx' });
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      used += chunk.length;
      if (used > room)
        cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      else file.write(chunk, cb);
    },
    final(cb) {
      file.end(cb);
    },
    destroy(err, cb) {
      file.destroy();
      cb(err);
    },
  });
}

// The same check where mount is not allowed: ENOSPC injected into the temporary file's write
// stream (ImageStore's `openTemp` option). Under CI (root) the real tmpfs test above runs too.
describe.skipIf(fullDisk !== undefined && !inCI)('image upload when the disk fills (injected ENOSPC)', () => {
  it('answers 507 and leaves nothing', async () => {
    const small = await startImageHarness({ store: { openTemp: (p) => fillingStream(p, 1024 * 1024) } });
    try {
      const mid = await request(`${small.apiUrl}/api/v1/images/full.iso`, {
        method: 'PUT',
        body: Readable.from(Array.from({ length: 4 }, () => randomBytes(1024 * 1024))),
        headers: { authorization: `Bearer ${small.tokens.operator}` },
      }).then(json);
      expect(mid.status).toBe(507);
      expect(mid.body.code).toBe('API_ERR_INSUFFICIENT_STORAGE');
      await until(() => readdirSync(join(small.dir, '.tmp')).length === 0);
      expect(readdirSync(small.dir)).toEqual(['.tmp']);
    } finally {
      await small.close();
    }
  });
});
