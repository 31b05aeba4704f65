/**
 * Job events written by the database, in the same statement as the change
 * they describe (issue 13): until now the job runner appended `job.state` and
 * `job.device.state` events after its own write, so a crash in between lost
 * the event, and every change cost a second round trip.
 *
 * - `dpu_ztp_append_event(type, serial, job, data)` is the one place an event
 *   is appended: the row, a delivery for every webhook whose patterns match,
 *   and the `dpu_ztp_events` wake-up (PostgreSQL delivers it on commit).
 *   `EventLog.append` calls it; so do the triggers below.
 * - `job_devices`: a change of state, step or attempt appends
 *   `job.device.state` `{from?, to, step, attempt, error?}` (`from` only when
 *   the state moved).
 * - `job_steps`: a step attempt that ends (its result leaves `running`)
 *   appends `job.device.step` `{step, attempt, result, error?, bmcMessages?}`
 *   (result `done`, `failed`, `cancelled` or `interrupted`; its start is the
 *   run's `job.device.state` with the new step).
 * - `jobs`: a change of state appends `job.state` `{from, to, kind}`.
 *
 * Frozen once landed (STYLE.md lesson 11): a later change replaces the
 * functions in a migration of its own.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create or replace function dpu_ztp_append_event(p_type text, p_serial text, p_job text, p_data jsonb)
    returns events language plpgsql as $fn$
    declare
      e events;
    begin
      insert into events (type, serial, job, data)
      values (p_type, p_serial, p_job, coalesce(p_data, '{}'::jsonb))
      returning * into e;
      -- Patterns: exact type, 'prefix.*' or '*' (bootstrap/events.ts typeMatches).
      insert into webhook_deliveries (webhook, event_id)
      select w.id, e.id from webhooks w
      where exists (
        select 1 from jsonb_array_elements_text(w.events) p(v)
        where p.v = '*' or p.v = e.type
           or (p.v like '%.*' and e.type like left(p.v, -1) || '%'));
      perform pg_notify('dpu_ztp_events', '');
      return e;
    end
    $fn$`.execute(db);

  await sql`
    create or replace function dpu_ztp_job_device_event() returns trigger language plpgsql as $fn$
    begin
      perform dpu_ztp_append_event('job.device.state', new.serial, new.job_id,
        jsonb_strip_nulls(jsonb_build_object(
          'from', case when old.state is distinct from new.state then old.state end,
          'to', new.state,
          'step', new.step,
          'attempt', new.attempt,
          'error', case when new.error_code is not null
                        then jsonb_build_object('code', new.error_code, 'message', coalesce(new.error_message, ''))
                   end)));
      return null;
    end
    $fn$`.execute(db);
  await sql`
    create trigger job_devices_event after update on job_devices for each row
    when (old.state is distinct from new.state
          or old.step is distinct from new.step
          or old.attempt is distinct from new.attempt)
    execute function dpu_ztp_job_device_event()`.execute(db);

  await sql`
    create or replace function dpu_ztp_job_step_event() returns trigger language plpgsql as $fn$
    declare
      r job_devices;
    begin
      select * into r from job_devices where id = new.run_id;
      perform dpu_ztp_append_event('job.device.step', r.serial, r.job_id,
        jsonb_strip_nulls(jsonb_build_object(
          'step', new.step,
          'attempt', new.attempt,
          'result', new.result,
          'error', case when new.error_code is not null then jsonb_build_object('code', new.error_code) end,
          'bmcMessages', new.bmc_messages)));
      return null;
    end
    $fn$`.execute(db);
  await sql`
    create trigger job_steps_event after update of result on job_steps for each row
    when (old.result = 'running' and new.result <> 'running')
    execute function dpu_ztp_job_step_event()`.execute(db);

  await sql`
    create or replace function dpu_ztp_job_event() returns trigger language plpgsql as $fn$
    begin
      perform dpu_ztp_append_event('job.state', null, new.id,
        jsonb_build_object('from', old.state, 'to', new.state, 'kind', new.kind));
      return null;
    end
    $fn$`.execute(db);
  await sql`
    create trigger jobs_event after update of state on jobs for each row
    when (old.state is distinct from new.state)
    execute function dpu_ztp_job_event()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger if exists jobs_event on jobs`.execute(db);
  await sql`drop trigger if exists job_steps_event on job_steps`.execute(db);
  await sql`drop trigger if exists job_devices_event on job_devices`.execute(db);
  await sql`drop function if exists dpu_ztp_job_event()`.execute(db);
  await sql`drop function if exists dpu_ztp_job_step_event()`.execute(db);
  await sql`drop function if exists dpu_ztp_job_device_event()`.execute(db);
  await sql`drop function if exists dpu_ztp_append_event(text, text, text, jsonb)`.execute(db);
}
