/**
 * Revoked device identities on the backend this run targets: the operator API
 * (admin changes, viewer reads, strict fingerprint shape, a PEM certificate
 * hashed to the fingerprint the device authenticator computes, cursor pages,
 * every change audited), the per-process set the device listener asks (changed
 * before the answer leaves; another instance told by NOTIFY), and the import of
 * `revoked-idevids.txt` (idempotent, audited under the file's name); every change
 * an `idevid.*` event on the SSE stream, naming the device that presented the
 * IDevID, stored in the transaction of the change.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  databaseWakeSource,
  EventHub,
  EventLog,
  type EventView,
  eventRoutes,
  RevokedIdevids,
  revokedIdevidRoutes,
} from '../../bootstrap/index.js';
import { readRevokedFile } from '../../cli/commands/serve-pki.js';
import { createNotifier, LocalNotifier, type Notifier, openDatabase } from '../../db/index.js';
import { createLabPki, decodeArtifact, parseCertificate } from '../../pki/index.js';
import { type TestApi, testApi } from '../helpers/api.js';
import { backend } from '../helpers/db.js';
import { openSse } from '../helpers/sse.js';

const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-revoked-'));
let api: TestApi;
let live: RevokedIdevids;
let notifier: Notifier;
let idevidPem: string;
let idevidFp: string;
let keyPem: string;
let hub: EventHub;
let base: string;

/** A fingerprint made from a number: distinct, well-formed, sortable. */
const fp = (n: number) =>
  Buffer.alloc(32, 0)
    .fill(n, 31)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1:');

