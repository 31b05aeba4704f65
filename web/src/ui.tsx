/** Shared pieces of the dashboard's pages: context, loading, errors, small formatters. */
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useState } from 'preact/hooks';
import { type Api, ApiFailure, type Session } from './api';
import type { Fleet } from './fleet';

/** What every page gets. */
export interface Ctx {
  api: Api;
  session: Session;
  fleet: Fleet;
  /** Reports a failed call (a refused token signs out). */
  fail(err: unknown): void;
}

const CtxContext = createContext<Ctx | undefined>(undefined);
export const CtxProvider = CtxContext.Provider;

export function useCtx(): Ctx {
  const c = useContext(CtxContext);
  if (!c) throw new Error('no dashboard context');
  return c;
}

/** A failure as one sentence for the page. */
export function failureText(err: unknown): string {
  if (err instanceof ApiFailure) {
    switch (err.kind) {
      case 'auth':
        return 'The token was refused (unknown or revoked). Sign in again.';
      case 'forbidden':
        return `Not allowed: ${err.message}`;
      case 'unreachable':
        return `The dpu-ztp API is not answering: ${err.message}`;
      default:
        return `${err.code ? `${err.code}: ` : ''}${err.message}`;
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/** Loads data with `load`, again when `deps` change or `reload()` is called. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[],
): { data?: T; error?: string; loading: boolean; reload(): void } {
  const { fail } = useCtx();
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (err) => {
        fail(err);
        if (live) setState((s) => ({ ...s, error: failureText(err), loading: false }));
      },
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** Re-renders when the fleet changes; returns its version. */
export function useFleetVersion(): number {
  const { fleet } = useCtx();
  const [v, setV] = useState(fleet.version);
  useEffect(() => fleet.subscribe(() => setV(fleet.version)), [fleet]);
  return v;
}

export function ErrorBox({ text }: { text: string | undefined }) {
  if (!text) return null;
  return (
    <p class="alert error" role="alert">
      {text}
    </p>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`state state-${state}`}>{state}</span>;
}

/** `12:03:04` today, else date and time, in the browser's zone. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** `1.2 s`, `3 min 4 s`. */
export function duration(fromIso: string | null | undefined, toIso?: string | null): string {
  if (!fromIso) return '';
  const ms = (toIso ? new Date(toIso).getTime() : Date.now()) - new Date(fromIso).getTime();
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function Labels({ labels }: { labels: Record<string, string> }) {
  const e = Object.entries(labels);
  if (!e.length) return <span class="muted">—</span>;
  return (
    <span class="labels">
      {e.map(([k, v]) => (
        <span class="label" key={k}>
          {k}={v}
        </span>
      ))}
    </span>
  );
}

/** The BMC's own messages (`@Message.ExtendedInfo`) as a list. */
export function BmcMessages({ messages }: { messages: unknown[] | null | undefined }) {
  if (!messages?.length) return null;
  return (
    <ul class="bmc-messages" aria-label="Messages from the BMC">
      {messages.map((m, i) => {
        const o = (m ?? {}) as Record<string, unknown>;
        const id = typeof o.MessageId === 'string' ? o.MessageId : undefined;
        // Some BMCs (iLO) send only a MessageId: show it alone, not the raw JSON.
        const text = typeof o.Message === 'string' ? o.Message : id ? '' : JSON.stringify(m);
        return (
          <li key={i}>
            {id && <code>{id}</code>} {text}
            {typeof o.Resolution === 'string' && <span class="muted"> — {o.Resolution}</span>}
          </li>
        );
      })}
    </ul>
  );
}
