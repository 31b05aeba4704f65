/**
 * One device: its state and labels, its jobs with each step attempt on a
 * timeline (errors with the BMC's own messages, a trace link when a trace
 * viewer is configured), its progress reports, and its BMC's check report.
 * Refreshed by the device's live events. Its identity (IDevID): the fingerprint it
 * presented and, when that is revoked, by whom, when and why; an admin revokes or
 * lifts it here (other roles see it without the buttons).
 */
import { useEffect, useState } from 'preact/hooks';
import type { BootstrapEvent, Job, RevokedIdevid, RunView } from '../api';
import { type Column, Table } from '../table';
import {
  BmcMessages,
  duration,
  ErrorBox,
  failureText,
  Labels,
  StateBadge,
  useCtx,
  useFleetVersion,
  useLoad,
  when,
} from '../ui';
import { CheckReport } from './bmcs';

/** A run's steps as a timeline: one row per attempt, a bar as long as it took. */
export function Timeline({ run, traceUiUrl }: { run: RunView; traceUiUrl: string | null }) {
  const steps = run.steps ?? [];
  const t0 = steps.length ? new Date(steps[0]!.startedAt).getTime() : 0;
  const end = Math.max(
    t0 + 1,
    ...steps.map((s) => (s.finishedAt ? new Date(s.finishedAt).getTime() : Date.now())),
  );
  const trace = traceUiUrl && run.traceId ? traceUiUrl.replaceAll('{traceId}', run.traceId) : undefined;
  return (
    <div class="run">
      <p>
        <StateBadge state={run.state} /> step <strong>{run.step}</strong>, attempt {run.attempt}
        {run.startedAt && (
          <span class="muted">
            {' '}
            · started {when(run.startedAt)} · {duration(run.startedAt, run.finishedAt)}
          </span>
        )}
        {trace && (
          <>
            {' '}
            ·{' '}
            <a href={trace} target="_blank" rel="noopener noreferrer">
              trace {run.traceId?.slice(0, 8)}…
            </a>
          </>
        )}
      </p>
      {run.error && (
        <div class="alert error" role="alert" data-testid="run-error">
          <strong>{run.error.code}</strong>: {run.error.message}
          <BmcMessages messages={run.error.bmcMessages} />
        </div>
      )}
      {steps.length > 0 && (
        <ol class="timeline" aria-label={`Steps of ${run.serial}`}>
          {steps.map((s) => {
            const a = new Date(s.startedAt).getTime();
            const b = s.finishedAt ? new Date(s.finishedAt).getTime() : Date.now();
            const left = ((a - t0) / (end - t0)) * 100;
            const width = Math.max(0.5, ((b - a) / (end - t0)) * 100);
            return (
              <li key={`${s.step}/${s.attempt}`} class={`step result-${s.result}`}>
                <span class="step-name">
                  {s.step}
                  {s.attempt > 1 ? ` #${s.attempt}` : ''}
                </span>
                <span class="step-bar" aria-hidden="true">
                  <span style={{ marginLeft: `${left}%`, width: `${width}%` }} />
                </span>
                <span class="step-result">
                  {s.result} <span class="muted">{duration(s.startedAt, s.finishedAt)}</span>
                </span>
                {(s.detail || s.errorCode) && (
                  <span class="step-detail">
                    {s.errorCode && <strong>{s.errorCode} </strong>}
                    {s.detail}
                    <BmcMessages messages={s.bmcMessages} />
                  </span>
                )}
              </li>
            );
          })}
        </ol>
      )}
    </div>
  );
}

/** The device's progress reports and requests, oldest first; `*-error` reports in red. */
const EVENT_COLUMNS: Column<BootstrapEvent>[] = [
  { head: 'When', cell: (e) => when(e.at) },
  { head: 'Kind', cell: (e) => e.kind },
  { head: 'Type', cell: (e) => e.progressType ?? '—' },
  { head: 'Message', cell: (e) => e.message ?? '' },
  { head: 'From', cell: (e) => e.remoteAddress ?? '' },
];

/**
 * The device's IDevID: its fingerprint, whether it is revoked (the bootstrap server refuses the
 * device and provisioning jobs stop with JOB_ERR_IDEVID_REVOKED), and for an admin the change.
 */
