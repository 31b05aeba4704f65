/** A real HTTP Server-Sent Events reader (undici) for tests: parses frames as a browser would. */
import { request } from 'undici';

/** One SSE frame: `id`, `event`, `data` fields (comments counted apart). */
export interface SseFrame {
  id?: string;
  event?: string;
  data: string;
}

/** An open event stream. */
export interface SseStream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Resolves with the next `n` frames (after those already taken), or rejects after `timeoutMs`. */
  take(n: number, timeoutMs?: number): Promise<SseFrame[]>;
  /** Comment lines (`: …`) seen so far. */
  comments: string[];
  /** Resolves when the server closes the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens `url` as an event stream with the given headers. */
export async function openSse(url: string, headers: Record<string, string>): Promise<SseStream> {
  const ac = new AbortController();
  const res = await request(url, { headers: { accept: 'text/event-stream', ...headers }, signal: ac.signal });
  const frames: SseFrame[] = [];
  const comments: string[] = [];
  let taken = 0;
  let waiter: (() => void) | undefined;
  let buf = '';
  let endedResolve!: () => void;
  const ended = new Promise<void>((r) => {
    endedResolve = r;
  });
  (async () => {
    try {
      for await (const chunk of res.body) {
        buf += Buffer.from(chunk as Uint8Array).toString('utf8');
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f: SseFrame = { data: '' };
          let isFrame = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else {
              const m = /^(\w+): ?(.*)$/.exec(line);
              if (!m) continue;
              isFrame = true;
              if (m[1] === 'data') f.data += (f.data ? '\n' : '') + m[2];
              else if (m[1] === 'id') f.id = m[2];
              else if (m[1] === 'event') f.event = m[2];
            }
          }
          if (isFrame) frames.push(f);
        }
        waiter?.();
      }
    } catch {
      // aborted by close() or cut by the server
    }
    endedResolve();
    waiter?.();
  })();
  return {
    status: res.statusCode,
    headers: res.headers,
    comments,
    ended,
    async take(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (frames.length - taken < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${n} frames; have ${frames.length - taken}`);
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, Math.min(left, 250));
        });
      }
      const out = frames.slice(taken, taken + n);
      taken += n;
      return out;
    },
    close() {
      ac.abort();
    },
  };
}
