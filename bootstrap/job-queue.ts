/**
 * pg-boss, the durable queue provisioning jobs run on: on PostgreSQL through
 * its own pool, on embedded PGlite through pg-boss's `db.executeSql` adapter
 * over the service's one PGlite instance (PGlite runs one statement at a time,
 * and pg-boss's multi-statement commands — BEGIN; advisory lock; …; COMMIT —
 * go through `exec` as one unit, so they never interleave with ours).
 */
import type { PGlite } from '@electric-sql/pglite';
import PgBoss from 'pg-boss';
import type { DatabaseHandle } from '../db/index.js';

/** The queue of device runs to pick up (one message per run to start, resume or re-check). */
export const DEVICE_RUN_QUEUE = 'dpu-ztp-device-run';

/** The `executeSql` pg-boss calls, over one PGlite instance. */
export function pgliteExecuteSql(pglite: PGlite) {
  return async (text: string, values?: unknown[]): Promise<{ rows: any[] }> => {
    if (values && values.length > 0) return pglite.query(text, values as any[]);
    // Without parameters pg-boss sends whole scripts (its migrations, BEGIN …; COMMIT): exec runs them
    // as one unit and pg-boss reads the last statement's rows.
    const results = await pglite.exec(text);
    return results.at(-1) ?? { rows: [] };
  };
}

/** Opens (creates and starts) pg-boss on the service's database, with the device-run queue in place. */
export async function openJobQueue(
  handle: DatabaseHandle,
  onError: (err: Error) => void = () => undefined,
): Promise<PgBoss> {
  const common = {
    // No cron schedules here; maintenance (expiry, archive) runs on every replica, pg-boss locks it.
    schedule: false,
    supervise: true,
    application_name: 'dpu-ztp-jobs',
  };
  let boss: PgBoss;
  if (handle.kind === 'pglite' && handle.pglite) {
    boss = new PgBoss({ ...common, db: { executeSql: pgliteExecuteSql(handle.pglite) } });
  } else if (handle.pool) {
    const o = handle.pool.options as { connectionString?: string };
    if (!o.connectionString) throw new Error('pg-boss needs the PostgreSQL URL of the pool');
    boss = new PgBoss({ ...common, connectionString: o.connectionString, max: 4 });
  } else throw new Error('no database for pg-boss');
  boss.on('error', onError);
  await boss.start();
  await boss.createQueue(DEVICE_RUN_QUEUE, {
    name: DEVICE_RUN_QUEUE,
    policy: 'standard',
    // A message is completed as soon as its run's lease is taken (or refused), so one that stays active
    // longer belongs to a replica that died between fetching and claiming: retried after a minute.
    expireInSeconds: 60,
    retryLimit: 100,
    retryDelay: 1,
    retentionMinutes: 60,
  });
  return boss;
}

export type { PgBoss };
