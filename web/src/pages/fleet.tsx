/**
 * The fleet: every device with its state, current job step, last progress,
 * BMC and labels; filter by state, search by serial/BMC/label; select and
 * provision. The table is virtualised (only the rows in view are in the DOM),
 * so 1,000 or 10,000 devices scroll and update without freezing.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Device } from '../api';
import type { RunInfo } from '../fleet';
import { ErrorBox, failureText, Labels, StateBadge, useCtx, useFleetVersion, when } from '../ui';

const ROW = 36;
const STATES = ['registered', 'pending', 'bootstrapping', 'provisioned', 'failed'] as const;

function matches(d: Device, run: RunInfo | undefined, q: string): boolean {
  if (!q) return true;
  if (d.serial.toLowerCase().includes(q)) return true;
  if (d.bmc?.toLowerCase().includes(q)) return true;
  if (d.profile?.toLowerCase().includes(q)) return true;
  if (run?.step.includes(q)) return true;
  for (const [k, v] of Object.entries(d.labels)) if (`${k}=${v}`.toLowerCase().includes(q)) return true;
  return false;
}

export function FleetPage() {
  const { fleet, api, session, fail } = useCtx();
  const version = useFleetVersion();
  const [state, setState] = useState('');
  const [search, setSearch] = useState('');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const box = useRef<HTMLDivElement>(null);

  const rows = useMemo(() => {
    const q = search.trim().toLowerCase();
    const out: Device[] = [];
    for (const s of fleet.serials) {
      const d = fleet.devices.get(s);
      if (!d || (state && d.state !== state)) continue;
      if (matches(d, fleet.runs.get(s), q)) out.push(d);
    }
    return out;
  }, [version, state, search]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  useEffect(() => {
    if (fleet.loaded) performance.mark('dpu-ztp:fleet-rendered');
  }, [fleet.loaded]);

  const first = Math.max(0, Math.floor(scrollTop / ROW) - 8);
  const last = Math.min(rows.length, Math.ceil((scrollTop + height) / ROW) + 8);
  const visible = rows.slice(first, last);
  const canRun = session.role !== 'viewer';
  const allShown = rows.length > 0 && rows.every((d) => selected.has(d.serial));

  const toggle = (serial: string) =>
    setSelected((prev) => {
      const next = new Set(prev);
      if (next.has(serial)) next.delete(serial);
      else next.add(serial);
      return next;
    });
  const provision = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const job = await api.provision([...selected].sort());
      setSelected(new Set());
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      fail(err);
      setError(`Could not start the job. ${failureText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    for (const d of fleet.devices.values()) c[d.state] = (c[d.state] ?? 0) + 1;
    return c;
  }, [version]);

  return (
    <section aria-labelledby="fleet-h">
      <div class="page-head">
        <h1 id="fleet-h">Fleet</h1>
        <p class="muted" data-testid="fleet-summary">
          {fleet.loaded
            ? `${fleet.devices.size} devices · ${STATES.map((s) => `${counts[s] ?? 0} ${s}`).join(' · ')}`
            : 'Loading devices…'}
        </p>
      </div>
      <div class="toolbar">
        <label>
          State{' '}
          <select value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Search{' '}
          <input
            type="search"
            placeholder="serial, BMC, profile, label"
            value={search}
            onInput={(e) => {
              setSearch((e.target as HTMLInputElement).value);
              if (box.current) box.current.scrollTop = 0;
            }}
          />
        </label>
        <span class="muted">{rows.length} shown</span>
        {canRun && (
          <button type="button" disabled={busy || selected.size === 0} onClick={provision}>
            {busy ? 'Starting…' : `Provision selected (${selected.size})`}
          </button>
        )}
      </div>
      <ErrorBox text={error} />
      <div class="vbody" ref={box} onScroll={(e) => setScrollTop((e.target as HTMLDivElement).scrollTop)}>
        <table class="fleet" aria-rowcount={rows.length + 1}>
          <caption class="sr-only">Devices ({rows.length} shown)</caption>
          <thead>
            <tr aria-rowindex={1}>
              <th scope="col" class="c-sel">
                {canRun && (
                  <input
                    type="checkbox"
                    aria-label="Select every device shown"
                    checked={allShown}
                    onChange={() => setSelected(allShown ? new Set() : new Set(rows.map((d) => d.serial)))}
                  />
                )}
              </th>
              <th scope="col" class="c-serial">
                Serial
              </th>
              <th scope="col" class="c-state">
                State
              </th>
              <th scope="col" class="c-step">
                Job step
              </th>
              <th scope="col" class="c-progress">
                Last progress
              </th>
              <th scope="col" class="c-bmc">
                BMC
              </th>
              <th scope="col" class="c-labels">
                Labels
              </th>
            </tr>
          </thead>
          <tbody>
            {first > 0 && (
              <tr class="spacer" style={{ height: `${first * ROW}px` }}>
                <td colSpan={7} />
              </tr>
            )}
            {visible.map((d, i) => {
              const run = fleet.runs.get(d.serial);
              return (
                <tr aria-rowindex={first + i + 2} key={d.serial} data-serial={d.serial}>
                  <td class="c-sel">
                    {canRun && (
                      <input
                        type="checkbox"
                        aria-label={`Select ${d.serial}`}
                        checked={selected.has(d.serial)}
                        onChange={() => toggle(d.serial)}
                      />
                    )}
                  </td>
                  <td class="c-serial">
                    <a href={`#/devices/${encodeURIComponent(d.serial)}`}>{d.serial}</a>
                  </td>
                  <td class="c-state" data-testid="device-state">
                    <StateBadge state={d.state} />
                  </td>
                  <td class="c-step">
                    {run ? (
                      <a href={`#/jobs/${run.job}`} title={run.error ?? ''}>
                        {run.state}
                        {run.step ? ` · ${run.step}` : ''}
                      </a>
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                  <td class="c-progress">
                    {d.lastProgress ? (
                      <span title={d.lastProgress.message ?? ''}>
                        {d.lastProgress.type} <span class="muted">{when(d.lastProgress.at)}</span>
                      </span>
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                  <td class="c-bmc">{d.bmc ?? <span class="muted">—</span>}</td>
                  <td class="c-labels">
                    <Labels labels={d.labels} />
                  </td>
                </tr>
              );
            })}
            {last < rows.length && (
              <tr class="spacer" style={{ height: `${(rows.length - last) * ROW}px` }}>
                <td colSpan={7} />
              </tr>
            )}
          </tbody>
        </table>
        {fleet.loaded && rows.length === 0 && (
          <p class="empty">
            {fleet.devices.size === 0
              ? 'No devices registered yet (PUT /api/v1/devices/{serial} or dpu-ztp devices import).'
              : 'No device matches the filter.'}
          </p>
        )}
      </div>
    </section>
  );
}
