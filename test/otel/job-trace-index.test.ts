/**
 * The synchronous serial/token → trace index (bootstrap/job-trace-index.ts) on a real
 * database (PGlite, or PostgreSQL with DATABASE_URL) and the real notifier, and the
 * image service's token URLs (`/images/t/<token>/<name>`) over real HTTP with the real
 * SDK exporting to a real OTLP receiver: a known token puts the read in the run's trace,
 * a wrong one serves exactly like the plain URL and joins nothing.
 */
import { randomBytes } from 'node:crypto';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JobStore, JobTraceIndex } from '../../bootstrap/index.js';
import { createNotifier, type Notifier } from '../../db/index.js';
import { Attr, SpanName } from '../../otel/index.js';
import { startTelemetry } from '../../otel/sdk.js';
import { buildImagesServer, imageRequest } from '../../sztp-server/index.js';
import { type ImageHarness, startImageHarness } from '../images/harness.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';

let h: ImageHarness;
let notifier: Notifier;
const tp = (n: number) => `00-${String(n).padStart(32, 'a')}-${String(n).padStart(16, 'b')}-01`;

beforeAll(async () => {
  h = await startImageHarness();
  notifier = createNotifier(h.t);
  await h.t.db
    .insertInto('jobs')
    .values({ id: 'job-1', kind: 'provision', state: 'running', updated_at: new Date() })
    .execute();
}, 120_000);
afterAll(async () => {
  await notifier?.close();
  await h?.close();
});
afterEach(() => {
  trace.disable();
  metrics.disable();
  context.disable();
  propagation.disable();
});

async function runRow(id: string, serial: string, traceparent: string, token: string): Promise<void> {
  await h.t.db
    .insertInto('job_devices')
    .values({
      id,
      job_id: 'job-1',
      serial,
      state: 'running',
      step: 'await-device',
      traceparent,
      image_token: token,
      updated_at: new Date(),
    })
    .execute();
}

