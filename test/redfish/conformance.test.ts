/**
 * `bmc emulate` speaks the Redfish protocol (DSP0266) as DMTF's validators check it: Name everywhere,
 * the root's Tasks link, accounts and roles, $metadata and odata, Allow/Cache-Control/Link headers, 405
 * with Allow, 412 on an unsupported OData-Version, typed Oem objects. The validators themselves are run by
 * hand (README); these checks keep the emulator from regressing in CI.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type BmcEmulator, EMULATOR_PERSONAS, startBmcEmulator } from '../../redfish/index.js';
import { FAST_EMULATOR } from './helpers.js';

let emu: BmcEmulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

const basic = `Basic ${Buffer.from('admin:secret').toString('base64')}`;
const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
  fetch(`${emu!.url}${path}`, { method, headers: { Authorization: basic, ...headers } });

/** Every resource reachable from the root through `@odata.id` links. */
async function crawl(): Promise<Map<string, Record<string, unknown>>> {
  const seen = new Map<string, Record<string, unknown>>();
  const queue = ['/redfish/v1/'];
  while (queue.length) {
    const p = queue.shift()!.replace(/\/$/, '') || '/';
    if (seen.has(p) || !p.startsWith('/redfish/v1') || p.includes('#')) continue;
    const res = await get(p);
    if (res.status !== 200) continue;
    const json = (await res.json()) as Record<string, unknown>;
    seen.set(p, json);
    const visit = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(visit);
      else if (v && typeof v === 'object')
        for (const [k, x] of Object.entries(v)) {
          if (k === '@odata.id' && typeof x === 'string') queue.push(x);
          else visit(x);
        }
    };
    visit(json);
  }
  return seen;
}

describe('emulator Redfish conformance', () => {
  it.each(Object.keys(EMULATOR_PERSONAS))(
    '%s: every typed resource has a Name; Oem objects are typed',
    async (p) => {
      emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: p as keyof typeof EMULATOR_PERSONAS });
      const all = await crawl();
      expect(all.size).toBeGreaterThan(10);
      for (const [path, json] of all) {
        if (path === '/redfish/v1/odata') continue;
        expect({ path, name: typeof json.Name }).toEqual({ path, name: 'string' });
        const oem = json.Oem as Record<string, Record<string, unknown>> | undefined;
        for (const v of Object.values(oem ?? {}))
          expect(v['@odata.type']).toMatch(/^#\w+\.v\d+_\d+_\d+\.\w+$/);
      }
      const root = all.get('/redfish/v1')!;
      expect(root.Tasks).toEqual({ '@odata.id': '/redfish/v1/TaskService' });
      expect(root.TaskService).toBeUndefined();
    },
  );

  it('accounts carry AccountTypes; the three predefined roles exist', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR });
    const acct = (await (await get('/redfish/v1/AccountService/Accounts/1')).json()) as Record<
      string,
      unknown
    >;
    expect(acct.AccountTypes).toEqual(['Redfish']);
    const roles = (await (await get('/redfish/v1/AccountService/Roles')).json()) as { Members: unknown[] };
    expect(roles.Members).toEqual(
      ['Administrator', 'Operator', 'ReadOnly'].map((r) => ({
        '@odata.id': `/redfish/v1/AccountService/Roles/${r}`,
      })),
    );
    const admin = (await (await get('/redfish/v1/AccountService/Roles/Administrator')).json()) as Record<
      string,
      unknown
    >;
    expect(admin).toMatchObject({ RoleId: 'Administrator', IsPredefined: true });
  });

  it('$metadata is CSDL referencing the schemas used; odata is the service document (both anonymous)', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'bluefield' });
    const meta = await fetch(`${emu.url}/redfish/v1/$metadata`);
    expect(meta.status).toBe(200);
    expect(meta.headers.get('content-type')).toMatch(/^application\/xml/);
    const xml = await meta.text();
    expect(xml).toContain('<EntityContainer Name="Service" Extends="ServiceRoot.v1_17_0.ServiceContainer"/>');
    for (const ns of [
      'ComputerSystem',
      'ManagerAccount',
      'Role',
      'TaskService',
      'UpdateService',
      'SoftwareInventory',
    ])
      expect(xml).toContain(`Uri="http://redfish.dmtf.org/schemas/v1/${ns}_v1.xml"`);
    expect(xml).toMatch(/<edmx:Include Namespace="ComputerSystem\.v1_\d+_\d+"\/>/);
    const odata = await fetch(`${emu.url}/redfish/v1/odata`);
    expect(odata.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = (await odata.json()) as { '@odata.context': string; value: { name: string; url: string }[] };
    expect(doc['@odata.context']).toBe('/redfish/v1/$metadata');
    expect(doc.value).toContainEqual({ name: 'Systems', kind: 'Singleton', url: '/redfish/v1/Systems' });
  });

  it('GET answers with Allow, Cache-Control and Link rel=describedby', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR });
    const sys = await get('/redfish/v1/Systems/DPU');
    expect(sys.headers.get('allow')).toBe('GET, HEAD, PATCH');
    expect(sys.headers.get('cache-control')).toBe('no-cache');
    expect(sys.headers.get('link')).toMatch(
      /^<http:\/\/redfish\.dmtf\.org\/schemas\/v1\/ComputerSystem\.v1_\d+_\d+\.json>; rel=describedby$/,
    );
    const root = await fetch(`${emu.url}/redfish/v1/`);
    expect(root.headers.get('allow')).toBe('GET, HEAD');
  });

  it('405 with Allow for methods a resource does not take; 412 for OData-Version 5.0', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR });
    for (const method of ['PUT', 'DELETE', 'POST', 'PATCH']) {
      const res = await get('/redfish/v1/', { 'Content-Type': 'application/json' }, method);
      expect({ method, status: res.status }).toEqual({ method, status: 405 });
      expect(res.headers.get('allow')).toBe('GET, HEAD');
      const body = (await res.json()) as { error: { code: string } };
      expect(body.error.code).toBe('Base.1.16.OperationNotAllowed');
    }
    const bad = await get('/redfish/v1/Systems', { 'OData-Version': '5.0' });
    expect(bad.status).toBe(412);
    const ok = await get('/redfish/v1/Systems', { 'OData-Version': '4.0' });
    expect(ok.status).toBe(200);
  });

  it('a session can be created by POST to the collection or its Members property', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR });
    const res = await fetch(`${emu.url}/redfish/v1/SessionService/Sessions/Members`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ UserName: 'admin', Password: 'secret' }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-auth-token')).toMatch(/^[0-9a-f]{32}$/);
    expect(res.headers.get('location')).toBe('/redfish/v1/SessionService/Sessions/1');
  });
});
