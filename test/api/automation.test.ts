/**
 * What fleet automation relies on (README "Automating against the API"), on the backend
 * of the run (PGlite, or PostgreSQL with DATABASE_URL): ETag/If-Match lost-update
 * protection on devices, BMCs and profiles (412 API_ERR_PRECONDITION_FAILED, nothing
 * changed; without If-Match a PUT applies as before); cursor pages that neither skip
 * nor repeat a row while rows are inserted between page reads, with the next page in a
 * Link header too; RateLimit-* headers and a problem 429. (Idempotency-Key replay and
 * mismatch: test/jobs/jobs-api.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi } from '../helpers/api.js';
import { backend } from '../helpers/db.js';
import { scaledTimeout } from '../helpers/serve.js';
import { type InventoryApi, inventoryApi } from '../inventory/helpers.js';

let api: InventoryApi;
beforeAll(async () => {
  api = await inventoryApi();
}, scaledTimeout(120_000));
afterAll(async () => {
  await api?.close();
});

const json = { 'content-type': 'application/json' };

describe(`ETag / If-Match (${backend})`, () => {
  const cases = [
    {
      what: 'device',
      url: '/api/v1/devices/SN-ETAG-1',
      first: { labels: { rack: 'r1' } },
      mine: { labels: { rack: 'r2' } },
      theirs: { labels: { rack: 'r9' } },
      field: (b: any) => b.labels.rack,
    },
    {
      what: 'BMC',
      url: '/api/v1/bmcs/bmc-etag-1',
      first: { address: 'https://10.0.0.1', username: 'root', password: 'pw-1', insecure: true },
      mine: { address: 'https://10.0.0.2', username: 'root', insecure: true },
      theirs: { address: 'https://10.0.0.9', username: 'root', insecure: true },
      field: (b: any) => b.address,
    },
    {
      what: 'profile',
      url: '/api/v1/profiles/p-etag-1',
      first: { type: 'onboarding', configurationHandling: 'merge', configuration: 'a' },
      mine: { type: 'onboarding', configurationHandling: 'merge', configuration: 'b' },
      theirs: { type: 'onboarding', configurationHandling: 'merge', configuration: 'c' },
      field: (b: any) => b.configuration,
    },
  ];
  for (const c of cases) {
    it(`${c.what}: GET gives an ETag; a PUT with a stale If-Match is 412 and changes nothing`, async () => {
      const created = await api.req({ method: 'PUT', url: c.url, payload: c.first, headers: json });
      expect(created.statusCode, created.body).toBe(201);
      const read = await api.req({ method: 'GET', url: c.url, as: 'viewer' });
      const etag = read.headers.etag as string;
      expect(etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
      expect(created.headers.etag).toBe(etag);
      // Someone else updates it meanwhile (no If-Match: applies unconditionally, as before).
      const theirs = await api.req({ method: 'PUT', url: c.url, payload: c.theirs, headers: json });
      expect(theirs.statusCode).toBe(200);
      expect(theirs.headers.etag).not.toBe(etag);
      // My update based on the old read is refused, and theirs stays.
      const mine = await api.req({
        method: 'PUT',
        url: c.url,
        payload: c.mine,
        headers: { ...json, 'if-match': etag },
      });
      expect(mine.statusCode).toBe(412);
      expect(mine.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(mine.json().code).toBe('API_ERR_PRECONDITION_FAILED');
      const after = await api.req({ method: 'GET', url: c.url, as: 'viewer' });
      expect(c.field(after.json())).toBe(c.field(c.theirs));
      // With the current ETag (one of a list) it applies.
      const ok = await api.req({
        method: 'PUT',
        url: c.url,
        payload: c.mine,
        headers: { ...json, 'if-match': `"stale", ${after.headers.etag}` },
      });
      expect(ok.statusCode).toBe(200);
      expect(c.field(ok.json())).toBe(c.field(c.mine));
      // `If-Match: *` needs the resource to exist: it cannot create one.
      const star = await api.req({
        method: 'PUT',
        url: `${c.url}-new`,
        payload: c.first,
        headers: { ...json, 'if-match': '*' },
      });
      expect(star.statusCode).toBe(412);
      expect((await api.req({ method: 'GET', url: `${c.url}-new`, as: 'viewer' })).statusCode).toBe(404);
    });

    it(`${c.what}: a PUT with If-None-Match: * creates, and is 412 (nothing changed) once it exists`, async () => {
      const url = `${c.url}-create-only`;
      const createOnly = { ...json, 'if-none-match': '*' };
      const created = await api.req({ method: 'PUT', url, payload: c.first, headers: createOnly });
      expect(created.statusCode, created.body).toBe(201);
      const again = await api.req({ method: 'PUT', url, payload: c.theirs, headers: createOnly });
      expect(again.statusCode, again.body).toBe(412);
      expect(again.json()).toMatchObject({
        code: 'API_ERR_PRECONDITION_FAILED',
        detail: 'If-None-Match: *: the resource already exists; nothing was changed',
      });
      const now = await api.req({ method: 'GET', url, as: 'viewer' });
      expect(c.field(now.json())).toBe(c.field(c.first));
      // The current ETag in If-None-Match is refused the same way; a stale one lets the PUT apply.
      const etag = String(now.headers.etag);
      const same = await api.req({
        method: 'PUT',
        url,
        payload: c.theirs,
        headers: { ...json, 'if-none-match': etag },
      });
      expect(same.statusCode).toBe(412);
      const stale = await api.req({
        method: 'PUT',
        url,
        payload: c.mine,
        headers: { ...json, 'if-none-match': '"stale"' },
      });
      expect(stale.statusCode, stale.body).toBe(200);
      expect(c.field(stale.json())).toBe(c.field(c.mine));
    });

    it(`${c.what}: create-only PUTs racing for one new id: exactly one creates, the others are 412`, async () => {
      // Every body able to create (a BMC needs a password to be created).
      const bodies = [c.first, c.mine, c.theirs, c.first, c.mine, c.theirs].map((b) =>
        c.what === 'BMC' ? { password: 'pw-race', ...b } : b,
      );
      for (let round = 0; round < 3; round++) {
        const url = `${c.url}-race-${round}`;
        // At once: on PostgreSQL each in its own transaction, none of them seeing a row to lock.
        const answers = await Promise.all(
          bodies.map((payload) =>
            api.req({ method: 'PUT', url, payload, headers: { ...json, 'if-none-match': '*' } }),
          ),
        );
        const statuses = answers.map((a) => a.statusCode).sort();
        expect(statuses, answers.map((a) => a.body).join('\n')).toEqual([201, 412, 412, 412, 412, 412]);
        const winner = answers.find((a) => a.statusCode === 201);
        const now = await api.req({ method: 'GET', url, as: 'viewer' });
        expect(c.field(now.json())).toBe(c.field(winner?.json()));
      }
    });

    it(`${c.what}: plain PUTs racing for one new id: one creates, the others apply as changes (never a 500)`, async () => {
      const bodies = [c.first, c.mine, c.theirs, c.first, c.mine, c.theirs].map((b) =>
        c.what === 'BMC' ? { password: 'pw-race', ...b } : b,
      );
      for (let round = 0; round < 3; round++) {
        const url = `${c.url}-plain-race-${round}`;
        const answers = await Promise.all(
          bodies.map((payload) => api.req({ method: 'PUT', url, payload, headers: json })),
        );
        const statuses = answers.map((a) => a.statusCode).sort();
        expect(statuses, answers.map((a) => a.body).join('\n')).toEqual([200, 200, 200, 200, 200, 201]);
      }
    });
  }
});

describe(`cursor pagination under inserts (${backend})`, () => {
  it('reads every device once while devices are added before and after the cursor', async () => {
    const serial = (i: number) => `SN-PAGE-${String(i).padStart(3, '0')}`;
    // Even numbers exist at the start; odd ones are inserted while paging, on both sides of the cursor.
    for (let i = 0; i < 40; i += 2)
      await api.req({
        method: 'PUT',
        url: `/api/v1/devices/${serial(i)}`,
        payload: { labels: { page: 't' } },
        headers: json,
      });
    const seen: string[] = [];
    const inserted: string[] = [];
    let url = '/api/v1/devices?label=page=t&limit=6';
    for (let page = 0; page < 50; page++) {
      const res = await api.req({ method: 'GET', url, as: 'viewer' });
      expect(res.statusCode).toBe(200);
      const body = res.json() as { items: Array<{ serial: string }>; nextCursor: string | null };
      seen.push(...body.items.map((d) => d.serial));
      if (!body.nextCursor) {
        expect(res.headers.link).toBeUndefined();
        break;
      }
      // The Link header names the same next page.
      expect(res.headers.link).toBe(
        `</api/v1/devices?label=page%3Dt&limit=6&cursor=${body.nextCursor}>; rel="next"`,
      );
      // One row behind the cursor (already passed) and one ahead of it.
      const last = Number(body.items.at(-1)!.serial.slice(-3));
      for (const i of [last - 3, last + 3]) {
        if (i < 0 || i % 2 === 0 || inserted.includes(serial(i))) continue;
        await api.req({
          method: 'PUT',
          url: `/api/v1/devices/${serial(i)}`,
          payload: { labels: { page: 't' } },
          headers: json,
        });
        inserted.push(serial(i));
      }
      url = `/api/v1/devices?label=page=t&limit=6&cursor=${body.nextCursor}`;
    }
    // No row twice, every row present at the start exactly once, in order.
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(seen);
    for (let i = 0; i < 40; i += 2) expect(seen).toContain(serial(i));
    // Rows inserted ahead of the cursor are read; rows inserted behind it are not (and never twice).
    const ahead = inserted.filter((s) => seen.includes(s));
    expect(ahead.length).toBeGreaterThan(0);
    expect(inserted.length).toBeGreaterThan(ahead.length);
  });
});

describe('rate limit headers', () => {
  it(
    'counts down RateLimit-Remaining and answers a problem 429 with Retry-After',
    async () => {
      const small = await testApi({ rateLimitPerMinute: 3 });
      try {
        const remaining: string[] = [];
        for (let i = 0; i < 3; i++) {
          const r = await small.req({ method: 'GET', url: '/api/v1/profiles', as: 'viewer' });
          expect(r.statusCode).toBe(200);
          expect(r.headers['ratelimit-limit']).toBe('3');
          remaining.push(String(r.headers['ratelimit-remaining']));
          expect(Number(r.headers['ratelimit-reset'])).toBeGreaterThan(0);
        }
        expect(remaining).toEqual(['2', '1', '0']);
        const over = await small.req({ method: 'GET', url: '/api/v1/profiles', as: 'viewer' });
        expect(over.statusCode).toBe(429);
        expect(over.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(over.json().code).toBe('API_ERR_RATE_LIMITED');
        expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
      } finally {
        await small.close();
      }
    },
    scaledTimeout(60_000),
  );
});
