/** The BMC inventory: list, add, check, and each BMC's capability report. */
import { useState } from 'preact/hooks';
import { ApiFailure, type Bmc } from '../api';
import { type Column, Table } from '../table';
import { ErrorBox, failureText, Labels, useCtx, useLoad, when } from '../ui';

type Strategy = { strategy: string; usable: boolean; reasons: string[] };

/** The stored `bmc check` result: what the BMC is, what it offers, which strategies work. */
export function CheckReport({ bmc }: { bmc: Bmc }) {
  const c = bmc.lastCheck;
  if (!c) return <p class="muted">Not checked yet.</p>;
  const r = (c.report ?? {}) as Record<string, unknown>;
  const strategies = (r.strategies as Strategy[] | undefined) ?? [];
  const system = r.system as Record<string, unknown> | undefined;
  const media = (r.virtualMedia as Array<Record<string, unknown>> | undefined) ?? [];
  return (
    <div class="check" data-testid={`check-${bmc.id}`}>
      <p>
        {c.ok ? (
          <span class="state state-provisioned">ok</span>
        ) : (
          <span class="state state-failed">failed</span>
        )}{' '}
        checked {when(c.at)}
        {typeof r.recommended === 'string' && (
          <>
            {' '}
            · recommended strategy <strong>{r.recommended}</strong>
          </>
        )}
      </p>
      {c.error && (
        <p class="alert error" role="alert">
          <strong>{c.error.code}</strong>: {c.error.message}
        </p>
      )}
      {c.report && (
        <dl class="facts">
          <dt>BMC</dt>
          <dd>
            {String(r.manufacturer ?? '')} {String(r.model ?? '')} firmware {String(r.firmwareVersion ?? '')}{' '}
            (Redfish {String(r.redfishVersion ?? '')})
          </dd>
          <dt>Vendor profile</dt>
          <dd>{String((r.profile as { id?: string } | undefined)?.id ?? '—')}</dd>
          {system && (
            <>
              <dt>System</dt>
              <dd>
                {String(system.id)} · power {String(system.powerState)} · boot targets{' '}
                {(system.bootTargets as string[] | undefined)?.join(', ') || '—'}
                {system.httpBoot ? ' · UEFI HTTP boot' : ''}
              </dd>
            </>
          )}
          <dt>Virtual media</dt>
          <dd>
            {media.length
              ? media.map((m) => `${String(m.id)} (${(m.mediaTypes as string[]).join('/')})`).join(', ')
              : 'none'}
          </dd>
          <dt>Image push</dt>
          <dd>{r.simpleUpdate ? 'UpdateService.SimpleUpdate' : 'no'}</dd>
        </dl>
      )}
      {strategies.length > 0 && (
        <ul class="strategies" aria-label="Provisioning strategies">
          {strategies.map((s) => (
            <li key={s.strategy}>
              <strong>{s.strategy}</strong>: {s.usable ? 'usable' : 'not usable'}
              {s.reasons.length ? <span class="muted"> — {s.reasons.join('; ')}</span> : ''}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function AddBmc({ onAdded }: { onAdded(): void }) {
  const { api, fail } = useCtx();
  const [f, setF] = useState({ id: '', address: 'https://', username: '', password: '', insecure: false });
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (e: Event) => {
    const t = e.target as HTMLInputElement;
    setF({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.value });
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await api.addBmc(f.id.trim(), {
        address: f.address.trim(),
        username: f.username,
        password: f.password,
        ...(f.insecure ? { insecure: true } : {}),
      });
      setF({ id: '', address: 'https://', username: '', password: '', insecure: false });
      onAdded();
    } catch (err) {
      fail(err);
      setError(
        err instanceof ApiFailure && err.code === 'API_ERR_PRECONDITION_FAILED'
          ? `Could not add the BMC: there is already a BMC with id ${f.id.trim()}. Pick another id (the form never replaces a BMC).`
          : `Could not add the BMC. ${failureText(err)}`,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card form" onSubmit={submit} aria-labelledby="add-bmc-h">
      <h2 id="add-bmc-h">Add a BMC</h2>
      <label>
        Id <input required value={f.id} onInput={set('id')} placeholder="bf3-r1-01" />
      </label>
      <label>
        Address <input required value={f.address} onInput={set('address')} />
      </label>
      <label>
        Username <input required value={f.username} onInput={set('username')} autocomplete="off" />
      </label>
      <label>
        Password{' '}
        <input required type="password" value={f.password} onInput={set('password')} autocomplete="off" />
      </label>
      <label class="inline">
        <input type="checkbox" checked={f.insecure} onChange={set('insecure')} /> Skip TLS verification (lab
        only)
      </label>
      <button type="submit" disabled={busy}>
        {busy ? 'Adding…' : 'Add BMC'}
      </button>
      <ErrorBox text={error} />
    </form>
  );
}

/** What the inventory shows of each BMC (its actions are added by the page, which knows the role). */
const BMC_COLUMNS: Column<Bmc>[] = [
  { head: 'Id', cell: (b) => b.id },
  { head: 'Address', cell: (b) => b.address },
  { head: 'User', cell: (b) => b.username },
  {
    head: 'Last check',
    cell: (b) =>
      b.lastCheck
        ? `${b.lastCheck.ok ? 'ok' : (b.lastCheck.error?.code ?? 'failed')} · ${when(b.lastCheck.at)}`
        : '—',
    testId: 'bmc-last-check',
  },
  { head: 'Labels', cell: (b) => <Labels labels={b.labels} /> },
];

export function BmcsPage() {
  const { api, session, fail } = useCtx();
  const bmcs = useLoad(() => api.bmcs(), []);
  const [checking, setChecking] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [open, setOpen] = useState<string | undefined>();
  const canRun = session.role !== 'viewer';
  const check = async (id: string) => {
    setChecking(id);
    setError(undefined);
    try {
      await api.checkBmc(id);
      setOpen(id);
      bmcs.reload();
    } catch (err) {
      fail(err);
      setError(`Could not check ${id}. ${failureText(err)}`);
    } finally {
      setChecking(undefined);
    }
  };
  return (
    <section aria-labelledby="bmcs-h">
      <h1 id="bmcs-h">BMCs</h1>
      <ErrorBox text={bmcs.error} />
      <ErrorBox text={error} />
      <Table
        caption="BMC inventory"
        columns={[
          ...BMC_COLUMNS,
          {
            head: 'Actions',
            cell: (b) => (
              <>
                {canRun && (
                  <button type="button" disabled={checking === b.id} onClick={() => check(b.id)}>
                    {checking === b.id ? 'Checking…' : 'Check'}
                  </button>
                )}{' '}
                <button
                  type="button"
                  class="link"
                  aria-expanded={open === b.id}
                  onClick={() => setOpen(open === b.id ? undefined : b.id)}
                >
                  Report
                </button>
              </>
            ),
          },
        ]}
        rows={bmcs.data}
        rowKey={(b) => b.id}
        rowProps={(b) => ({ 'data-bmc': b.id })}
        empty="No BMCs yet."
      />
      {open && bmcs.data?.find((b) => b.id === open) && (
        <article class="card" aria-label={`Check report of ${open}`}>
          <h2>Check report: {open}</h2>
          <CheckReport bmc={bmcs.data.find((b) => b.id === open) as Bmc} />
        </article>
      )}
      {canRun && <AddBmc onAdded={bmcs.reload} />}
    </section>
  );
}
