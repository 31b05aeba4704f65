/**
 * The audit log on the backend this run targets: every succeeded change is
 * recorded by one hook (failed ones are not), secrets never reach it, and
 * `GET /api/v1/audit` pages newest-first with actor/action/target filters,
 * for admins only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redact } from '../../bootstrap/index.js';
import { type TestApi, testApi } from '../helpers/api.js';
import { backend } from '../helpers/db.js';

let api: TestApi;
beforeAll(async () => {
  api = await testApi();
});
afterAll(async () => {
  await api?.close();
});

type Entry = { id: string; actor: string; action: string; target: string | null; detail: any };
const list = async (qs = '') => {
  const res = await api.req({ method: 'GET', url: `/api/v1/audit${qs}`, as: 'admin' });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { items: Entry[]; nextCursor: string | null };
};

describe(`audit log (${backend})`, () => {
  it('records each succeeded change with actor, action, target and the redacted body; not failed ones', async () => {
    const password = 'device-password-123';
    expect(
      (
        await api.req({
          method: 'PUT',
          url: '/api/v1/devices/AU-1',
          payload: { password, labels: { rack: 'r1' }, hwModel: 'bf3' },
        })
      ).statusCode,
    ).toBe(201);
    expect(
      (await api.req({ method: 'PUT', url: '/api/v1/devices/AU-1', payload: { nope: 1 } })).statusCode,
    ).toBe(400);
    const token = await api.req({
      method: 'POST',
      url: '/api/v1/tokens',
      payload: { role: 'viewer', name: 'ci' },
      as: 'admin',
    });
    expect(token.statusCode).toBe(201);
    const { items } = await list();
    expect(items.map((e) => [e.actor, e.action, e.target])).toEqual([
      ['test-admin', 'token.create', token.json().id],
      ['test-operator', 'device.create', 'AU-1'],
    ]);
    const [t, d] = items;
    expect(t?.detail).toMatchObject({ method: 'POST', status: 201, body: { role: 'viewer', name: 'ci' } });
    expect(d?.detail).toEqual({
      method: 'PUT',
      path: '/api/v1/devices/AU-1',
      status: 201,
      body: { password: '[redacted]', labels: { rack: 'r1' }, hwModel: 'bf3' },
    });
    const all = JSON.stringify(await api.t.db.selectFrom('audit_log').selectAll().execute());
    expect(all).not.toContain(password);
    expect(all).not.toContain(token.json().token);
  });

  it('is for admins only', async () => {
    for (const as of ['viewer', 'operator'] as const) {
      const res = await api.req({ method: 'GET', url: '/api/v1/audit', as });
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe('API_ERR_FORBIDDEN');
    }
  });

  it('filters by actor, action (exact or prefix*) and target, and pages with a cursor', async () => {
    for (const s of ['AU-2', 'AU-3', 'AU-4'])
      await api.req({ method: 'PUT', url: `/api/v1/devices/${s}`, payload: {} });
    await api.req({ method: 'DELETE', url: '/api/v1/devices/AU-2' });
    expect((await list('?action=device.delete')).items.map((e) => e.target)).toEqual(['AU-2']);
    expect((await list('?action=device.*')).items.map((e) => `${e.action} ${e.target}`)).toEqual([
      'device.delete AU-2',
      'device.create AU-4',
      'device.create AU-3',
      'device.create AU-2',
      'device.create AU-1',
    ]);
    expect((await list('?target=AU-2')).items.map((e) => e.action)).toEqual([
      'device.delete',
      'device.create',
    ]);
    expect((await list('?actor=test-admin')).items.map((e) => e.action)).toEqual(['token.create']);
    const seen: string[] = [];
    let cursor: string | null = '';
    let pages = 0;
    while (cursor !== null) {
      const page = await list(`?action=device.*&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.items.map((e) => e.target ?? ''));
      cursor = page.nextCursor;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(['AU-2', 'AU-4', 'AU-3', 'AU-2', 'AU-1']);
    const bad = await api.req({ method: 'GET', url: '/api/v1/audit?cursor=abc', as: 'admin' });
    expect(bad.statusCode).toBe(400);
  });
});

describe('redact', () => {
  it('hides secret-named fields at any depth and shortens long strings', () => {
    expect(
      redact({
        url: 'https://x',
        secret: 's',
        nested: { privateKey: 'k', password: 'p', token: 't', ok: 1, list: [{ apiKey: 'a' }] },
        big: 'y'.repeat(201),
      }),
    ).toEqual({
      url: 'https://x',
      secret: '[redacted]',
      nested: {
        privateKey: '[redacted]',
        password: '[redacted]',
        token: '[redacted]',
        ok: 1,
        list: [{ apiKey: '[redacted]' }],
      },
      big: '[201 chars]',
    });
  });
});
