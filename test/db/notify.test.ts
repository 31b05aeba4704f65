/**
 * The notifier replicas use to wake each other's device waits: in process on
 * PGlite; on PostgreSQL, LISTEN on one connection and NOTIFY from another
 * handle (another replica) on the same database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifier, LocalNotifier, NOTIFY_PAYLOAD_LIMIT, openDatabase } from '../../db/index.js';
import { backend, freshDatabase, type TestDatabase } from '../helpers/db.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await freshDatabase();
});
afterAll(async () => {
  await t?.drop();
});

function next(listen: (fn: (p: string) => void) => Promise<() => void>, ms = 10_000) {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no notification')), ms);
    void listen((p) => {
      clearTimeout(timer);
      resolve(p);
    });
  });
}

describe(`notifier (${backend})`, () => {
  it('delivers a notification to a listener of the channel, not of another', async () => {
    const n = createNotifier(t);
    const other: string[] = [];
    await n.listen('dpu_ztp_other', (p) => other.push(p));
    const got = next((fn) => n.listen('dpu_ztp_test', fn));
    await new Promise((r) => setTimeout(r, 50));
    await n.notify('dpu_ztp_test', '{"s":"SN-1"}');
    expect(await got).toBe('{"s":"SN-1"}');
    expect(other).toEqual([]);
    await n.close();
  });

  it('refuses a channel that is not a plain identifier and a payload over the limit', async () => {
    const n = new LocalNotifier();
    await expect(n.notify('bad; drop table x', 'x')).rejects.toThrow(/not a plain identifier/);
    await expect(n.notify('dpu_ztp_test', 'x'.repeat(NOTIFY_PAYLOAD_LIMIT + 1))).rejects.toThrow(/exceeds/);
    await expect(n.notify('dpu_ztp_test', 'x'.repeat(NOTIFY_PAYLOAD_LIMIT))).resolves.toBeUndefined();
  });

  it.skipIf(backend !== 'postgres')(
    'crosses replicas: NOTIFY from another handle reaches the LISTEN',
    async () => {
      const a = createNotifier(t);
      const otherHandle = await openDatabase({ databaseUrl: t.url as string, poolSize: 2 });
      const b = createNotifier(otherHandle);
      try {
        const got = next((fn) => a.listen('dpu_ztp_devices', fn));
        await new Promise((r) => setTimeout(r, 200));
        await b.notify('dpu_ztp_devices', 'from b');
        expect(await got).toBe('from b');
      } finally {
        await a.close();
        await b.close();
        await otherHandle.close();
      }
    },
  );
});