function IdevidPanel({
  fingerprint,
  revoked,
  onChanged,
}: {
  fingerprint: string | null;
  revoked: RevokedIdevid | undefined;
  onChanged(): void;
}) {
  const { api, session, fail } = useCtx();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  if (!fingerprint)
    return (
      <p class="muted" data-testid="idevid">
        No IDevID recorded yet: the device has made no request with its certificate.
      </p>
    );
  const act = async (what: 'revoke' | 'lift') => {
    setBusy(true);
    setError(undefined);
    try {
      if (what === 'revoke') await api.revokeIdevid(fingerprint, reason.trim());
      else await api.unrevokeIdevid(fingerprint);
      setReason('');
      onChanged();
    } catch (err) {
      fail(err);
      setError(`Could not ${what === 'revoke' ? 'revoke' : 'lift'} the IDevID. ${failureText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div data-testid="idevid">
      <p>
        SHA-256 <code class="fingerprint">{fingerprint}</code>
      </p>
      {revoked ? (
        <div class="alert error" role="alert" data-testid="idevid-revoked">
          <strong>Revoked</strong> {when(revoked.revokedAt)} by {revoked.revokedBy}
          {revoked.reason ? `: ${revoked.reason}` : ''}. The bootstrap server refuses this device, and
          provisioning jobs stop with JOB_ERR_IDEVID_REVOKED.
        </div>
      ) : (
        <p data-testid="idevid-ok">Not revoked.</p>
      )}
      <ErrorBox text={error} />
      {session.role === 'admin' && (
        <div class="toolbar">
          {revoked ? (
            <button type="button" disabled={busy} onClick={() => act('lift')}>
              Lift revocation
            </button>
          ) : (
            <>
              <label>
                Reason{' '}
                <input
                  value={reason}
                  maxLength={500}
                  onInput={(e) => setReason((e.target as HTMLInputElement).value)}
                  placeholder="RMA 4711"
                />
              </label>
              <button type="button" disabled={busy} onClick={() => act('revoke')}>
                Revoke IDevID
              </button>
            </>
          )}
        </div>
      )}
    </div>
  );
}

export function DevicePage({ serial }: { serial: string }) {
  const { api, session, fleet } = useCtx();
  const version = useFleetVersion();
  const device = useLoad(() => api.device(serial), [serial]);
  const jobs = useLoad(async () => {
    const page = await api.jobs({ serial, limit: 10 });
    const full = await Promise.all(page.items.map((j) => api.job(j.id, true)));
    return full.map((j: Job) => ({ job: j, run: j.devices.find((d) => d.serial === serial) }));
  }, [serial]);
  const events = useLoad(() => api.deviceEvents(serial), [serial]);
  const bmcId = device.data?.bmc;
  const bmc = useLoad(async () => (bmcId ? api.bmc(bmcId) : undefined), [bmcId]);
  const fingerprint = device.data?.idevidFingerprint ?? null;
  const revocation = useLoad(
    async () => (fingerprint ? api.revocation(fingerprint) : undefined),
    [fingerprint],
  );

  // The fleet's live events tell when this device changed: re-read its pages then.
  const d = fleet.devices.get(serial);
  const run = fleet.runs.get(serial);
  useEffect(() => {
    if (version === 0) return;
    device.reload();
    jobs.reload();
    events.reload();
    revocation.reload();
  }, [d, run?.state, run?.step]);

  return (
    <section aria-labelledby="device-h">
      <p>
        <a href="#/">← Fleet</a>
      </p>
      <h1 id="device-h">Device {serial}</h1>
      <ErrorBox text={device.error} />
      {device.data && (
        <dl class="facts">
          <dt>State</dt>
          <dd data-testid="device-state">
            <StateBadge state={device.data.state} />
          </dd>
          <dt>Profile</dt>
          <dd>{device.data.profile ?? '—'}</dd>
          <dt>BMC</dt>
          <dd>{device.data.bmc ?? '—'}</dd>
          <dt>Hardware model</dt>
          <dd>{device.data.hwModel ?? '—'}</dd>
          <dt>Last progress</dt>
          <dd>
            {device.data.lastProgress
              ? `${device.data.lastProgress.type} at ${when(device.data.lastProgress.at)}${
                  device.data.lastProgress.message ? ` — ${device.data.lastProgress.message}` : ''
                }`
              : '—'}
          </dd>
          <dt>Labels</dt>
          <dd>
            <Labels labels={device.data.labels} />
          </dd>
        </dl>
      )}
      <h2>Device identity (IDevID)</h2>
      <ErrorBox text={revocation.error} />
      {device.data && (
        <IdevidPanel
          fingerprint={fingerprint}
          revoked={revocation.data}
          onChanged={() => revocation.reload()}
        />
      )}
      <h2>Jobs</h2>
      <ErrorBox text={jobs.error} />
      {jobs.data?.length === 0 && <p class="muted">No job has run on this device yet.</p>}
      {jobs.data?.map(({ job, run }) => (
        <article class="card" key={job.id} aria-label={`Job ${job.id}`}>
          <h3>
            <a href={`#/jobs/${job.id}`}>
              {job.kind} job {job.id.slice(0, 8)}
            </a>{' '}
            <StateBadge state={job.state} /> <span class="muted">{when(job.createdAt)}</span>
          </h3>
          {run && <Timeline run={run} traceUiUrl={session.traceUiUrl} />}
        </article>
      ))}
      <h2>Progress reports</h2>
      <ErrorBox text={events.error} />
      <Table
        caption={`Progress reports and requests of ${serial}`}
        columns={EVENT_COLUMNS}
        rows={events.data?.items}
        rowKey={(e) => e.id}
        rowProps={(e) => ({ class: e.progressType?.endsWith('-error') ? 'row-error' : '' })}
        empty="None yet."
      />
      <h2>BMC check</h2>
      <ErrorBox text={bmc.error} />
      {!bmcId && <p class="muted">This device names no BMC.</p>}
      {bmc.data && <CheckReport bmc={bmc.data} />}
    </section>
  );
}
