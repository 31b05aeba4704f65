/** Jobs: the list, and one job with each device's run, cancel and retry; live. */
import { useEffect, useState } from 'preact/hooks';
import type { JobHead, RunView } from '../api';
import { type Column, Table } from '../table';
import {
  BmcMessages,
  duration,
  ErrorBox,
  failureText,
  StateBadge,
  useCtx,
  useFleetVersion,
  useLoad,
  when,
} from '../ui';

const JOB_COLUMNS: Column<JobHead>[] = [
  { head: 'Job', cell: (j) => <a href={`#/jobs/${j.id}`}>{j.id.slice(0, 8)}</a> },
  { head: 'Kind', cell: (j) => j.kind },
  { head: 'State', cell: (j) => <StateBadge state={j.state} /> },
  {
    head: 'Devices',
    cell: (j) => (
      <>
        {j.counts.total} ({j.counts.succeeded ?? 0} ok, {j.counts.failed ?? 0} failed,{' '}
        {j.counts['needs-attention'] ?? 0} need attention)
      </>
    ),
  },
  { head: 'Created', cell: (j) => when(j.createdAt) },
  { head: 'By', cell: (j) => j.createdBy ?? '—' },
];

/** A job's devices: each one's run, and why it stopped (with the BMC's own messages). */
const RUN_COLUMNS: Column<RunView>[] = [
  { head: 'Device', cell: (d) => <a href={`#/devices/${encodeURIComponent(d.serial)}`}>{d.serial}</a> },
  { head: 'State', cell: (d) => <StateBadge state={d.state} />, testId: 'run-state' },
  { head: 'Step', cell: (d) => d.step },
  { head: 'Attempt', cell: (d) => d.attempt, testId: 'run-attempt' },
  { head: 'Elapsed', cell: (d) => duration(d.startedAt, d.finishedAt) },
  {
    head: 'Why it stopped',
    cell: (d) =>
      d.error ? (
        <>
          <strong>{d.error.code}</strong>: {d.error.message}
          <BmcMessages messages={d.error.bmcMessages} />
        </>
      ) : (
        ''
      ),
  },
];

export function JobsPage() {
  const { api } = useCtx();
  const version = useFleetVersion();
  const jobs = useLoad(() => api.jobs({ limit: 100 }), []);
  useEffect(() => {
    if (version) jobs.reload();
  }, [version]);
  return (
    <section aria-labelledby="jobs-h">
      <h1 id="jobs-h">Jobs</h1>
      <ErrorBox text={jobs.error} />
      <Table
        caption="Jobs, newest first"
        columns={JOB_COLUMNS}
        rows={jobs.data?.items}
        rowKey={(j) => j.id}
        empty="No jobs yet: select devices on the fleet page and provision them."
      />
    </section>
  );
}

export function JobPage({ id }: { id: string }) {
  const { api, session, fail } = useCtx();
  const version = useFleetVersion();
  const job = useLoad(() => api.job(id), [id]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    if (version) job.reload();
  }, [version]);

  const act = async (what: 'cancel' | 'retry') => {
    setBusy(true);
    setError(undefined);
    try {
      const r = what === 'cancel' ? await api.cancelJob(id) : await api.retryJob(id);
      if (r?.id && r.id !== id) location.hash = `#/jobs/${r.id}`;
      job.reload();
    } catch (err) {
      fail(err);
      setError(`Could not ${what} the job. ${failureText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  const j = job.data;
  const canRun = session.role !== 'viewer';
  const finished = j && ['succeeded', 'failed', 'cancelled'].includes(j.state);
  const failedRuns = j?.devices.filter((d) => d.error) ?? [];
  return (
    <section aria-labelledby="job-h">
      <p>
        <a href="#/jobs">← Jobs</a>
      </p>
      <h1 id="job-h">
        Job {id.slice(0, 8)} {j && <StateBadge state={j.state} />}
      </h1>
      <ErrorBox text={job.error} />
      <ErrorBox text={error} />
      {j && (
        <>
          <p class="muted">
            {j.kind} · created {when(j.createdAt)} by {j.createdBy ?? '—'}
            {j.finishedAt ? ` · finished after ${duration(j.createdAt, j.finishedAt)}` : ''} ·{' '}
            {j.counts.total} devices: {j.counts.succeeded ?? 0} succeeded, {j.counts.failed ?? 0} failed,{' '}
            {j.counts['needs-attention'] ?? 0} need attention, {j.counts.running ?? 0} running,{' '}
            {j.counts.queued ?? 0} queued
          </p>
          {j.state === 'failed' && (
            <p class="alert error" role="alert" data-testid="job-failed">
              This job failed: {failedRuns.length} device{failedRuns.length === 1 ? '' : 's'} did not finish (
              {failedRuns.map((d) => `${d.serial}: ${d.error?.code}`).join(', ')}). Open a device for its
              steps and the BMC's messages, fix the cause, then retry.
            </p>
          )}
          {canRun && (
            <div class="toolbar">
              <button type="button" disabled={busy || !!finished} onClick={() => act('cancel')}>
                Cancel job
              </button>
              <button type="button" disabled={busy || j.state !== 'failed'} onClick={() => act('retry')}>
                Retry failed devices
              </button>
            </div>
          )}
          <Table
            caption="Devices of the job"
            columns={RUN_COLUMNS}
            rows={j.devices}
            rowKey={(d) => d.serial}
            rowProps={(d) => ({ 'data-serial': d.serial })}
          />
        </>
      )}
    </section>
  );
}
