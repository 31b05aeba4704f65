/**
 * The live event stream (`GET /api/v1/events`, Server-Sent Events) read with
 * fetch streaming: EventSource cannot send an Authorization header, and the
 * token must never go in a URL. Reconnects with backoff and resumes with
 * `Last-Event-ID`, so nothing is lost across a cut (README "Events, webhooks
 * and audit").
 */

/** One event as the API sends it. */
export interface LiveEvent {
  id: string;
  type: string;
  serial: string | null;
  job: string | null;
  data: Record<string, unknown>;
  createdAt: string;
}

/** The stream's state, shown in the page header. */
export type StreamStatus =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'down'; reason: string; retryInS: number }
  | { kind: 'auth' };

/** Options of {@link openEventStream}. */
export interface StreamOptions {
  token: string;
  /** Filters (`type=`, `serial=`, `job=`). */
  query?: Record<string, string>;
  /** Called with each batch of events that arrived together (one render per batch). */
  onEvents(events: LiveEvent[]): void;
  onStatus(status: StreamStatus): void;
}

/** Splits SSE text into frames; returns the frames and the unfinished rest. */
export function parseFrames(buf: string): { frames: Array<{ id?: string; data: string }>; rest: string } {
  const frames: Array<{ id?: string; data: string }> = [];
  const text = buf.replace(/\r\n?/g, '\n');
  let start = 0;
  for (let i = text.indexOf('\n\n'); i >= 0; i = text.indexOf('\n\n', start)) {
    const block = text.slice(start, i);
    start = i + 2;
    const f: { id?: string; data: string } = { data: '' };
    let any = false;
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'data') {
        f.data += (any && f.data ? '\n' : '') + value;
        any = true;
      } else if (field === 'id') f.id = value;
    }
    if (any) frames.push(f);
  }
  return { frames, rest: text.slice(start) };
}

/** Opens the stream; returns a function that closes it for good. */
export function openEventStream(o: StreamOptions): () => void {
  let closed = false;
  let lastId: string | undefined;
  let ac: AbortController | undefined;
  let backoff = 1;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const run = async () => {
    if (closed) return;
    ac = new AbortController();
    o.onStatus({ kind: 'connecting' });
    const q = new URLSearchParams(o.query ?? {}).toString();
    try {
      const res = await fetch(`/api/v1/events${q ? `?${q}` : ''}`, {
        headers: {
          authorization: `Bearer ${o.token}`,
          accept: 'text/event-stream',
          ...(lastId ? { 'last-event-id': lastId } : {}),
        },
        signal: ac.signal,
        cache: 'no-store',
      });
      if (res.status === 401) {
        o.onStatus({ kind: 'auth' });
        return;
      }
      if (!res.ok || !res.body) throw new Error(`the event stream answered HTTP ${res.status}`);
      o.onStatus({ kind: 'live' });
      backoff = 1;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        const { frames, rest } = parseFrames(buf);
        buf = rest;
        const events: LiveEvent[] = [];
        for (const f of frames) {
          if (f.id) lastId = f.id;
          try {
            events.push(JSON.parse(f.data) as LiveEvent);
          } catch {
            // a frame that is not an event (never sent by the API): skip it
          }
        }
        if (events.length) o.onEvents(events);
      }
      throw new Error('the event stream was closed by the service');
    } catch (err) {
      if (closed) return;
      const reason =
        err instanceof TypeError ? 'the dpu-ztp API did not answer' : (err as Error).message || 'cut';
      o.onStatus({ kind: 'down', reason, retryInS: backoff });
      timer = setTimeout(run, backoff * 1000);
      backoff = Math.min(backoff * 2, 15);
    }
  };
  void run();
  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
    ac?.abort();
  };
}