beforeAll(async () => {
  const lab = await createLabPki({ now: new Date(), devices: ['REV-1'] });
  const file = (p: string) => lab.files.find((f) => f.path === p)?.data.toString() as string;
  idevidPem = file('devices/REV-1/idevid.crt');
  keyPem = file('devices/REV-1/idevid.key');
  idevidFp = parseCertificate(decodeArtifact(idevidPem)).fingerprintSha256;
  api = await testApi({}, (t) => {
    notifier = createNotifier(t);
    live = new RevokedIdevids({ db: t.db, notifier, recheckMs: 3_600_000 });
    const log = new EventLog(t.db);
    // The hub's fallback poll is an hour: events reach the stream by notification.
    hub = new EventHub(log, { wake: databaseWakeSource(t), pollMs: 3_600_000, gapWaitMs: 300 });
    return [revokedIdevidRoutes({ revoked: live }), eventRoutes({ log, hub })];
  });
  await live.start();
  await hub.start();
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = api.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api/v1`;
}, 60_000);
afterAll(async () => {
  await hub?.stop();
  live?.stop();
  await notifier?.close();
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

const url = (f: string) => `/api/v1/revoked-idevids/${f}`;

describe(`revoked IDevIDs: operator API (${backend})`, () => {
  it('revokes by fingerprint (201, then 200 keeping time and author), in force here before the answer', async () => {
    const f = fp(1);
    expect(live.has(f)).toBe(false);
    const first = await api.req({ method: 'PUT', url: url(f), payload: { reason: 'RMA' }, as: 'admin' });
    expect(first.statusCode, first.body).toBe(201);
    expect(live.has(f)).toBe(true);
    expect(first.json()).toMatchObject({ fingerprint: f, reason: 'RMA', revokedBy: 'test-admin' });
    const again = await api.req({ method: 'PUT', url: url(f), payload: { reason: 'stolen' }, as: 'admin' });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ ...first.json(), reason: 'stolen' });
    const read = await api.req({ method: 'GET', url: url(f), as: 'viewer' });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(again.json());
    // An empty body is a revocation without a reason.
    const bare = await api.req({ method: 'PUT', url: url(fp(2)), payload: {}, as: 'admin' });
    expect(bare.statusCode, bare.body).toBe(201);
    expect(bare.json().reason).toBeNull();
  });

  it('takes only the one fingerprint shape (SHA-256, colon hex, lowercase)', async () => {
    const good = fp(0xab); // letters in it: upper case differs
    for (const bad of [
      good.toUpperCase(),
      good.replace(/:/g, ''),
      good.slice(3),
      `${good}:00`,
      good.replace(/:/g, '-'),
      `${good.slice(0, -1)}g`,
    ]) {
      const r = await api.req({ method: 'PUT', url: url(encodeURIComponent(bad)), payload: {}, as: 'admin' });
      expect(r.statusCode, bad).toBe(400);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.json().code, bad).toBe('API_ERR_VALIDATION');
    }
    const unknownField = await api.req({ method: 'PUT', url: url(good), payload: { why: 'x' }, as: 'admin' });
    expect(unknownField.json().code).toBe('API_ERR_VALIDATION');
    const ctl = await api.req({ method: 'PUT', url: url(good), payload: { reason: 'a\nb' }, as: 'admin' });
    expect(ctl.json().code).toBe('API_ERR_VALIDATION');
    expect(live.has(good)).toBe(false);
    expect(await api.t.db.selectFrom('revoked_idevids').select('fingerprint').execute()).toHaveLength(2);
  });

  it('revokes by PEM certificate: the fingerprint the device authenticator computes; anything else is a 400', async () => {
    const r = await api.req({
      method: 'POST',
      url: '/api/v1/revoked-idevids',
      payload: { certificate: idevidPem, reason: 'key leaked' },
      as: 'admin',
    });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().fingerprint).toBe(idevidFp);
    expect(live.has(idevidFp)).toBe(true);
    const again = await api.req({
      method: 'POST',
      url: '/api/v1/revoked-idevids',
      payload: { certificate: idevidPem },
      as: 'admin',
    });
    expect(again.statusCode).toBe(200);
    for (const certificate of [
      keyPem,
      `${idevidPem}${idevidPem}`,
      'not pem',
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    ]) {
      const bad = await api.req({
        method: 'POST',
        url: '/api/v1/revoked-idevids',
        payload: { certificate },
        as: 'admin',
      });
      expect(bad.statusCode, certificate.slice(0, 40)).toBe(400);
      expect(bad.json().code).toBe('API_ERR_BAD_REQUEST');
    }
  });

  it('lifts a revocation (204, then 404), in force here before the answer', async () => {
    const f = fp(2);
    expect(live.has(f)).toBe(true);
    const del = await api.req({ method: 'DELETE', url: url(f), as: 'admin' });
    expect(del.statusCode, del.body).toBe(204);
    expect(live.has(f)).toBe(false);
    const gone = await api.req({ method: 'DELETE', url: url(f), as: 'admin' });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().code).toBe('API_ERR_NOT_FOUND');
    expect((await api.req({ method: 'GET', url: url(f), as: 'viewer' })).statusCode).toBe(404);
  });

  it('lets a viewer read and only an admin change', async () => {
    for (const as of ['viewer', 'operator'] as const) {
      const put = await api.req({ method: 'PUT', url: url(fp(9)), payload: {}, as });
      expect(put.statusCode, as).toBe(403);
      expect(put.json().code).toBe('API_ERR_FORBIDDEN');
      const post = await api.req({
        method: 'POST',
        url: '/api/v1/revoked-idevids',
        payload: { certificate: idevidPem },
        as,
      });
      expect(post.statusCode, as).toBe(403);
      expect((await api.req({ method: 'DELETE', url: url(fp(1)), as })).statusCode, as).toBe(403);
      expect((await api.req({ method: 'GET', url: '/api/v1/revoked-idevids', as })).statusCode).toBe(200);
    }
    expect((await api.req({ method: 'GET', url: '/api/v1/revoked-idevids', as: null })).statusCode).toBe(401);
    expect(live.has(fp(9))).toBe(false);
    expect(live.has(fp(1))).toBe(true);
  });

  it('lists in cursor pages by fingerprint, and refuses a cursor it did not make', async () => {
    for (const n of [20, 21, 22, 23]) await live.revoke(fp(n), 'test', null);
    const all = (await api.t.db.selectFrom('revoked_idevids').select('fingerprint').execute())
      .map((r) => r.fingerprint)
      .sort();
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await api.req({
        method: 'GET',
        url: `/api/v1/revoked-idevids?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        as: 'viewer',
      });
      expect(r.statusCode, r.body).toBe(200);
      const body = r.json() as { items: Array<{ fingerprint: string }>; nextCursor: string | null };
      seen.push(...body.items.map((i) => i.fingerprint));
      cursor = body.nextCursor;
      if (cursor) expect(r.headers.link).toContain('rel="next"');
      pages++;
    } while (cursor);
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 2));
    for (const bad of ['abc', Buffer.from('zz').toString('base64url')]) {
      const r = await api.req({ method: 'GET', url: `/api/v1/revoked-idevids?cursor=${bad}`, as: 'viewer' });
      expect(r.statusCode, bad).toBe(400);
      expect(r.json().code).toBe('API_ERR_BAD_REQUEST');
    }
  });

  it('writes every change to the audit log (who, which fingerprint, the reason)', async () => {
    const rows = await api.t.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', 'like', 'idevid.%')
      .orderBy('id')
      .execute();
    const seen = rows.map((r) => `${r.actor} ${r.action} ${r.target}`);
    expect(seen).toEqual([
      `test-admin idevid.revoke ${fp(1)}`,
      `test-admin idevid.revoke ${fp(1)}`,
      `test-admin idevid.revoke ${fp(2)}`,
      `test-admin idevid.revoke ${idevidFp}`,
      `test-admin idevid.revoke ${idevidFp}`,
      `test-admin idevid.unrevoke ${fp(2)}`,
    ]);
    const detail = rows[0]?.detail as unknown as Record<string, unknown>;
    const d = typeof detail === 'string' ? JSON.parse(detail) : detail;
    expect(d).toMatchObject({ body: { reason: 'RMA' }, created: true, status: 201 });
  });
});

