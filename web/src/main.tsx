/**
 * The dpu-ztp lab dashboard: sign in with an API token (kept in session
 * storage, sent as a bearer header), then the fleet, devices, jobs, BMCs,
 * images and profiles, kept live by the event stream. Hash routes
 * (`#/devices/SN1`) so the service serves one page.
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api, ApiFailure, type Session } from './api';
import { openEventStream, type StreamStatus } from './events';
import { Fleet } from './fleet';
import { BmcsPage } from './pages/bmcs';
import { DevicePage } from './pages/device';
import { FleetPage } from './pages/fleet';
import { ImagesPage, ProfilesPage } from './pages/catalog';
import { JobPage, JobsPage } from './pages/jobs';
import { type Ctx, CtxProvider, failureText } from './ui';
import './style.css';

const TOKEN_KEY = 'dpu-ztp.token';

function useRoute(): string[] {
  const read = () =>
    (location.hash.replace(/^#\/?/, '') || '')
      .split('/')
      .filter(Boolean)
      .map((p) => decodeURIComponent(p));
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function SignIn(props: { message?: string | undefined; onSignedIn(api: Api, s: Session): void }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(props.message);
  const submit = async (e: Event) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) return setError('Paste an API token first.');
    setBusy(true);
    setError(undefined);
    const api = new Api(t);
    try {
      const s = await api.session();
      sessionStorage.setItem(TOKEN_KEY, t);
      props.onSignedIn(api, s);
    } catch (err) {
      setError(
        err instanceof ApiFailure && err.kind === 'auth'
          ? 'That token was refused: it is unknown or revoked. Check it (dpu-ztp tokens list) and try again.'
          : failureText(err),
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>dpu-ztp</h1>
      <form onSubmit={submit} aria-describedby={error ? 'signin-error' : undefined}>
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
        <p class="hint">
          A viewer token reads; an operator token also starts jobs. The first admin token is in{' '}
          <code>&lt;data-dir&gt;/admin-token</code>. It is kept in this tab only.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {error && (
          <p id="signin-error" class="alert error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

function StreamBadge({ status }: { status: StreamStatus }) {
  const text =
    status.kind === 'live'
      ? 'live'
      : status.kind === 'connecting'
        ? 'connecting…'
        : status.kind === 'auth'
          ? 'signed out'
          : 'offline';
  return (
    <span class={`badge stream-${status.kind}`} data-testid="stream-status">
      {text}
    </span>
  );
}

function Shell(props: { api: Api; session: Session; onSignOut(message?: string): void }) {
  const route = useRoute();
  const fleet = useMemo(() => new Fleet(props.api), [props.api]);
  const [status, setStatus] = useState<StreamStatus>({ kind: 'connecting' });
  const [loadError, setLoadError] = useState<string | undefined>();
  const ctx: Ctx = useMemo(
    () => ({
      api: props.api,
      session: props.session,
      fleet,
      fail: (err: unknown) => {
        if (err instanceof ApiFailure && err.kind === 'auth')
          props.onSignOut('The service no longer accepts this token (revoked?). Sign in again.');
      },
    }),
    [props.api, props.session, fleet],
  );

  useEffect(() => {
    let stop = () => {};
    let cancelled = false;
    const start = async () => {
      try {
        await fleet.load();
        setLoadError(undefined);
      } catch (err) {
        ctx.fail(err);
        setLoadError(failureText(err));
        if (!cancelled) setTimeout(start, 3000);
        return;
      }
      if (cancelled) return;
      stop = openEventStream({
        token: props.api.token,
        onEvents: (events) => fleet.apply(events),
        onStatus: (s) => {
          setStatus(s);
          if (s.kind === 'auth') props.onSignOut('The service no longer accepts this token. Sign in again.');
          // Back after a cut: reload what may have changed while the stream was down.
          if (s.kind === 'live' && fleet.loaded) void fleet.load().catch(() => undefined);
        },
      });
    };
    void start();
    return () => {
      cancelled = true;
      stop();
    };
  }, [fleet]);

  const [page, ...rest] = route;
  let body: preact.JSX.Element;
  switch (page) {
    case 'devices':
      body = rest[0] ? <DevicePage serial={rest[0]} /> : <FleetPage />;
      break;
    case 'jobs':
      body = rest[0] ? <JobPage id={rest[0]} /> : <JobsPage />;
      break;
    case 'bmcs':
      body = <BmcsPage />;
      break;
    case 'images':
      body = <ImagesPage />;
      break;
    case 'profiles':
      body = <ProfilesPage />;
      break;
    default:
      body = <FleetPage />;
  }
  const down = status.kind === 'down' ? status : undefined;
  const nav = [
    ['', 'Fleet'],
    ['jobs', 'Jobs'],
    ['bmcs', 'BMCs'],
    ['images', 'Images'],
    ['profiles', 'Profiles'],
  ] as const;
  const current = page === 'devices' || !page ? '' : page;
  return (
    <CtxProvider value={ctx}>
      <header class="top">
        <a class="brand" href="#/">
          dpu-ztp
        </a>
        <nav aria-label="Main">
          {nav.map(([href, label]) => (
            <a href={`#/${href}`} aria-current={current === href ? 'page' : undefined} key={href}>
              {label}
            </a>
          ))}
        </nav>
        <span class="who">
          <StreamBadge status={status} /> {props.session.name} ({props.session.role})
          <button type="button" class="link" onClick={() => props.onSignOut()}>
            Sign out
          </button>
        </span>
      </header>
      {(down || loadError) && (
        <div class="alert error banner" role="alert" data-testid="api-down">
          The dpu-ztp API is not answering ({down?.reason ?? loadError}). Retrying
          {down ? ` in ${down.retryInS} s` : ''}; what this page shows may be out of date.
        </div>
      )}
      <main id="main">{body}</main>
    </CtxProvider>
  );
}

function App() {
  const [auth, setAuth] = useState<{ api: Api; session: Session } | undefined>();
  const [message, setMessage] = useState<string | undefined>();
  const [checking, setChecking] = useState(() => sessionStorage.getItem(TOKEN_KEY) !== null);

  useEffect(() => {
    const stored = sessionStorage.getItem(TOKEN_KEY);
    if (!stored) return;
    const api = new Api(stored);
    api
      .session()
      .then((s) => setAuth({ api, session: s }))
      .catch((err) => {
        if (err instanceof ApiFailure && err.kind === 'auth') sessionStorage.removeItem(TOKEN_KEY);
        setMessage(failureText(err));
      })
      .finally(() => setChecking(false));
  }, []);

  if (checking) return <p class="loading">Connecting to dpu-ztp…</p>;
  if (!auth)
    return (
      <SignIn
        message={message}
        onSignedIn={(api, session) => {
          setMessage(undefined);
          setAuth({ api, session });
        }}
      />
    );
  return (
    <Shell
      api={auth.api}
      session={auth.session}
      onSignOut={(m) => {
        sessionStorage.removeItem(TOKEN_KEY);
        setMessage(m);
        setAuth(undefined);
      }}
    />
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
