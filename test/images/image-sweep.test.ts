/**
 * Orphaned `.part` uploads are swept whenever no upload is in flight (not only at
 * start-up, and not only after an hour), while uploads in flight are never touched.
 */
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore } from '../../bootstrap/image-store.js';
import { backend, migratedDatabase, type TestDatabase } from '../helpers/db.js';

let t: TestDatabase;
const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-sweep-'));
beforeAll(async () => {
  t = await migratedDatabase();
}, 60_000);
afterAll(async () => {
  await t?.drop();
  rmSync(root, { recursive: true, force: true });
});

/** A `.part` left by an upload that died, last written `ageMs` ago. */
function orphan(store: ImageStore, name: string, ageMs: number): string {
  const p = join(store.dir, '.tmp', name);
  writeFileSync(p, 'partial');
  const when = new Date(Date.now() - ageMs);
  utimesSync(p, when, when);
  return p;
}

describe(`image store sweeping (${backend})`, () => {
  it('removes an orphaned .part when the last upload in flight ends, and leaves fresh ones', async () => {
    const store = new ImageStore(t.db, { dir: join(root, 'a'), partIdleMs: 60_000 });
    await store.init();
    const dead = orphan(store, 'dead.part', 2 * 60_000);
    const fresh = orphan(store, 'fresh.part', 1_000); // another replica's upload, still being written
    const r = await store.receive(Readable.from([Buffer.from('image bytes')]));
    expect(existsSync(dead)).toBe(true); // an upload is in flight: nothing swept yet
    await store.commit('os.img', r, {});
    expect(await store.idleSweep).toEqual([dead]);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });

  it('never removes the .part of an upload in flight, however old', async () => {
    const store = new ImageStore(t.db, {
      dir: join(root, 'b'),
      partIdleMs: 60_000,
      now: () => Date.now() + 3_600_000,
    });
    await store.init();
    const body = new PassThrough();
    const receiving = store.receive(body);
    body.write(Buffer.from('first half'));
    await new Promise((r) => setImmediate(r));
    const dead = orphan(store, 'dead.part', 0); // an hour old by the store's clock
    expect(await store.sweep()).toEqual([dead]); // only the orphan: ours is in flight
    body.end(Buffer.from(' second half'));
    const r = await receiving;
    expect(existsSync(r.tmpPath)).toBe(true);
    await store.discard(r);
    expect(await store.idleSweep).toEqual([]);
  });

  it('sweeps after a failed upload too', async () => {
    const store = new ImageStore(t.db, { dir: join(root, 'c'), partIdleMs: 60_000 });
    await store.init();
    const dead = orphan(store, 'dead.part', 2 * 60_000);
    await expect(store.receive(Readable.from([]))).rejects.toMatchObject({ code: 'API_ERR_BAD_REQUEST' });
    expect(await store.idleSweep).toEqual([dead]);
  });
});
