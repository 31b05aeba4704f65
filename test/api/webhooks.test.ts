/**
 * Webhooks end to end on the backend this run targets: the admin API, secrets
 * sealed at rest, a real local receiver that checks X-Dpu-Ztp-Signature,
 * retries with backoff after 500s, the delivery log, giving up after the last
 * attempt, and two senders on one database never delivering twice.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventHub, EventLog, SecretBox, WebhookSender, webhookRoutes } from '../../bootstrap/index.js';
import { type TestApi, testApi } from '../helpers/api.js';
import { backend } from '../helpers/db.js';

const SECRET = 'a-receiver-secret-of-some-length';

/** What the receiver saw: one entry per POST. */
interface Seen {
  delivery: string;
  eventId: string;
  type: string;
  signatureOk: boolean;
  body: { id: string; type: string; serial: string | null; data: Record<string, unknown> };
}

/** A local HTTP receiver that verifies the signature as the README tells receivers to. */
async function receiver(answer: (n: number, seen: Seen) => number) {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`);
      const got = Buffer.from(String(req.headers['x-dpu-ztp-signature'] ?? ''));
      const s: Seen = {
        delivery: String(req.headers['x-dpu-ztp-delivery']),
        eventId: String(req.headers['x-dpu-ztp-event-id']),
        type: String(req.headers['x-dpu-ztp-event']),
        signatureOk: got.length === expected.length && timingSafeEqual(got, expected),
        body: JSON.parse(raw.toString('utf8')),
      };
      seen.push(s);
      res.statusCode = answer(seen.length, s);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let api: TestApi;
let box: SecretBox;
let log: EventLog;
let hub: EventHub;
const senders: WebhookSender[] = [];
const receivers: Array<{ close(): Promise<void> }> = [];

function sender(extra: Partial<ConstructorParameters<typeof WebhookSender>[0]> = {}) {
  const s = new WebhookSender({
    db: api.t.db,
    box,
    backoffBaseMs: 40,
    backoffMaxMs: 200,
    timeoutMs: 2_000,
    pollMs: 3_600_000,
    ...extra,
  });
  senders.push(s);
  return s;
}

beforeAll(async () => {
  box = new SecretBox(randomBytes(32));
  api = await testApi({ routes: [webhookRoutes({ box })] });
  log = new EventLog(api.t.db);
  hub = new EventHub(log, { pollMs: 50 });
  await hub.start();
});
afterAll(async () => {
  for (const s of senders) await s.stop();
  await hub?.stop();
  for (const r of receivers) await r.close();
  await api?.close();
});

describe(`webhooks API (${backend})`, () => {
  it('creates, reads, lists, replaces and deletes a webhook; admin only; the secret never comes back', async () => {
    const body = { url: 'https://hooks.example/x', secret: SECRET, events: ['device.*'] };
    for (const as of ['viewer', 'operator'] as const) {
      expect(
        (await api.req({ method: 'PUT', url: '/api/v1/webhooks/w1', payload: body, as })).statusCode,
      ).toBe(403);
      expect((await api.req({ method: 'GET', url: '/api/v1/webhooks', as })).statusCode).toBe(403);
    }
    const created = await api.req({ method: 'PUT', url: '/api/v1/webhooks/w1', payload: body, as: 'admin' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: 'w1', url: body.url, events: ['device.*'], secretSet: true });
    expect(created.body).not.toContain(SECRET);
    const row = await api.t.db
      .selectFrom('webhooks')
      .selectAll()
      .where('id', '=', 'w1')
      .executeTakeFirstOrThrow();
    expect(Buffer.from(row.secret_sealed).includes(Buffer.from(SECRET))).toBe(false);
    expect(box.openString(row.secret_sealed, 'webhook:w1')).toBe(SECRET);
    const replaced = await api.req({
      method: 'PUT',
      url: '/api/v1/webhooks/w1',
      payload: { url: 'http://hooks.example/y', secret: SECRET },
      as: 'admin',
    });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json().events).toEqual(['*']);
    const got = await api.req({ method: 'GET', url: '/api/v1/webhooks/w1', as: 'admin' });
    expect(got.json()).toMatchObject({ url: 'http://hooks.example/y', secretSet: true });
    const list = await api.req({ method: 'GET', url: '/api/v1/webhooks?limit=1', as: 'admin' });
    expect(list.json().items.map((w: { id: string }) => w.id)).toEqual(['w1']);
    expect((await api.req({ method: 'DELETE', url: '/api/v1/webhooks/w1', as: 'admin' })).statusCode).toBe(
      204,
    );
    expect((await api.req({ method: 'GET', url: '/api/v1/webhooks/w1', as: 'admin' })).json().code).toBe(
      'API_ERR_NOT_FOUND',
    );
    const audit = await api.t.db
      .selectFrom('audit_log')
      .select(['action', 'detail'])
      .where('target', '=', 'w1')
      .execute();
    expect(audit.map((a) => a.action)).toEqual(['webhook.put', 'webhook.put', 'webhook.delete']);
    expect(JSON.stringify(audit)).not.toContain(SECRET);
  });

  it('refuses non-HTTP URLs, URLs with credentials, short secrets and bad patterns', async () => {
    const put = (payload: Record<string, unknown>) =>
      api.req({ method: 'PUT', url: '/api/v1/webhooks/bad', payload, as: 'admin' });
    for (const [payload, code] of [
      [{ url: 'ftp://hooks.example/x', secret: SECRET }, 'API_ERR_BAD_REQUEST'],
      [{ url: 'file:///etc/passwd', secret: SECRET }, 'API_ERR_BAD_REQUEST'],
      [{ url: 'https://u:p@hooks.example/x', secret: SECRET }, 'API_ERR_BAD_REQUEST'],
      [{ url: 'not a url at all', secret: SECRET }, 'API_ERR_BAD_REQUEST'],
      [{ url: 'https://hooks.example/x', secret: 'short' }, 'API_ERR_VALIDATION'],
      [{ url: 'https://hooks.example/x', secret: SECRET, events: ['device.**'] }, 'API_ERR_VALIDATION'],
      [{ url: 'https://hooks.example/x', secret: SECRET, extra: 1 }, 'API_ERR_VALIDATION'],
    ] as const) {
      const res = await put(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().code).toBe(code);
    }
    expect(await api.t.db.selectFrom('webhooks').select('id').where('id', '=', 'bad').execute()).toEqual([]);
  });
});

describe(`webhook delivery (${backend})`, () => {
  it('signs each delivery, retries after 500s with backoff, and logs every attempt', async () => {
    const r = await receiver((n) => (n <= 2 ? 500 : 204));
    receivers.push(r);
    await api.req({
      method: 'PUT',
      url: '/api/v1/webhooks/retry',
      payload: { url: r.url, secret: SECRET, events: ['device.*'] },
      as: 'admin',
    });
    const s = sender();
    s.start(hub);
    await log.append({ type: 'job.state', job: 'not-for-this-hook', data: { to: 'running' } });
    expect((await api.req({ method: 'PUT', url: '/api/v1/devices/WH-1', payload: {} })).statusCode).toBe(201);
    await until('three attempts', () => r.seen.length >= 3);
    expect(r.seen.map((x) => x.signatureOk)).toEqual([true, true, true]);
    expect(new Set(r.seen.map((x) => x.delivery)).size).toBe(1);
    expect(r.seen[0]?.body).toMatchObject({
      type: 'device.updated',
      serial: 'WH-1',
      data: { created: true },
    });
    expect(r.seen[0]?.eventId).toBe(r.seen[0]?.body.id);
    let items: Array<Record<string, unknown>> = [];
    await until('the delivery marked delivered', async () => {
      items = (await api.req({ method: 'GET', url: '/api/v1/webhooks/retry/deliveries', as: 'admin' })).json()
        .items;
      return items[0]?.state === 'delivered';
    });
    expect(items).toHaveLength(1); // the job.state event matched no pattern: no delivery
    expect(items[0]).toMatchObject({
      eventType: 'device.updated',
      state: 'delivered',
      attempts: 3,
      lastStatus: 204,
      lastError: null,
      nextAttemptAt: null,
    });
    expect(r.seen).toHaveLength(3);
    for (const as of ['viewer', 'operator'] as const)
      expect(
        (await api.req({ method: 'GET', url: '/api/v1/webhooks/retry/deliveries', as })).statusCode,
      ).toBe(403);
    await api.req({ method: 'DELETE', url: '/api/v1/webhooks/retry', as: 'admin' });
    await s.stop();
  });

  it('gives up after the last attempt and records why', async () => {
    const r = await receiver(() => 500);
    receivers.push(r);
    await api.req({
      method: 'PUT',
      url: '/api/v1/webhooks/down',
      payload: { url: r.url, secret: SECRET, events: ['job.state'] },
      as: 'admin',
    });
    const s = sender({ maxAttempts: 3 });
    s.start(hub);
    await log.append({ type: 'job.state', job: 'j-down', data: { to: 'failed' } });
    let items: Array<Record<string, unknown>> = [];
    await until('the delivery marked failed', async () => {
      items = (
        await api.req({ method: 'GET', url: '/api/v1/webhooks/down/deliveries?state=failed', as: 'admin' })
      ).json().items;
      return items.length === 1;
    });
    expect(items[0]).toMatchObject({
      state: 'failed',
      attempts: 3,
      lastStatus: 500,
      lastError: 'the receiver answered 500',
    });
    expect(r.seen).toHaveLength(3);
    await api.req({ method: 'DELETE', url: '/api/v1/webhooks/down', as: 'admin' });
    await s.stop();
  });

  it('two senders on one database deliver each event exactly once', async () => {
    const r = await receiver(() => 200);
    receivers.push(r);
    await api.req({
      method: 'PUT',
      url: '/api/v1/webhooks/race',
      payload: { url: r.url, secret: SECRET, events: ['job.*'] },
      as: 'admin',
    });
    const a = sender({ batch: 3 });
    const b = sender({ batch: 3 });
    for (let i = 0; i < 30; i++)
      await log.append({ type: 'job.state', job: `race-${i}`, data: { to: 'running' } });
    a.start(hub);
    b.start(hub);
    await until('30 deliveries', async () => {
      const n = await api.t.db
        .selectFrom('webhook_deliveries')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('webhook', '=', 'race')
        .where('state', '=', 'delivered')
        .executeTakeFirstOrThrow();
      return Number(n.n) === 30;
    });
    expect(r.seen).toHaveLength(30);
    expect(new Set(r.seen.map((x) => x.eventId)).size).toBe(30);
    expect(r.seen.every((x) => x.signatureOk)).toBe(true);
  });
});