async function eventually<T>(f: () => T | undefined, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('never became defined');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('JobTraceIndex', () => {
  it('loads running runs at start, refreshes a miss in the background, hears other replicas, forgets finished runs', async () => {
    await runRow('run-1', 'IDX-1', tp(1), 'tok1');
    const store = new JobStore(h.t.db);
    const a = new JobTraceIndex({ store, notifier, owner: 'a' });
    const b = new JobTraceIndex({ store, notifier, owner: 'b' });
    await a.start();
    await b.start();
    try {
      // Loaded at start: answered at once.
      expect(a.forSerial('IDX-1')).toBe(tp(1));
      expect(a.forImageToken('tok1')).toBe(tp(1));
      // A run started after: the first ask misses (never waits), a background query fills it.
      await runRow('run-2', 'IDX-2', tp(2), 'tok2');
      expect(b.forSerial('IDX-2')).toBeUndefined();
      expect(await eventually(() => b.forSerial('IDX-2'))).toBe(tp(2));
      // The waiting form for an image token's first read.
      expect(await b.forImageTokenWaiting('tok2')).toBe(tp(2));
      // A wrong token: undefined, remembered (the second ask does not wait for anything).
      expect(await b.forImageTokenWaiting('nope', 5_000)).toBeUndefined();
      // A wait of 5 s asked for: answered far sooner, so it did not wait (a busy CI machine
      // cannot stretch an immediate answer to 2.5 s; a real wait cannot be shorter than 5 s).
      const t0 = performance.now();
      expect(await b.forImageTokenWaiting('nope', 5_000)).toBeUndefined();
      expect(performance.now() - t0).toBeLessThan(2_500);
      // Another replica's run start and finish arrive over the notifier (no row needed).
      a.started('IDX-3', tp(3), 'tok3');
      expect(await eventually(() => b.forSerial('IDX-3'))).toBe(tp(3));
      expect(b.forImageToken('tok3')).toBe(tp(3));
      a.finished('IDX-3', 'tok3');
      await eventually(() => (b.forSerial('IDX-3') === undefined ? true : undefined));
      expect(b.forImageToken('tok3')).toBeUndefined();
    } finally {
      a.stop();
      b.stop();
    }
  });

  it('stays bounded: the oldest keys go first', async () => {
    const store = new JobStore(h.t.db);
    const idx = new JobTraceIndex({ store, maxEntries: 3 });
    for (let i = 10; i < 15; i++) idx.started(`B-${i}`, tp(i));
    expect(idx.forSerial('B-14')).toBe(tp(14));
    expect(idx.forSerial('B-10')).toBeUndefined(); // evicted (and now looked up in the background)
  });
});

describe('image token URLs', () => {
  it('parses /images/t/<token>/<name> and refuses malformed tokens', () => {
    expect(imageRequest('GET', '/images/t/AbC_-9/x.iso')).toEqual({ name: 'x.iso', token: 'AbC_-9' });
    expect(imageRequest('HEAD', '/images/x.iso?t=1')).toEqual({ name: 'x.iso' });
    expect(imageRequest('GET', '/images/t/a.b/x.iso')).toBeUndefined();
    expect(imageRequest('GET', '/images/t//x.iso')).toBeUndefined();
    expect(imageRequest('GET', '/images/t/abc')).toBeUndefined();
    expect(imageRequest('GET', '/images/t/abc/d/e.iso')).toBeUndefined();
    expect(imageRequest('POST', '/images/t/abc/x.iso')).toBeUndefined();
  });

  it('a known token puts HEAD, Range and GET in the run trace; a wrong one serves the same bytes and joins nothing', async () => {
    const body = randomBytes(50_000);
    // 503 is the API's event-loop guard on a loaded machine; a PUT is safe to repeat.
    let put: Response | undefined;
    for (let i = 0; i < 10 && (put === undefined || put.status === 503); i++) {
      if (put) await new Promise((r) => setTimeout(r, 1000));
      put = await fetch(`${h.apiUrl}/api/v1/images/tok.iso`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${h.tokens.operator}`, 'content-type': 'application/octet-stream' },
        body,
      });
    }
    expect(put?.status).toBeLessThan(300);
    const rx = await startOtlpReceiver();
    const telemetry = startTelemetry({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url },
      defaultServiceName: 'dpu-ztp',
    });
    const run = tp(7);
    const traces = {
      forImageToken: (t: string) => (t === 'good7' ? run : undefined),
      forImageTokenWaiting: async (t: string) => (t === 'good7' ? run : undefined),
    };
    const app = buildImagesServer({
      logger: pino({ level: 'silent' }),
      images: { catalog: h.catalog, fetchLog: h.fetchLog, traces },
    });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const plain = await fetch(`${base}/images/tok.iso`);
      const etag = plain.headers.get('etag');
      expect(Buffer.from(await plain.arrayBuffer()).equals(body)).toBe(true);
      const head = await fetch(`${base}/images/t/good7/tok.iso`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe('50000');
      expect(head.headers.get('etag')).toBe(etag);
      const range = await fetch(`${base}/images/t/good7/tok.iso`, {
        headers: { range: 'bytes=0-1023', 'if-range': etag as string },
      });
      expect(range.status).toBe(206);
      expect(Buffer.from(await range.arrayBuffer()).equals(body.subarray(0, 1024))).toBe(true);
      const full = await fetch(`${base}/images/t/good7/tok.iso`);
      expect(Buffer.from(await full.arrayBuffer()).equals(body)).toBe(true);
      // A wrong or stale token: the same answer as the plain URL (the token only attributes reads).
      const wrong = await fetch(`${base}/images/t/wrong/tok.iso`);
      expect(wrong.status).toBe(200);
      expect(wrong.headers.get('etag')).toBe(etag);
      expect(Buffer.from(await wrong.arrayBuffer()).equals(body)).toBe(true);
      expect((await fetch(`${base}/images/t/bad.tok/tok.iso`)).status).toBe(404);
      expect((await fetch(`${base}/images/t/good7/none.iso`)).status).toBe(404);
    } finally {
      await app.close();
      await telemetry.shutdown();
      await rx.close();
    }
    const reads = rx.spans.filter((s) => s.name === SpanName.imageServe);
    const joined = reads.filter((s) => s.attributes[Attr.imageToken] === true);
    expect(joined.map((s) => s.attributes[Attr.httpStatusCode]).sort()).toEqual([200, 200, 206, 404]);
    for (const s of joined) {
      expect(s.traceId).toBe(run.slice(3, 35));
      expect(s.parentSpanId).toBe(run.slice(36, 52));
    }
    const wrong = reads.filter((s) => s.attributes[Attr.imageToken] === false);
    expect(wrong).toHaveLength(1);
    expect(wrong[0]?.traceId).not.toBe(run.slice(3, 35));
    expect(wrong[0]?.parentSpanId).toBe('');
  });
});
