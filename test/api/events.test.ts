/**
 * The event log and its SSE stream over real HTTP (undici) on the backend this
 * run targets: events written with the changes they describe, one tail per
 * process woken by LISTEN/NOTIFY (PGlite: in-process notifications), resume
 * with Last-Event-ID, filters, heartbeats, a stream cap, and a slow client cut off.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendJobEvent,
  DeviceStateLifecycle,
  databaseWakeSource,
  EventHub,
  EventLog,
  type EventView,
  eventRoutes,
} from '../../bootstrap/index.js';
import { openDatabase } from '../../db/index.js';
import { type TestApi, testApi } from '../helpers/api.js';
import { backend } from '../helpers/db.js';
import { openSse } from '../helpers/sse.js';

let api: TestApi;
let log: EventLog;
let hub: EventHub;
let base: string;
const auth = (role: 'viewer' | 'operator' | 'admin') => ({ authorization: `Bearer ${api.tokens[role]}` });

beforeAll(async () => {
  let h: EventHub | undefined;
  api = await testApi({
    routes: [
      (a, ctx) =>
        eventRoutes({
          log: ctx.events,
          // the hub is made below, once the database exists; the route reads it per request
          get hub() {
            return h!;
          },
          heartbeatMs: 300,
          maxStreams: 4,
          maxBufferedBytes: 256 * 1024,
        })(a, ctx),
    ],
  });
  log = new EventLog(api.t.db);
  // The fallback poll is an hour: every delivery below must come from a notification.
  hub = new EventHub(log, { wake: databaseWakeSource(api.t), pollMs: 3_600_000, gapWaitMs: 300 });
  h = hub;
  await hub.start();
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = api.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api/v1`;
});
afterAll(async () => {
  await hub?.stop();
  await api?.close();
});

const parse = (f: { data: string }) => JSON.parse(f.data) as EventView;

describe(`event log (${backend})`, () => {
  it('writes an event with the change in one transaction: a rolled-back change leaves none', async () => {
    const before = await log.lastId();
    await expect(
      api.t.db.transaction().execute(async (tx) => {
        await log.append({ type: 'job.state', job: 'j-rollback', data: { to: 'running' } }, tx);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await log.read({ after: before, limit: 10, job: 'j-rollback' })).toEqual([]);
  });

  it('records progress reports and the state moves they cause, beside the progress row', async () => {
    expect((await api.req({ method: 'PUT', url: '/api/v1/devices/EV-1', payload: {} })).statusCode).toBe(201);
    const lifecycle = new DeviceStateLifecycle(api.t.db, { events: log });
    const from = await log.lastId();
    await lifecycle.onProgress({
      serial: 'EV-1',
      at: new Date(),
      progressType: 'bootstrap-initiated',
      tlsIdentity: 'EV-1',
    });
    await lifecycle.onProgress({
      serial: 'EV-1',
      at: new Date(),
      progressType: 'boot-image-installed-rebooting',
      message: 'rebooting',
      tlsIdentity: 'EV-1',
    });
    const got = await log.read({ after: from, limit: 10, serial: 'EV-1' });
    expect(got.map((e) => [e.type, e.data])).toEqual([
      ['device.progress', { progressType: 'bootstrap-initiated' }],
      ['device.state', { from: 'registered', to: 'bootstrapping', reason: 'progress bootstrap-initiated' }],
      ['device.progress', { progressType: 'boot-image-installed-rebooting', message: 'rebooting' }],
    ]);
  });
});

describe(`GET /api/v1/events (${backend})`, () => {
  it('refuses a stream without a valid token, and malformed filters and ids', async () => {
    const none = await openSse(`${base}/events`, {});
    expect(none.status).toBe(401);
    none.close();
    const bad = await openSse(`${base}/events?type=device.**`, auth('viewer'));
    expect(bad.status).toBe(400);
    bad.close();
    const badId = await openSse(`${base}/events`, { ...auth('viewer'), 'last-event-id': 'x1' });
    expect(badId.status).toBe(400);
    badId.close();
  });

  it('streams live events to a viewer with ids, types and heartbeats', async () => {
    const s = await openSse(`${base}/events`, auth('viewer'));
    expect(s.status).toBe(200);
    expect(String(s.headers['content-type'])).toMatch(/^text\/event-stream/);
    await api.req({ method: 'PUT', url: '/api/v1/devices/EV-2', payload: { hwModel: 'bf3' } });
    await appendJobEvent(log, { type: 'job.created', job: 'job-1', data: { kind: 'provision', devices: 1 } });
    const [a, b] = await s.take(2);
    expect(a?.event).toBe('device.updated');
    expect(parse(a!)).toMatchObject({
      type: 'device.updated',
      serial: 'EV-2',
      data: { created: true, fields: ['hwModel'] },
    });
    expect(a?.id).toBe(parse(a!).id);
    expect(b?.event).toBe('job.created');
    expect(BigInt(b!.id!)).toBeGreaterThan(BigInt(a!.id!));
    const start = Date.now();
    while (!s.comments.includes('keepalive') && Date.now() - start < 10_000)
      await new Promise((r) => setTimeout(r, 50));
    expect(s.comments).toContain('keepalive');
    s.close();
  });

  it('resumes after Last-Event-ID or ?after= with exactly the events it missed, then goes live', async () => {
    const first = await log.append({ type: 'job.state', job: 'job-r', data: { to: 'queued' } });
    const second = await log.append({ type: 'job.state', job: 'job-r', data: { to: 'running' } });
    const third = await log.append({ type: 'job.state', job: 'job-r', data: { to: 'succeeded' } });
    const s = await openSse(`${base}/events`, { ...auth('viewer'), 'last-event-id': first.id });
    const caught = await s.take(2);
    expect(caught.map((f) => f.id)).toEqual([second.id, third.id]);
    const fourth = await log.append({ type: 'job.state', job: 'job-r', data: { to: 'cancelled' } });
    expect((await s.take(1))[0]?.id).toBe(fourth.id);
    s.close();
    const q = await openSse(`${base}/events?after=${second.id}&job=job-r`, auth('viewer'));
    expect((await q.take(2)).map((f) => f.id)).toEqual([third.id, fourth.id]);
    q.close();
  });

  it('filters by serial, job and type patterns', async () => {
    const bySerial = await openSse(`${base}/events?serial=EV-F`, auth('viewer'));
    const byJob = await openSse(`${base}/events?job=job-f`, auth('viewer'));
    const byType = await openSse(`${base}/events?type=job.device.*,device.deleted`, auth('viewer'));
    await log.append({ type: 'job.state', job: 'job-other', data: { to: 'running' } });
    await api.req({ method: 'PUT', url: '/api/v1/devices/EV-F', payload: {} });
    await appendJobEvent(log, {
      type: 'job.device.step',
      job: 'job-f',
      serial: 'EV-F',
      data: { step: 'preflight', attempt: 1, result: 'done' },
    });
    await log.append({ type: 'job.state', job: 'job-f', data: { to: 'running' } });
    await api.req({ method: 'DELETE', url: '/api/v1/devices/EV-F' });
    expect((await bySerial.take(3)).map((f) => f.event)).toEqual([
      'device.updated',
      'job.device.step',
      'device.deleted',
    ]);
    expect((await byJob.take(2)).map((f) => f.event)).toEqual(['job.device.step', 'job.state']);
    expect((await byType.take(2)).map((f) => f.event)).toEqual(['job.device.step', 'device.deleted']);
    // Nothing else was queued: the next frame each sees is a fresh sentinel.
    await api.req({ method: 'PUT', url: '/api/v1/devices/EV-F', payload: {} });
    await log.append({ type: 'job.state', job: 'job-f', data: { to: 'succeeded' } });
    await api.req({ method: 'DELETE', url: '/api/v1/devices/EV-F' });
    expect((await bySerial.take(1))[0]?.event).toBe('device.updated');
    expect((await byJob.take(1))[0]?.event).toBe('job.state');
    expect((await byType.take(1))[0]?.event).toBe('device.deleted');
    for (const s of [bySerial, byJob, byType]) s.close();
  });

  it('holds a later id back while an earlier one may still commit, then delivers both in order', async () => {
    const s = await openSse(`${base}/events?job=job-gap`, auth('viewer'));
    // A rolled-back append leaves a permanent gap in the ids; the hub waits gapWaitMs, then moves on.
    await expect(
      api.t.db.transaction().execute(async (tx) => {
        await log.append({ type: 'job.state', job: 'job-gap', data: { to: 'lost' } }, tx);
        throw new Error('roll back');
      }),
    ).rejects.toThrow();
    const after = await log.append({ type: 'job.state', job: 'job-gap', data: { to: 'kept' } });
    const [f] = await s.take(1);
    expect(f?.id).toBe(after.id);
    s.close();
  });

  it.runIf(backend === 'postgres')('delivers an id that commits after a larger one, before it', async () => {
    const s = await openSse(`${base}/events?job=job-late`, auth('viewer'));
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let earlyId = '';
    const slow = api.t.db.transaction().execute(async (tx) => {
      earlyId = (await log.append({ type: 'job.state', job: 'job-late', data: { to: 'first' } }, tx)).id;
      await held;
    });
    while (!earlyId) await new Promise((r) => setTimeout(r, 10));
    const late = await log.append({ type: 'job.state', job: 'job-late', data: { to: 'second' } });
    expect(BigInt(late.id)).toBeGreaterThan(BigInt(earlyId));
    release();
    await slow;
    expect((await s.take(2)).map((f) => f.id)).toEqual([earlyId, late.id]);
    s.close();
  });

  it.runIf(backend === 'postgres')(
    "wakes another replica's tail through LISTEN/NOTIFY, without polling",
    async () => {
      const other = await openDatabase({ databaseUrl: api.t.url as string, poolSize: 2 });
      const otherHub = new EventHub(new EventLog(other.db), {
        wake: databaseWakeSource(other),
        pollMs: 3_600_000,
      });
      try {
        await otherHub.start();
        const got: EventView[] = [];
        otherHub.subscribe((batch) => got.push(...batch));
        const e = await log.append({ type: 'job.state', job: 'job-replica', data: { to: 'running' } });
        for (const end = Date.now() + 10_000; got.length === 0 && Date.now() < end; )
          await new Promise((r) => setTimeout(r, 20));
        expect(got.map((x) => x.id)).toEqual([e.id]);
      } finally {
        await otherHub.stop();
        await other.close();
      }
    },
  );

  it('caps concurrent streams per process with API_ERR_TOO_MANY_STREAMS', async () => {
    // Streams closed by earlier tests free their places once the server sees the close.
    const deadline = Date.now() + 10_000;
    let open: Awaited<ReturnType<typeof openSse>>[] = [];
    for (;;) {
      for (let i = 0; i < 4; i++) open.push(await openSse(`${base}/events`, auth('viewer')));
      if (open.every((s) => s.status === 200) || Date.now() > deadline) break;
      for (const s of open) s.close();
      open = [];
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(open.map((s) => s.status)).toEqual([200, 200, 200, 200]);
    const fifth = await openSse(`${base}/events`, auth('viewer'));
    expect(fifth.status).toBe(503);
    fifth.close();
    for (const s of open) s.close();
    let again = await openSse(`${base}/events`, auth('viewer'));
    while (again.status !== 200 && Date.now() < deadline) {
      again.close();
      await new Promise((r) => setTimeout(r, 50));
      again = await openSse(`${base}/events`, auth('viewer'));
    }
    expect(again.status).toBe(200);
    again.close();
  });

  it('cuts off a client that stops reading instead of buffering for it', async () => {
    const url = new URL(`${base}/events?job=job-slow`);
    // Streams of earlier tests detach once the server sees their close.
    for (const end = Date.now() + 10_000; hub.subscribers > 0 && Date.now() < end; )
      await new Promise((r) => setTimeout(r, 50));
    const attached = hub.subscribers;
    expect(attached).toBe(0);
    const sock = connect(Number(url.port), url.hostname);
    await once(sock, 'connect');
    sock.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: Bearer ${api.tokens.viewer}\r\n\r\n`,
    );
    await once(sock, 'data');
    for (const end = Date.now() + 10_000; hub.subscribers === 0 && Date.now() < end; )
      await new Promise((r) => setTimeout(r, 20));
    sock.pause(); // reads nothing more: the kernel buffers fill, then the server's
    expect(hub.subscribers).toBe(attached + 1);
    const big = 'x'.repeat(64 * 1024);
    let n = 0;
    // 64 KiB events until the server gives up on the client (the cap: 64 MiB, far past any socket buffer).
    while (hub.subscribers > attached && n < 1024) {
      await api.t.db.transaction().execute(async (tx) => {
        for (let i = 0; i < 8; i++)
          await log.append({ type: 'job.state', job: 'job-slow', data: { big } }, tx);
      });
      n += 8;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(hub.subscribers).toBe(attached);
    expect(n).toBeLessThan(1024);
    sock.destroy();
  }, 180_000);
});
