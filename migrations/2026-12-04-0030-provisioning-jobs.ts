/**
 * Provisioning jobs (issue 13): a job names devices; each device has a run — a
 * durable per-device state machine whose current step, attempt, lease and
 * wait deadline live in its row so any replica can resume it after a crash —
 * and every step attempt is recorded with its result and the BMC's messages.
 * pg-boss keeps its own schema (`pgboss`); these tables are the truth it dispatches.
 * Frozen once landed (STYLE.md lesson 11).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('provision', 'power', 'decommission')`))
    .addColumn('state', 'text', (c) =>
      c.notNull().check(sql`state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')`),
    )
    // What was asked: strategy, power action, per-job timeouts, the selector as given.
    .addColumn('params', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('jobs_state_idx').on('jobs').columns(['state', 'created_at']).execute();
  await db.schema.createIndex('jobs_created_idx').on('jobs').columns(['created_at', 'id']).execute();

  await db.schema
    .createTable('job_devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('serial', 'text', (c) => c.notNull())
    // The BMC at the time the job was created: the per-BMC concurrency limit is on this.
    .addColumn('bmc_id', 'text')
    .addColumn('state', 'text', (c) =>
      c
        .notNull()
        .check(sql`state in ('queued', 'running', 'succeeded', 'failed', 'needs-attention', 'cancelled')`),
    )
    .addColumn('step', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('bmc_messages', 'jsonb')
    // W3C trace context of the run's root span: the device's RESTCONF calls and the BMC's image
    // fetches, arriving from other machines, join the run's trace through it (DESIGN.md, Telemetry).
    .addColumn('traceparent', 'text')
    // Lease: the replica running the run and until when; renewed by its heartbeat. A run is only
    // ever advanced by the holder of an unexpired lease, so two replicas never run one step twice.
    .addColumn('owner', 'text')
    .addColumn('lease_until', 'timestamptz')
    // The current step's start and the deadline of its wait, kept across restarts.
    .addColumn('step_started_at', 'timestamptz')
    .addColumn('step_deadline', 'timestamptz')
    // Set just before the reset is sent: a resumed power-cycle never resets twice, and the device's
    // first contact counts only after it.
    .addColumn('reset_at', 'timestamptz')
    // What earlier steps learned (strategy, system id, image URL), for the steps after them.
    .addColumn('context', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('job_devices_job_serial_uq', ['job_id', 'serial'])
    .execute();
  await db.schema
    .createIndex('job_devices_serial_idx')
    .on('job_devices')
    .columns(['serial', 'state'])
    .execute();
  await db.schema.createIndex('job_devices_bmc_idx').on('job_devices').columns(['bmc_id', 'state']).execute();
  await db.schema
    .createIndex('job_devices_state_idx')
    .on('job_devices')
    .columns(['state', 'lease_until'])
    .execute();

  await db.schema
    .createTable('job_steps')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('run_id', 'text', (c) => c.notNull().references('job_devices.id').onDelete('cascade'))
    .addColumn('step', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('finished_at', 'timestamptz')
    .addColumn('result', 'text', (c) =>
      c.notNull().check(sql`result in ('running', 'done', 'failed', 'cancelled', 'interrupted')`),
    )
    .addColumn('detail', 'text')
    .addColumn('error_code', 'text')
    .addColumn('bmc_messages', 'jsonb')
    .addColumn('owner', 'text')
    // One record per step attempt: a second replica that thinks it may run the same attempt fails here.
    .addUniqueConstraint('job_steps_run_step_attempt_uq', ['run_id', 'step', 'attempt'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('job_steps').ifExists().execute();
  await db.schema.dropTable('job_devices').ifExists().execute();
  await db.schema.dropTable('jobs').ifExists().execute();
}
