/** The write-behind queue behind request records and image fetch records. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestLog } from '../../sztp-server/request-log.js';
import { type Queued, WriteBehind } from '../../sztp-server/write-behind.js';
import { backend, migratedDatabase, type TestDatabase } from '../helpers/db.js';

describe('WriteBehind', () => {
  it('writes in batches, coalesces keyed items, and flush waits for the write', async () => {
    const writes: Queued<string>[][] = [];
    const q = new WriteBehind<string>(async (b) => void writes.push(b), {
      batchSize: 3,
      flushAt: 3,
      flushMs: 10_000,
    });
    q.add('a', 'k');
    q.add('a', 'k');
    q.add('b');
    q.add('a', 'k');
    await q.flush();
    expect(writes).toEqual([
      [
        { item: 'a', repeats: 3, key: 'k' },
        { item: 'b', repeats: 1, key: undefined },
      ],
    ]);
    for (const x of ['c', 'd', 'e', 'f']) q.add(x); // the third add reaches flushAt and flushes by itself
    await q.flush();
    expect(writes.slice(1).map((b) => b.map((e) => e.item))).toEqual([['c', 'd', 'e'], ['f']]);
  });

  it('coalesces over the whole flush window and splits a large flush into batchSize writes', async () => {
    const writes: Queued<string>[][] = [];
    const q = new WriteBehind<string>(async (b) => void writes.push(b), { batchSize: 2, flushMs: 10_000 });
    for (let round = 0; round < 50; round++) for (const k of ['a', 'b', 'c']) q.add(k, k);
    expect(writes).toEqual([]); // distinct items (3) are far below flushAt: nothing written early
    await q.flush();
    expect(writes.map((b) => b.map((e) => [e.item, e.repeats]))).toEqual([
      [
        ['a', 50],
        ['b', 50],
      ],
      [['c', 50]],
    ]);
  });

  it('drops the oldest past maxPending and a failed batch, counting and reporting both, never throwing', async () => {
    const drops: Array<[number, unknown]> = [];
    let fail = true;
    const written: string[] = [];
    const q = new WriteBehind<string>(
      async (b) => {
        if (fail) throw new Error('database down');
        written.push(...b.map((e) => e.item));
      },
      { batchSize: 100, maxPending: 2, flushMs: 10_000, onDrop: (n, err) => drops.push([n, err]) },
    );
    q.add('1');
    q.add('2');
    q.add('3'); // over maxPending: '1' goes
    await q.flush(); // fails: '2' and '3' go
    fail = false;
    q.add('4');
    await q.flush();
    expect(written).toEqual(['4']);
    expect(q.dropped).toBe(3);
    expect(drops.map(([n, e]) => [n, e instanceof Error ? e.message : e])).toEqual([
      [1, undefined],
      [2, 'database down'],
    ]);
  });

  it('merges keyed items with `merge`, starts a new one past maxRepeats, and counts repeats when dropping', async () => {
    const writes: Queued<string>[][] = [];
    let fail = false;
    const q = new WriteBehind<string>(
      async (b) => {
        if (fail) throw new Error('down');
        writes.push(b);
      },
      { flushMs: 10_000, merge: (a, b) => `${a}+${b}`, maxRepeats: 3 },
    );
    for (const x of ['a', 'b', 'c', 'd', 'e']) q.add(x, 'k');
    await q.flush();
    expect(writes[0]?.map((e) => [e.item, e.repeats])).toEqual([
      ['a+b+c', 3],
      ['d+e', 2],
    ]);
    fail = true;
    for (const x of ['f', 'g']) q.add(x, 'k');
    await q.flush();
    expect(q.dropped).toBe(2); // two adds lost, though they were one queued row
  });

  it('bisects a batch the database refuses for its data, dropping only the bad items', async () => {
    const drops: Array<[number, unknown]> = [];
    const written: string[] = [];
    let calls = 0;
    const q = new WriteBehind<string>(
      async (b) => {
        calls++;
        if (b.some((e) => e.item.startsWith('bad')))
          throw Object.assign(new Error('invalid'), { code: '22P05' });
        written.push(...b.map((e) => e.item));
      },
      { batchSize: 500, flushMs: 10_000, onDrop: (n, err) => drops.push([n, err]) },
    );
    for (let i = 0; i < 500; i++) q.add(i === 137 || i === 400 ? `bad${i}` : `ok${i}`);
    await q.flush();
    expect(written).toHaveLength(498);
    expect(q.dropped).toBe(2);
    expect(q.rejected).toBe(2);
    expect(drops.map(([n]) => n)).toEqual([1, 1]);
    expect(calls).toBeLessThan(40); // ~2 log2(500) writes, not 500
  });
});

describe(`request records on a real database (${backend})`, () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await migratedDatabase();
  }, 60_000);
  afterAll(async () => t?.drop());

  it("stores every other device's records when one record cannot be stored", async () => {
    const errors: Array<[unknown, number]> = [];
    const log = new RequestLog(t.db, (err, n) => errors.push([err, n]));
    const cred = { peerChain: [], remoteAddress: '192.0.2.1' };
    for (let i = 0; i < 20; i++)
      log.record(`GOOD-${i}`, 'bootstrap-request', cred, undefined, { hwModel: 'dpu' });
    log.record('BAD-1', 'bootstrap-request', cred, undefined, { hwModel: 'evil\u0000' }); // jsonb refuses U+0000
    log.record('BAD-2\u0000', 'bootstrap-request', cred, undefined, {}); // text refuses U+0000
    log.record('BAD-3', 'bootstrap-request', cred, undefined, { hwModel: 'x\ud800' }); // jsonb refuses a lone surrogate
    await log.flush();
    const rows = await t.db.selectFrom('bootstrap_events').select('serial').execute();
    expect(rows.map((r) => r.serial).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `GOOD-${i}`).sort(),
    );
    expect(errors.map(([, n]) => n)).toEqual([1, 1, 1]);
  });
});
