/**
 * JobStore's row locks under concurrency, on the real database. Cancelling a job
 * while runners claim its runs once deadlocked on PostgreSQL (40P01): a claim
 * locks its run and then the job (to mark it running), and cancel locked the job
 * and then the runs. Cancel now takes the runs first, in id order, as claims do.
 * On PGlite (one connection) the same races run serialised: the outcome checks
 * still hold there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStore } from '../../bootstrap/job-store.js';
import { migratedDatabase, type TestDatabase } from '../helpers/db.js';

let t: TestDatabase;
let store: JobStore;

beforeAll(async () => {
  t = await migratedDatabase();
  store = new JobStore(t.db);
});
afterAll(async () => {
  await t?.drop();
});

describe('job store locks', () => {
  it('cancelling a job while its runs are claimed never deadlocks; every run ends cancelled', async () => {
    const N = 12;
    for (let round = 0; round < 40; round++) {
      const { id, runs } = await store.create({
        kind: 'power',
        // No BMC: claims take no advisory lock, so they race on the rows alone.
        devices: Array.from({ length: N }, (_, i) => ({ serial: `LOCK-${round}-${i}`, bmc: null })),
        params: { action: 'cycle' },
      });
      // Cancel lands among the claims: some claims before it, some after, on other connections.
      const half = Math.floor(N / 2) - (round % 4);
      const early = runs.slice(0, half).map((r, i) => store.claim(r, `owner-${i % 3}`, 30_000));
      await new Promise((r) => setTimeout(r, round % 3));
      const cancel = store.cancel(id);
      const late = runs.slice(half).map((r, i) => store.claim(r, `owner-${i % 3}`, 30_000));
      const results = await Promise.allSettled([...early, cancel, ...late]);
      const failures = results.filter((r) => r.status === 'rejected');
      expect(failures.map((f) => String((f as PromiseRejectedResult).reason))).toEqual([]);
      const job = await store.job(id);
      expect(job?.state).toBe('cancelled');
      const states = new Set((await store.runs(id)).map((r) => r.state));
      expect([...states]).toEqual(['cancelled']);
    }
  });
});