describe(`revoked IDevIDs: another instance on the same database (${backend})`, () => {
  it('hears a revocation and its lifting by NOTIFY, with no periodic re-check', async () => {
    // PostgreSQL: a second handle and its own LISTEN connection (another replica); PGlite: one
    // process, so the in-process notifier the service shares.
    const other =
      backend === 'postgres'
        ? await openDatabase({ databaseUrl: api.t.url as string, poolSize: 2 })
        : undefined;
    const otherNotifier = other ? createNotifier(other) : notifier;
    const b = new RevokedIdevids({
      db: other?.db ?? api.t.db,
      notifier: otherNotifier,
      recheckMs: 3_600_000,
    });
    await b.start();
    try {
      const f = fp(40);
      expect(b.has(f)).toBe(false);
      const until = async (want: boolean) => {
        const t0 = performance.now();
        while (b.has(f) !== want) {
          if (performance.now() - t0 > 1000) throw new Error(`instance B did not see ${want} within 1 s`);
          await new Promise((r) => setTimeout(r, 5));
        }
        return performance.now() - t0;
      };
      await live.revoke(f, 'test', 'x');
      const seenIn = await until(true);
      await live.unrevoke(f);
      const liftedIn = await until(false);
      expect(seenIn).toBeLessThan(1000);
      expect(liftedIn).toBeLessThan(1000);
    } finally {
      b.stop();
      if (other) {
        await otherNotifier.close();
        await other.close();
      }
    }
  });

  it('re-checks periodically when no notification comes', async () => {
    const b = new RevokedIdevids({ db: api.t.db, notifier: new LocalNotifier(), recheckMs: 50 });
    await b.start();
    try {
      const f = fp(41);
      // Written behind the service's back: no NOTIFY at all.
      await api.t.db.insertInto('revoked_idevids').values({ fingerprint: f, revoked_by: 'sql' }).execute();
      const t0 = performance.now();
      while (!b.has(f) && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
      expect(b.has(f)).toBe(true);
    } finally {
      b.stop();
    }
  });
});

describe(`revoked-idevids.txt import (${backend})`, () => {
  it('reads fingerprints in the forms people paste, and names the lines it skips', async () => {
    const f = fp(50);
    const upper = fp(51).toUpperCase();
    const bare = fp(52).replace(/:/g, '');
    writeFileSync(
      join(dir, 'revoked-idevids.txt'),
      [
        '# revoked DPUs',
        `${f}   # RMA 2026-11`,
        '',
        `SHA256 Fingerprint=${upper}`,
        bare,
        f,
        'not-a-fingerprint',
        `${f}:00`,
      ].join('\n'),
    );
    const r = await readRevokedFile(dir);
    expect(r.fingerprints).toEqual([f, fp(51), fp(52)]);
    expect(r.bad).toEqual([
      { line: 7, text: 'not-a-fingerprint' },
      { line: 8, text: `${f}:00` },
    ]);
    expect(await readRevokedFile(join(dir, 'nowhere'))).toMatchObject({ fingerprints: [], bad: [] });
  });

  it('imports once: lines already stored are left alone, each new one audited under the file', async () => {
    const { fingerprints, path } = await readRevokedFile(dir);
    const by = `file:${path}`;
    // One of them was revoked through the API before: kept as it was.
    await live.revoke(fp(51), 'test-admin', 'by hand');
    const first = await live.importList(fingerprints, by, `listed in ${path}`);
    expect(first.sort()).toEqual([fp(50), fp(52)]);
    for (const f of fingerprints) expect(live.has(f)).toBe(true);
    expect(await live.importList(fingerprints, by, `listed in ${path}`)).toEqual([]);
    expect(await live.get(fp(51))).toMatchObject({ revokedBy: 'test-admin', reason: 'by hand' });
    expect(await live.get(fp(50))).toMatchObject({ revokedBy: by, reason: `listed in ${path}` });
    const audited = await api.t.db
      .selectFrom('audit_log')
      .select(['actor', 'target'])
      .where('action', '=', 'idevid.revoke')
      .where('actor', '=', by)
      .orderBy('target')
      .execute();
    expect(audited).toEqual([
      { actor: by, target: fp(50) },
      { actor: by, target: fp(52) },
    ]);
    await expect(live.importList(['nope'], by, 'x')).rejects.toThrow(/not a SHA-256 fingerprint/);
  });
});

describe(`revoked IDevIDs: events (${backend})`, () => {
  const parse = (f: { data: string }) => JSON.parse(f.data) as EventView;
  const sse = (q: string) => openSse(`${base}/events?${q}`, { authorization: `Bearer ${api.tokens.viewer}` });

  it('streams each revoke (API, PEM, file) and lift as idevid.* with the serial of the device that presented it', async () => {
    // Devices as the bootstrap server records them: the fingerprint of the IDevID they presented.
    await api.t.db
      .insertInto('devices')
      .values([
        { serial: 'REV-EV-1', idevid_fingerprint: fp(60), updated_at: new Date() },
        { serial: 'REV-1', idevid_fingerprint: idevidFp, updated_at: new Date() },
      ])
      .execute();
    const before = await new EventLog(api.t.db).lastId();
    const all = await sse('type=idevid.*');
    const one = await sse('serial=REV-EV-1');
    const lifts = await sse('type=idevid.unrevoked');
    try {
      const put = (f: string, reason: string) =>
        api.req({ method: 'PUT', url: url(f), payload: { reason }, as: 'admin' });
      expect((await put(fp(60), 'RMA')).statusCode).toBe(201);
      expect((await put(fp(60), 'stolen')).statusCode).toBe(200);
      const pem = await api.req({
        method: 'POST',
        url: '/api/v1/revoked-idevids',
        payload: { certificate: idevidPem, reason: 'key leaked again' },
        as: 'admin',
      });
      expect(pem.statusCode, pem.body).toBe(200); // revoked by an earlier test: created false
      expect((await put(fp(61), 'no device known')).statusCode).toBe(201);
      expect(await live.importList([fp(62), fp(60)], 'file:/pki/revoked-idevids.txt', 'listed')).toEqual([
        fp(62),
      ]);
      expect((await api.req({ method: 'DELETE', url: url(fp(60)), as: 'admin' })).statusCode).toBe(204);
      // A lift of what is not revoked changes nothing and appends nothing.
      expect((await api.req({ method: 'DELETE', url: url(fp(63)), as: 'admin' })).statusCode).toBe(404);

      const seen = (await all.take(6)).map(parse);
      expect(seen.map((e) => [e.type, e.serial, e.data])).toEqual([
        [
          'idevid.revoked',
          'REV-EV-1',
          { fingerprint: fp(60), reason: 'RMA', revokedBy: 'test-admin', created: true },
        ],
        [
          'idevid.revoked',
          'REV-EV-1',
          { fingerprint: fp(60), reason: 'stolen', revokedBy: 'test-admin', created: false },
        ],
        [
          'idevid.revoked',
          'REV-1',
          { fingerprint: idevidFp, reason: 'key leaked again', revokedBy: 'test-admin', created: false },
        ],
        [
          'idevid.revoked',
          null,
          { fingerprint: fp(61), reason: 'no device known', revokedBy: 'test-admin', created: true },
        ],
        [
          'idevid.revoked',
          null,
          {
            fingerprint: fp(62),
            reason: 'listed',
            revokedBy: 'file:/pki/revoked-idevids.txt',
            created: true,
          },
        ],
        ['idevid.unrevoked', 'REV-EV-1', { fingerprint: fp(60) }],
      ]);
      expect((await one.take(3)).map((f) => f.event)).toEqual([
        'idevid.revoked',
        'idevid.revoked',
        'idevid.unrevoked',
      ]);
      expect((await lifts.take(1)).map((f) => parse(f).data)).toEqual([{ fingerprint: fp(60) }]);
      // Nothing more: the 404 lift appended nothing.
      const stored = await new EventLog(api.t.db).read({ after: before, types: ['idevid.*'], limit: 100 });
      expect(stored.map((e) => e.id)).toEqual(seen.map((e) => e.id));
    } finally {
      all.close();
      one.close();
      lifts.close();
    }
  });

  it('stores no change without its event: an append that fails leaves the table as it was', async () => {
    // Break the one appender for a moment (every event goes through it, migration 0080).
    await sql`alter function dpu_ztp_append_event(text, text, text, jsonb) rename to dpu_ztp_append_event_off`.execute(
      api.t.db,
    );
    try {
      await expect(live.revoke(fp(70), 'test-admin', 'x')).rejects.toThrow(/dpu_ztp_append_event/);
      await expect(live.unrevoke(fp(61))).rejects.toThrow(/dpu_ztp_append_event/);
      await expect(live.importList([fp(71)], 'file:x', 'x')).rejects.toThrow(/dpu_ztp_append_event/);
    } finally {
      await sql`alter function dpu_ztp_append_event_off(text, text, text, jsonb) rename to dpu_ztp_append_event`.execute(
        api.t.db,
      );
    }
    expect(await live.get(fp(70))).toBeUndefined();
    expect(await live.get(fp(71))).toBeUndefined();
    expect(await live.get(fp(61))).toBeDefined();
    // The audit rows of the failed import rolled back with it.
    const audited = await api.t.db
      .selectFrom('audit_log')
      .select('target')
      .where('actor', '=', 'file:x')
      .execute();
    expect(audited).toEqual([]);
  });
});
