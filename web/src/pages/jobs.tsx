/** Jobs: the list, and one job with each device's run, cancel and retry; live. */
import { useEffect, useState } from 'preact/hooks';
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
      {jobs.data?.items.length === 0 && (
        <p class="muted">No jobs yet: select devices on the fleet page and provision them.</p>
      )}
      {jobs.data && jobs.data.items.length > 0 && (
        <table class="plain">
          <caption class="sr-only">Jobs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Kind</th>
              <th scope="col">State</th>
              <th scope="col">Devices</th>
              <th scope="col">Created</th>
              <th scope="col">By</th>
            </tr>
          </thead>
          <tbody>
            {jobs.data.items.map((j) => (
              <tr key={j.id}>
                <td>
                  <a href={`#/jobs/${j.id}`}>{j.id.slice(0, 8)}</a>
                </td>
                <td>{j.kind}</td>
                <td>
                  <StateBadge state={j.state} />
                </td>
                <td>
                  {j.counts.total} ({j.counts.succeeded ?? 0} ok, {j.counts.failed ?? 0} failed,{' '}
                  {j.counts['needs-attention'] ?? 0} need attention)
                </td>
                <td>{when(j.createdAt)}</td>
                <td>{j.createdBy ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
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
          <table class="plain">
            <caption class="sr-only">Devices of the job</caption>
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">State</th>
                <th scope="col">Step</th>
                <th scope="col">Attempt</th>
                <th scope="col">Elapsed</th>
                <th scope="col">Why it stopped</th>
              </tr>
            </thead>
            <tbody>
              {j.devices.map((d) => (
                <tr key={d.serial} data-serial={d.serial}>
                  <td>
                    <a href={`#/devices/${encodeURIComponent(d.serial)}`}>{d.serial}</a>
                  </td>
                  <td data-testid="run-state">
                    <StateBadge state={d.state} />
                  </td>
                  <td>{d.step}</td>
                  <td data-testid="run-attempt">{d.attempt}</td>
                  <td>{duration(d.startedAt, d.finishedAt)}</td>
                  <td>
                    {d.error ? (
                      <>
                        <strong>{d.error.code}</strong>: {d.error.message}
                        <BmcMessages messages={d.error.bmcMessages} />
                      </>
                    ) : (
                      ''
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
