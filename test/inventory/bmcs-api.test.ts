/**
 * `/api/v1/bmcs` over `app.inject()` on a real database (PGlite, or PostgreSQL
 * with DATABASE_URL): CRUD, the validation table (nothing changes on a 400),
 * roles, the audit log, passwords never shown or logged and sealed at rest,
 * devices naming their BMC, and `check` against an emulated BMC over real TLS.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isForeignKeyViolation } from '../../bootstrap/routes/devices.js';
import { FAST_CHECK, type InventoryApi, inventoryApi, selfSignedTls, tlsEmulator } from './helpers.js';

const PASSWORD = 'Sup3r-Secret-BMC-pw';

let t: InventoryApi;
let ca: string;
beforeAll(async () => {
  t = await inventoryApi();
  ca = (await selfSignedTls()).cert;
});
afterAll(async () => {
  await t.close();
});

async function counts() {
  const b = await t.t.db
    .selectFrom('bmcs')
    .select((e) => e.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  const d = await t.t.db
    .selectFrom('devices')
    .select((e) => e.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  const a = await t.t.db
    .selectFrom('audit_log')
    .select((e) => e.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return { bmcs: Number(b.n), devices: Number(d.n), audit: Number(a.n) };
}

const put = (id: string, body: unknown, as: 'admin' | 'operator' | 'viewer' | null = 'operator') =>
  t.req({ method: 'PUT', url: `/api/v1/bmcs/${id}`, payload: body as object, as });

describe('BMC inventory CRUD', () => {
  it('creates, reads, updates (keeping the password), lists by label in pages and deletes', async () => {
    const created = await put('bmc-a', {
      address: 'https://10.0.0.5:8443/',
      username: 'root',
      password: PASSWORD,
      caCertificate: ca,
      auth: 'session',
      profile: 'bluefield',
      system: 'Bluefield',
      labels: { rack: 'r1', site: 'lab' },
    });
    expect(created.statusCode).toBe(201);
    const v = created.json();
    expect(v).toMatchObject({
      id: 'bmc-a',
      address: 'https://10.0.0.5:8443',
      username: 'root',
      passwordSet: true,
      insecure: false,
      auth: 'session',
      profile: 'bluefield',
      system: 'Bluefield',
      labels: { rack: 'r1', site: 'lab' },
    });
    expect(v.caCertificate).toContain('-----BEGIN CERTIFICATE-----');
    expect(v).not.toHaveProperty('password');

    // Update without a password keeps the stored one.
    const updated = await put('bmc-a', { address: 'https://10.0.0.5', username: 'admin', insecure: true });
    expect(updated.statusCode).toBe(200);
    expect(updated.json()).toMatchObject({
      address: 'https://10.0.0.5',
      username: 'admin',
      insecure: true,
      auth: 'auto',
    });
    expect(updated.json()).not.toHaveProperty('caCertificate');
    expect((await t.store.target('bmc-a'))?.password).toBe(PASSWORD);
    // A new password replaces it.
    expect(
      (
        await put('bmc-a', {
          address: 'https://10.0.0.5',
          username: 'admin',
          password: 'other-pw',
          labels: { rack: 'r1', site: 'lab' },
        })
      ).statusCode,
    ).toBe(200);
    expect((await t.store.target('bmc-a'))?.password).toBe('other-pw');

    for (const [id, rack] of [
      ['bmc-b', 'r1'],
      ['bmc-c', 'r2'],
      ['bmc-d', 'r1'],
    ] as const)
      expect(
        (await put(id, { address: `https://${id}.lab`, username: 'u', password: 'p', labels: { rack } }))
          .statusCode,
      ).toBe(201);

    const viewer = await t.req({ method: 'GET', url: '/api/v1/bmcs/bmc-b', as: 'viewer' });
    expect(viewer.statusCode).toBe(200);
    expect(viewer.json().address).toBe('https://bmc-b.lab');

    // Label filter, two per page.
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await t.req({
        method: 'GET',
        url: `/api/v1/bmcs?label=rack=r1&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        as: 'viewer',
      });
      expect(page.statusCode).toBe(200);
      ids.push(...page.json().items.map((b: { id: string }) => b.id));
      cursor = page.json().nextCursor;
    } while (cursor);
    expect(ids).toEqual(['bmc-a', 'bmc-b', 'bmc-d']);
    const both = await t.req({
      method: 'GET',
      url: '/api/v1/bmcs?label=rack=r1&label=site=lab',
      as: 'viewer',
    });
    expect(both.json().items.map((b: { id: string }) => b.id)).toEqual(['bmc-a']);
    const bad = await t.req({ method: 'GET', url: '/api/v1/bmcs?cursor=%21%21', as: 'viewer' });
    expect(bad.statusCode).toBe(400);

    expect((await t.req({ method: 'DELETE', url: '/api/v1/bmcs/bmc-c' })).statusCode).toBe(204);
    expect((await t.req({ method: 'GET', url: '/api/v1/bmcs/bmc-c' })).statusCode).toBe(404);
    const again = await t.req({ method: 'DELETE', url: '/api/v1/bmcs/bmc-c' });
    expect(again.statusCode).toBe(404);
    expect(again.json().code).toBe('API_ERR_NOT_FOUND');

    const actions = await t.t.db
      .selectFrom('audit_log')
      .select(['action', 'target', 'actor', 'detail'])
      .where('action', 'like', 'bmc.%')
      .orderBy('id')
      .execute();
    expect(actions.slice(0, 3).map((a) => [a.action, a.target, a.actor])).toEqual([
      ['bmc.create', 'bmc-a', 'test-operator'],
      ['bmc.update', 'bmc-a', 'test-operator'],
      ['bmc.update', 'bmc-a', 'test-operator'],
    ]);
    expect(actions[1]!.detail).toMatchObject({ passwordChanged: false });
    expect(actions[2]!.detail).toMatchObject({ passwordChanged: true });
    expect(actions.at(-1)).toMatchObject({ action: 'bmc.delete', target: 'bmc-c' });
    // One record per change: the route's own, not a second one from the audit hook.
    const hookRows = await t.t.db
      .selectFrom('audit_log')
      .select('action')
      .where('action', 'in', ['putBmc', 'deleteBmc', 'checkBmc'])
      .execute();
    expect(hookRows).toEqual([]);
  });

  it('seals the password: the stored bytes are not it, and open only with the BMC id as associated data', async () => {
    expect(
      (await put('sealed', { address: 'https://sealed.lab', username: 'root', password: PASSWORD }))
        .statusCode,
    ).toBe(201);
    const row = await t.t.db
      .selectFrom('bmcs')
      .select(['password_sealed'])
      .where('id', '=', 'sealed')
      .executeTakeFirstOrThrow();
    const bytes = Buffer.from(row.password_sealed);
    expect(bytes.includes(Buffer.from(PASSWORD))).toBe(false);
    expect(bytes.length).toBe(12 + Buffer.byteLength(PASSWORD) + 16);
    expect(t.box.openString(bytes, 'bmc:sealed')).toBe(PASSWORD);
    expect(() => t.box.openString(bytes, 'bmc:other')).toThrow(/could not be decrypted/);
  });

  it('enforces roles: viewers read, operators edit, no token is 401', async () => {
    const body = { address: 'https://r.lab', username: 'u', password: 'p' };
    expect((await put('roles', body, 'viewer')).json().code).toBe('API_ERR_FORBIDDEN');
    expect((await put('roles', body, null)).json().code).toBe('API_ERR_UNAUTHENTICATED');
    expect((await t.req({ method: 'POST', url: '/api/v1/bmcs/sealed/check', as: 'viewer' })).statusCode).toBe(
      403,
    );
    expect((await t.req({ method: 'DELETE', url: '/api/v1/bmcs/sealed', as: 'viewer' })).statusCode).toBe(
      403,
    );
    expect((await t.req({ method: 'GET', url: '/api/v1/bmcs', as: null })).statusCode).toBe(401);
    expect((await put('roles', body, 'admin')).statusCode).toBe(201);
  });
});

describe('BMC validation', () => {
  const good = { address: 'https://10.1.1.1', username: 'root', password: 'pw' };
  const cases: [string, string, unknown, string][] = [
    ['http address', 'v1', { ...good, address: 'http://10.1.1.1' }, 'API_ERR_VALIDATION'],
    ['address with a path', 'v1', { ...good, address: 'https://10.1.1.1/redfish/v1' }, 'API_ERR_BAD_REQUEST'],
    ['address with a query', 'v1', { ...good, address: 'https://10.1.1.1/?x=1' }, 'API_ERR_BAD_REQUEST'],
    ['address with credentials', 'v1', { ...good, address: 'https://u:p@10.1.1.1' }, 'API_ERR_BAD_REQUEST'],
    ['address not a URL', 'v1', { ...good, address: 'https://[zz' }, 'API_ERR_BAD_REQUEST'],
    ['address port out of range', 'v1', { ...good, address: 'https://h:70000' }, 'API_ERR_BAD_REQUEST'],
    ['no address', 'v1', { username: 'u', password: 'p' }, 'API_ERR_VALIDATION'],
    ['empty username', 'v1', { ...good, username: '' }, 'API_ERR_VALIDATION'],
    ['username with a newline', 'v1', { ...good, username: 'a\nb' }, 'API_ERR_VALIDATION'],
    ['password too long', 'v1', { ...good, password: 'x'.repeat(257) }, 'API_ERR_VALIDATION'],
    ['no password on create', 'v1', { address: 'https://h', username: 'u' }, 'API_ERR_BAD_REQUEST'],
    ['number as password', 'v1', { ...good, password: 1234 }, 'API_ERR_VALIDATION'],
    ['caCertificate not PEM', 'v1', { ...good, caCertificate: 'hello' }, 'API_ERR_BAD_REQUEST'],
    [
      'caCertificate a key',
      'v1',
      { ...good, caCertificate: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' },
      'API_ERR_BAD_REQUEST',
    ],
    [
      'caCertificate garbage in armour',
      'v1',
      { ...good, caCertificate: '-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n' },
      'API_ERR_BAD_REQUEST',
    ],
    [
      'caCertificate and insecure',
      'v1',
      { ...good, caCertificate: 'PEM', insecure: true },
      'API_ERR_BAD_REQUEST',
    ],
    ['insecure as a string', 'v1', { ...good, insecure: 'true' }, 'API_ERR_VALIDATION'],
    ['unknown auth', 'v1', { ...good, auth: 'digest' }, 'API_ERR_VALIDATION'],
    ['unknown vendor profile', 'v1', { ...good, profile: 'acme' }, 'API_ERR_VALIDATION'],
    ['system with a slash', 'v1', { ...good, system: 'a/b' }, 'API_ERR_VALIDATION'],
    ['bad label key', 'v1', { ...good, labels: { 'bad key': 'x' } }, 'API_ERR_VALIDATION'],
    ['label value not a string', 'v1', { ...good, labels: { k: 1 } }, 'API_ERR_VALIDATION'],
    ['unknown field', 'v1', { ...good, passwordSet: true }, 'API_ERR_VALIDATION'],
    ['bad id', 'bad%20id', good, 'API_ERR_VALIDATION'],
    // The same faults on an existing BMC leave it as it was.
    ['update: http address', 'exists', { ...good, address: 'http://x' }, 'API_ERR_VALIDATION'],
    ['update: bad PEM', 'exists', { ...good, caCertificate: 'nope' }, 'API_ERR_BAD_REQUEST'],
    ['update: bad profile', 'exists', { ...good, profile: 'nope' }, 'API_ERR_VALIDATION'],
  ];

  it.each(cases)('%s → 400 %s… and nothing changes', async (_name, id, body, code) => {
    if (id === 'exists' && (await t.req({ method: 'GET', url: '/api/v1/bmcs/exists' })).statusCode === 404)
      expect(
        (await put('exists', { address: 'https://keep.lab', username: 'keep', password: 'keep-pw' }))
          .statusCode,
      ).toBe(201);
    const before = await counts();
    const snapshot = await t.t.db.selectFrom('bmcs').selectAll().orderBy('id').execute();
    const r = await put(id, body);
    expect(r.statusCode).toBe(400);
    expect(r.headers['content-type']).toContain('application/problem+json');
    expect(r.json().code).toBe(code);
    expect(await counts()).toEqual(before);
    expect(await t.t.db.selectFrom('bmcs').selectAll().orderBy('id').execute()).toEqual(snapshot);
  });
});

describe('devices name their BMC', () => {
  it('accepts an existing BMC, refuses an unknown one, filters by it, and keeps a named BMC from deletion', async () => {
    expect(
      (await put('dev-bmc', { address: 'https://dev-bmc.lab', username: 'u', password: 'p' })).statusCode,
    ).toBe(201);
    const before = await counts();
    const unknown = await t.req({ method: 'PUT', url: '/api/v1/devices/DPU-X1', payload: { bmc: 'nope' } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().code).toBe('API_ERR_UNKNOWN_BMC');
    expect(await counts()).toEqual(before);

    const d = await t.req({ method: 'PUT', url: '/api/v1/devices/DPU-X1', payload: { bmc: 'dev-bmc' } });
    expect(d.statusCode).toBe(201);
    expect(d.json().bmc).toBe('dev-bmc');
    expect(
      (await t.req({ method: 'PUT', url: '/api/v1/devices/DPU-X2', payload: {} })).json().bmc,
    ).toBeNull();
    expect((await t.req({ method: 'GET', url: '/api/v1/devices/DPU-X1', as: 'viewer' })).json().bmc).toBe(
      'dev-bmc',
    );
    const listed = await t.req({ method: 'GET', url: '/api/v1/devices?bmc=dev-bmc', as: 'viewer' });
    expect(listed.json().items.map((x: { serial: string }) => x.serial)).toEqual(['DPU-X1']);

    const inUse = await t.req({ method: 'DELETE', url: '/api/v1/bmcs/dev-bmc' });
    expect(inUse.statusCode).toBe(409);
    expect(inUse.json()).toMatchObject({ code: 'API_ERR_BMC_IN_USE', devices: ['DPU-X1'] });
    expect((await t.req({ method: 'GET', url: '/api/v1/bmcs/dev-bmc' })).statusCode).toBe(200);

    // The foreign key holds even past the route's own check (what its race path relies on).
    const fk = await t.store.delete('dev-bmc').catch((x: unknown) => x);
    // PostgreSQL 15 says 23503, newer ones (PGlite) 23001 for ON DELETE RESTRICT.
    expect(['23503', '23001']).toContain((fk as { code?: string }).code);
    expect(isForeignKeyViolation(fk)).toBe(true);
    // Clearing the device's BMC lets it go.
    expect(
      (await t.req({ method: 'PUT', url: '/api/v1/devices/DPU-X1', payload: { bmc: null } })).json().bmc,
    ).toBeNull();
    expect((await t.req({ method: 'DELETE', url: '/api/v1/bmcs/dev-bmc' })).statusCode).toBe(204);
  });
});

describe('POST /bmcs/{id}/check against an emulated BMC over TLS', () => {
  it('stores a good report, and a failure with its code, as lastCheck', async () => {
    const { emu, ca: emuCa } = await tlsEmulator({ password: PASSWORD });
    try {
      expect(
        (await put('emu', { address: emu.url, username: 'admin', password: PASSWORD, caCertificate: emuCa }))
          .statusCode,
      ).toBe(201);
      const r = await t.req({ method: 'POST', url: '/api/v1/bmcs/emu/check' });
      expect(r.statusCode).toBe(200);
      const check = r.json();
      expect(check).toMatchObject({ ok: true, report: { bmc: emu.url } });
      expect(check.report.recommended).toEqual(expect.any(String));
      expect(check.report.strategies.length).toBeGreaterThan(0);
      const got = (await t.req({ method: 'GET', url: '/api/v1/bmcs/emu', as: 'viewer' })).json();
      expect(got.lastCheck).toEqual(check);

      // Wrong password: the check runs, fails with the BMC's verdict, and is stored.
      expect(
        (
          await put('emu', { address: emu.url, username: 'admin', password: 'wrong', caCertificate: emuCa })
        ).json(),
      ).not.toHaveProperty('lastCheck');
      const denied = (await t.req({ method: 'POST', url: '/api/v1/bmcs/emu/check' })).json();
      expect(denied).toMatchObject({ ok: false, error: { code: 'REDFISH_ERR_AUTH' } });
      expect((await t.req({ method: 'GET', url: '/api/v1/bmcs/emu' })).json().lastCheck).toEqual(denied);

      // No CA and not insecure: the BMC's self-signed certificate is refused.
      await put('emu', { address: emu.url, username: 'admin' });
      const tls = (await t.req({ method: 'POST', url: '/api/v1/bmcs/emu/check' })).json();
      expect(tls).toMatchObject({ ok: false, error: { code: 'REDFISH_ERR_TLS' } });
      // Explicit insecure opt-in works.
      await put('emu', {
        address: emu.url,
        username: 'admin',
        password: PASSWORD,
        insecure: true,
        auth: 'basic',
      });
      const insecure = (await t.req({ method: 'POST', url: '/api/v1/bmcs/emu/check' })).json();
      expect(insecure).toMatchObject({ ok: true, report: { authMode: 'basic' } });
    } finally {
      await emu.close();
    }
    const audits = await t.t.db
      .selectFrom('audit_log')
      .select(['detail'])
      .where('action', '=', 'bmc.check')
      .where('target', '=', 'emu')
      .orderBy('id')
      .execute();
    expect(audits.map((a) => a.detail)).toEqual([
      { ok: true },
      { ok: false, code: 'REDFISH_ERR_AUTH' },
      { ok: false, code: 'REDFISH_ERR_TLS' },
      { ok: true },
    ]);
  });

  it('bounds a check by its deadline when the BMC hangs', async () => {
    const slow = await inventoryApi({ check: { ...FAST_CHECK, timeoutMs: 1_000 } });
    // Each answer takes 2.5 s: under the per-request timeout, over the check's deadline.
    const { emu, ca: emuCa } = await tlsEmulator({
      faults: [{ path: /^\/redfish/, delayMs: 2_500, times: 100 }],
    });
    try {
      await slow.req({
        method: 'PUT',
        url: '/api/v1/bmcs/slow',
        payload: { address: emu.url, username: 'admin', password: 'secret', caCertificate: emuCa },
      });
      const r = await slow.req({ method: 'POST', url: '/api/v1/bmcs/slow/check' });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ ok: false, error: { code: 'REDFISH_ERR_DEADLINE' } });
    } finally {
      await emu.close();
      await slow.close();
    }
  });

  it('reports an unreachable BMC as a failed check, and 404 for no BMC', async () => {
    // A port that was free a moment ago: connection refused.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    await put('gone', { address: `https://127.0.0.1:${port}`, username: 'u', password: 'p', insecure: true });
    const r = await t.req({ method: 'POST', url: '/api/v1/bmcs/gone/check' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ ok: false, error: { code: 'REDFISH_ERR_CONNECTION' } });
    expect((await t.req({ method: 'POST', url: '/api/v1/bmcs/none/check' })).json().code).toBe(
      'API_ERR_NOT_FOUND',
    );
  });
});

describe('secrets stay secret', () => {
  it('no response body or log line holds a BMC password', async () => {
    // Every BMC the tests above stored, read back every way the API shows them.
    const list = await t.req({ method: 'GET', url: '/api/v1/bmcs?limit=500' });
    const bodies = [list.body];
    for (const b of list.json().items as { id: string }[])
      bodies.push((await t.req({ method: 'GET', url: `/api/v1/bmcs/${b.id}` })).body);
    const audit = await t.t.db.selectFrom('audit_log').selectAll().execute();
    const everything = [...bodies, JSON.stringify(audit), ...t.logs].join('\n');
    expect(t.logs.length).toBeGreaterThan(10);
    for (const pw of [PASSWORD, 'other-pw', 'keep-pw']) expect(everything).not.toContain(pw);
  });

  it('serves the routes in the OpenAPI document with operation ids', async () => {
    const doc = (await t.req({ method: 'GET', url: '/api/v1/openapi.json' })).json();
    const ops: Record<string, string> = {};
    for (const [path, item] of Object.entries(
      doc.paths as Record<string, Record<string, { operationId?: string }>>,
    ))
      for (const [verb, op] of Object.entries(item))
        if (op.operationId) ops[op.operationId] = `${verb} ${path}`;
    expect(ops).toMatchObject({
      putBmc: 'put /api/v1/bmcs/{id}',
      getBmc: 'get /api/v1/bmcs/{id}',
      listBmcs: 'get /api/v1/bmcs',
      deleteBmc: 'delete /api/v1/bmcs/{id}',
      checkBmc: 'post /api/v1/bmcs/{id}/check',
      importDevices: 'post /api/v1/devices:import',
    });
  });
});
