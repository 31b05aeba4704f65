/**
 * `POST /api/v1/devices:import` on a real database: CSV and NDJSON with good
 * and bad rows (each created, updated or refused with its reason, and a
 * refused row writes nothing), merging into stored BMCs, dry runs, atomic
 * imports, and hostile bodies at the real limits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bmcIdFromAddress, IMPORT_LIMITS } from '../../bootstrap/index.js';
import { type InventoryApi, inventoryApi, selfSignedTls } from './helpers.js';

let t: InventoryApi;
beforeAll(async () => {
  t = await inventoryApi();
  expect(
    (
      await t.req({
        method: 'PUT',
        url: '/api/v1/profiles/lab',
        payload: { type: 'onboarding', configurationHandling: 'merge', configuration: 'hostname dpu\n' },
      })
    ).statusCode,
  ).toBe(201);
});
afterAll(async () => {
  await t.close();
});

const importBody = (body: string | Buffer, type: string, query = '') =>
  t.req({
    method: 'POST',
    url: `/api/v1/devices:import${query}`,
    headers: { 'content-type': type },
    payload: body,
  });

async function state() {
  const bmcs = await t.t.db.selectFrom('bmcs').select(['id', 'address', 'username']).orderBy('id').execute();
  const devices = await t.t.db
    .selectFrom('devices')
    .select(['serial', 'bmc', 'profile', 'labels'])
    .orderBy('serial')
    .execute();
  return { bmcs, devices };
}

describe('bmcIdFromAddress', () => {
  it.each([
    ['https://10.0.0.5', '10.0.0.5'],
    ['https://10.0.0.5:8443', '10.0.0.5-8443'],
    ['https://[fd00::5]', 'fd00--5'],
    ['https://BMC-1.Lab.example', 'bmc-1.lab.example'],
  ])('%s → %s', (address, id) => {
    expect(bmcIdFromAddress(new URL(address).origin)).toBe(id);
  });
});

describe('CSV import', () => {
  it('creates good rows, refuses bad ones with their reasons, and never half-writes a row', async () => {
    const before = await state();
    const csv = [
      'serial,profile,labels,bmcAddress,bmcUsername,bmcPassword,bmcInsecure',
      'CSV-1,lab,rack=r1;slot=3,https://10.0.0.11,root,"pw,with,commas",true',
      'CSV-2,,,https://10.0.0.12:8443,root,pw2,',
      'CSV-3,nosuch,,https://10.0.0.13,root,pw3,',
      'CSV-4,,,http://10.0.0.14,root,pw4,',
      'CSV-5,,,https://10.0.0.15,root,,',
      'CSV-1,,,,,,',
      'bad serial!,,,,,,',
      'CSV-6,,,https://10.0.0.11,root,"pw,with,commas",true',
      'CSV-7,only,two',
      'CSV-8,,rack,,,,',
      'CSV-9,,,https://10.0.0.11,root,different,true',
      '',
    ].join('\n');
    const r = await importBody(csv, 'text/csv; charset=utf-8');
    expect(r.statusCode).toBe(200);
    const out = r.json();
    expect(out.applied).toBe(true);
    expect(out.counts).toEqual({ created: 3, updated: 0, refused: 8 });
    const byLine = Object.fromEntries(out.rows.map((x: { line: number }) => [x.line, x]));
    expect(byLine[2]).toEqual({
      line: 2,
      serial: 'CSV-1',
      result: 'created',
      bmc: { id: '10.0.0.11', result: 'created' },
    });
    expect(byLine[3]).toMatchObject({
      serial: 'CSV-2',
      result: 'created',
      bmc: { id: '10.0.0.12-8443', result: 'created' },
    });
    expect(byLine[4]).toMatchObject({
      result: 'refused',
      error: { code: 'API_ERR_BAD_REQUEST', message: expect.stringContaining('nosuch') },
    });
    expect(byLine[5]).toMatchObject({
      result: 'refused',
      error: { code: 'API_ERR_VALIDATION', message: expect.stringContaining('bmcAddress') },
    });
    expect(byLine[6]).toMatchObject({
      result: 'refused',
      error: { message: expect.stringContaining('bmcPassword needed') },
    });
    expect(byLine[7]).toMatchObject({
      result: 'refused',
      error: { code: 'API_ERR_CONFLICT', message: 'serial CSV-1 is also on line 2' },
    });
    expect(byLine[8]).toMatchObject({
      result: 'refused',
      error: { code: 'API_ERR_VALIDATION', message: expect.stringContaining('serial') },
    });
    expect(byLine[9]).toEqual({
      line: 9,
      serial: 'CSV-6',
      result: 'created',
      bmc: { id: '10.0.0.11', result: 'unchanged' },
    });
    expect(byLine[10]).toMatchObject({
      result: 'refused',
      error: { message: 'the row has 3 fields, the header 7' },
    });
    expect(byLine[11]).toMatchObject({
      result: 'refused',
      error: { message: expect.stringContaining('key=value') },
    });
    expect(byLine[12]).toMatchObject({
      result: 'refused',
      error: { code: 'API_ERR_CONFLICT', message: expect.stringContaining('line 2') },
    });
    expect(r.body).not.toContain('pw,with,commas');

    const after = await state();
    expect(after.bmcs.length - before.bmcs.length).toBe(2);
    expect(after.devices.map((d) => [d.serial, d.bmc, d.profile, d.labels])).toEqual([
      ...before.devices.map((d) => [d.serial, d.bmc, d.profile, d.labels]),
      ['CSV-1', '10.0.0.11', 'lab', { rack: 'r1', slot: '3' }],
      ['CSV-2', '10.0.0.12-8443', null, {}],
      ['CSV-6', '10.0.0.11', null, {}],
    ]);
    const target = await t.store.target('10.0.0.11');
    expect(target).toMatchObject({
      address: 'https://10.0.0.11',
      password: 'pw,with,commas',
      insecure: true,
    });
    const audits = await t.t.db
      .selectFrom('audit_log')
      .select(['action', 'target'])
      .where('action', 'in', ['device.import', 'bmc.create'])
      .orderBy('id')
      .execute();
    expect(audits.map((a) => `${a.action} ${a.target}`)).toEqual([
      'bmc.create 10.0.0.11',
      'device.import CSV-1',
      'bmc.create 10.0.0.12-8443',
      'device.import CSV-2',
      'device.import CSV-6',
    ]);
    // The refused rows' BMCs were not created either.
    expect(after.bmcs.map((b) => b.id)).not.toContain('10.0.0.13');

    // The same file again: the good rows are updates and their BMCs stay as they are.
    const again = await importBody(csv, 'text/csv');
    expect(again.json().counts).toEqual({ created: 0, updated: 3, refused: 8 });
    expect(again.json().rows[0]).toEqual({
      line: 2,
      serial: 'CSV-1',
      result: 'updated',
      bmc: { id: '10.0.0.11', result: 'unchanged' },
    });
    expect(await state()).toEqual(after);
    // A changed password is a change.
    const pw = await importBody(
      'serial,bmcAddress,bmcPassword\nCSV-2,https://10.0.0.12:8443,new-pw2\n',
      'text/csv',
    );
    expect(pw.json().rows[0].bmc).toEqual({ id: '10.0.0.12-8443', result: 'updated' });
    expect((await t.store.target('10.0.0.12-8443'))?.password).toBe('new-pw2');
  });

  it('refuses the whole body for a bad header or an unterminated quote, writing nothing', async () => {
    const before = await state();
    for (const [csv, msg] of [
      ['serial,color\nX-1,red\n', 'unknown column "color"'],
      ['profile\nlab\n', 'serial column is required'],
      ['serial,serial\nX,Y\n', 'given twice'],
      ['serial,profile\nX-1,"lab\n', 'CSV: Quote Not Closed at line 2'],
      ['serial,bmcPassword\nX-1,pa"ss-word\n', 'CSV: Invalid Opening Quote at line 2'],
      ['', 'empty body'],
    ] as const) {
      const r = await importBody(csv, 'text/csv');
      expect(r.statusCode, csv).toBe(400);
      expect(r.json().code).toBe('API_ERR_BAD_REQUEST');
      expect(r.json().detail).toContain(msg);
      expect(r.body).not.toContain('ss-word');
    }
    expect(await state()).toEqual(before);
  });
});

describe('NDJSON import', () => {
  it('creates and updates rows, merges into stored BMCs, and refuses bad lines', async () => {
    const { cert } = await selfSignedTls();
    // A BMC set up through the API, with a CA and labels the import must keep.
    expect(
      (
        await t.req({
          method: 'PUT',
          url: '/api/v1/bmcs/rack7-bmc',
          payload: {
            address: 'https://10.7.0.1',
            username: 'root',
            password: 'api-pw',
            caCertificate: cert,
            labels: { rack: '7' },
          },
        })
      ).statusCode,
    ).toBe(201);
    const lines = [
      { serial: 'ND-1', labels: { rack: '7', 'team/x': 'a=b;c' }, bmc: 'rack7-bmc' },
      { serial: 'ND-2', bmc: 'rack7-bmc', bmcUsername: 'admin', bmcPassword: 'new-pw', bmcAuth: 'basic' },
      'not json {',
      [1, 2],
      { serial: 'ND-3', color: 'red' },
      { serial: 'ND-4', bmc: 'nope' },
      { serial: 'ND-5', bmcUsername: 'x' },
      {
        serial: 'ND-6',
        bmcAddress: 'https://10.9.0.1',
        bmcUsername: 'u',
        bmcPassword: 'p',
        bmcCaCertificate: 'junk',
      },
      {
        serial: 'ND-7',
        bmcAddress: 'https://10.9.0.2',
        bmcUsername: 'u',
        bmcPassword: 'p',
        bmcProfile: 'acme',
      },
      { serial: 'CSV-2', hwModel: 'BlueField-3', labels: { moved: 'yes' } },
      '{"serial":"ND-9","bmcPassword":"leaky-pw" x}',
    ];
    const body = `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n\n`;
    const r = await importBody(body, 'application/x-ndjson');
    expect(r.statusCode).toBe(200);
    const rows = r.json().rows as {
      line: number;
      result: string;
      error?: { code: string; message: string };
    }[];
    expect(rows.map((x) => [x.line, x.result, x.error?.code])).toEqual([
      [1, 'created', undefined],
      [2, 'created', undefined],
      [3, 'refused', 'API_ERR_VALIDATION'],
      [4, 'refused', 'API_ERR_VALIDATION'],
      [5, 'refused', 'API_ERR_VALIDATION'],
      [6, 'refused', 'API_ERR_UNKNOWN_BMC'],
      [7, 'refused', 'API_ERR_BAD_REQUEST'],
      [8, 'refused', 'API_ERR_BAD_REQUEST'],
      [9, 'refused', 'API_ERR_VALIDATION'],
      [10, 'updated', undefined],
      [11, 'refused', 'API_ERR_VALIDATION'],
    ]);
    // A line that is not JSON is refused without echoing it (it may hold a password).
    expect(rows[10]!.error!.message).toMatch(/^not valid JSON/);
    expect(r.body).not.toContain('leaky-pw');
    expect(r.body).not.toContain('new-pw');
    expect(rows[0]).toMatchObject({ serial: 'ND-1', bmc: { id: 'rack7-bmc', result: 'unchanged' } });
    expect(rows[1]).toMatchObject({ bmc: { id: 'rack7-bmc', result: 'updated' } });
    expect(rows[4]!.error!.message).toContain('unknown column "color"');
    expect(rows[7]!.error!.message).toContain('bmcCaCertificate');
    expect(r.json().counts).toEqual({ created: 2, updated: 1, refused: 8 });

    // The device list filters by labels (every pair must match) and by BMC.
    const byLabel = await t.req({
      method: 'GET',
      url: '/api/v1/devices?label=rack=7&label=team/x=a=b;c',
      as: 'viewer',
    });
    expect(byLabel.json().items.map((d: { serial: string }) => d.serial)).toEqual(['ND-1']);
    const byBmc = await t.req({ method: 'GET', url: '/api/v1/devices?bmc=rack7-bmc', as: 'viewer' });
    expect(byBmc.json().items.map((d: { serial: string }) => d.serial)).toEqual(['ND-1', 'ND-2']);

    // Merge: username, password and auth changed; address, CA and labels kept.
    const bmc = (await t.req({ method: 'GET', url: '/api/v1/bmcs/rack7-bmc' })).json();
    expect(bmc).toMatchObject({
      address: 'https://10.7.0.1',
      username: 'admin',
      auth: 'basic',
      labels: { rack: '7' },
    });
    expect(bmc.caCertificate).toBe(cert);
    expect((await t.store.target('rack7-bmc'))?.password).toBe('new-pw');
    const d1 = (await t.req({ method: 'GET', url: '/api/v1/devices/ND-1' })).json();
    expect(d1).toMatchObject({ bmc: 'rack7-bmc', labels: { rack: '7', 'team/x': 'a=b;c' } });
    const moved = (await t.req({ method: 'GET', url: '/api/v1/devices/CSV-2' })).json();
    // Columns not given keep what the device had (its BMC).
    expect(moved).toMatchObject({ hwModel: 'BlueField-3', labels: { moved: 'yes' }, bmc: '10.0.0.12-8443' });
    for (const serial of ['ND-3', 'ND-4', 'ND-5', 'ND-6', 'ND-7'])
      expect((await t.req({ method: 'GET', url: `/api/v1/devices/${serial}` })).statusCode).toBe(404);
    expect((await t.req({ method: 'GET', url: '/api/v1/bmcs/10.9.0.1' })).statusCode).toBe(404);
  });
});

describe('dry runs and atomic imports', () => {
  const rows = (serials: string[], bad = false) =>
    `${[
      ...serials.map((s, i) =>
        JSON.stringify({
          serial: s,
          bmcAddress: `https://10.5.0.${i + 1}`,
          bmcUsername: 'u',
          bmcPassword: 'p',
        }),
      ),
      ...(bad ? [JSON.stringify({ serial: 'AT-BAD', profile: 'nosuch' })] : []),
    ].join('\n')}\n`;

  it('dryRun reports what would happen and writes nothing', async () => {
    const before = await state();
    const audit = await t.t.db
      .selectFrom('audit_log')
      .select((e) => e.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    const r = await importBody(rows(['DRY-1', 'CSV-1'], true), 'application/x-ndjson', '?dryRun=true');
    expect(r.json()).toMatchObject({
      applied: false,
      counts: { created: 1, updated: 1, refused: 1 },
      rows: [
        { serial: 'DRY-1', result: 'created', bmc: { result: 'created' } },
        { serial: 'CSV-1', result: 'updated' },
        { serial: 'AT-BAD', result: 'refused' },
      ],
    });
    expect(await state()).toEqual(before);
    const audit2 = await t.t.db
      .selectFrom('audit_log')
      .select((e) => e.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    expect(audit2.n).toBe(audit.n);
  });

  it('atomic: one refused row and nothing is written; all good and all are', async () => {
    const before = await state();
    const refused = await importBody(rows(['AT-1', 'AT-2'], true), 'application/x-ndjson', '?atomic=true');
    expect(refused.json()).toMatchObject({ applied: false, counts: { created: 2, refused: 1 } });
    expect(await state()).toEqual(before);
    const ok = await importBody(rows(['AT-1', 'AT-2']), 'application/x-ndjson', '?atomic=true');
    expect(ok.json()).toMatchObject({ applied: true, counts: { created: 2, refused: 0 } });
    expect((await state()).devices.length).toBe(before.devices.length + 2);
  });

  it('viewers cannot import; other content types are 415', async () => {
    const v = await t.req({
      method: 'POST',
      url: '/api/v1/devices:import',
      headers: { 'content-type': 'text/csv' },
      payload: 'serial\nV-1\n',
      as: 'viewer',
    });
    expect(v.statusCode).toBe(403);
    const json = await t.req({ method: 'POST', url: '/api/v1/devices:import', payload: { serial: 'J-1' } });
    expect(json.statusCode).toBe(415);
    expect(json.json().code).toBe('API_ERR_UNSUPPORTED_MEDIA_TYPE');
    const xml = await importBody('<x/>', 'application/xml');
    expect(xml.statusCode).toBe(415);
  });
});

describe('a large import', () => {
  it('lets the event loop run while it works (embedded PGlite answers without yielding)', async () => {
    const n = 600;
    const csv = `serial,bmcAddress,bmcUsername,bmcPassword\n${Array.from({ length: n }, (_, i) => `BIG-${i},https://big-${i}.lab,root,pw-${i}`).join('\n')}\n`;
    // Count event-loop turns (setImmediate runs once per turn) while the import runs.
    let turns = 0;
    let running = true;
    const spin = () => {
      if (!running) return;
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    const r = await importBody(csv, 'text/csv');
    running = false;
    expect(r.json().counts).toEqual({ created: n, updated: 0, refused: 0 });
    expect(turns).toBeGreaterThan(1);
  });
});

describe('hostile bodies at the limits', () => {
  const { bodyBytes, rows, lineBytes } = IMPORT_LIMITS;

  it(`accepts exactly ${rows} rows (dry run) and refuses ${rows + 1}, in both formats`, async () => {
    const csvRows = Array.from({ length: rows }, (_, i) => `LIM-${i},lab`);
    const csv = await importBody(`serial,profile\n${csvRows.join('\n')}\n`, 'text/csv', '?dryRun=true');
    expect(csv.statusCode).toBe(200);
    expect(csv.json().counts).toEqual({ created: rows, updated: 0, refused: 0 });
    const over = await importBody(`serial,profile\n${csvRows.join('\n')}\nLIM-X,lab\n`, 'text/csv');
    expect(over.statusCode).toBe(413);
    expect(over.json()).toMatchObject({ code: 'API_ERR_BODY_TOO_LARGE', detail: `more than ${rows} rows` });

    const nd = csvRows.map((_, i) => `{"serial":"LIM-${i}"}`);
    expect(
      (await importBody(`${nd.join('\n')}\n`, 'application/x-ndjson', '?dryRun=true')).json().counts.created,
    ).toBe(rows);
    const ndOver = await importBody(`${nd.join('\n')}\n{"serial":"LIM-X"}\n`, 'application/x-ndjson');
    expect(ndOver.statusCode).toBe(413);
    expect((await state()).devices.some((d) => d.serial.startsWith('LIM-'))).toBe(false);
  });

  it(`accepts a ${lineBytes}-byte line and refuses one byte more`, async () => {
    // NDJSON: the line is the JSON object; pad a label value to hit the limit exactly.
    const base = JSON.stringify({ serial: 'LINE-1', hwModel: '' });
    const pad = 'x'.repeat(lineBytes - base.length);
    const exact = JSON.stringify({ serial: 'LINE-1', hwModel: pad });
    expect(exact.length).toBe(lineBytes);
    const ok = await importBody(`${exact}\n`, 'application/x-ndjson', '?dryRun=true');
    expect(ok.statusCode).toBe(200);
    // Parsed, then refused for the field (hwModel is at most 255 characters), not for its length.
    expect(ok.json().rows[0].error.message).toContain('hwModel');
    const long = JSON.stringify({ serial: 'LINE-1', hwModel: `${pad}x` });
    const r = await importBody(`${long}\n`, 'application/x-ndjson');
    expect(r.statusCode).toBe(413);
    expect(r.json().detail).toContain(`line 1: longer than ${lineBytes} bytes`);

    // CSV: a record (quoted newlines included) longer than the limit.
    const cell = `"${'y\n'.repeat(lineBytes / 2)}"`;
    const csv = await importBody(`serial,hwModel\nLINE-2,${cell}\n`, 'text/csv');
    expect(csv.statusCode).toBe(413);
    expect(csv.json().code).toBe('API_ERR_BODY_TOO_LARGE');
  });

  it(`refuses a body over ${bodyBytes} bytes and stays linear on hostile shapes up to it`, async () => {
    const big = Buffer.alloc(bodyBytes + 1, 0x0a);
    const r = await importBody(big, 'text/csv');
    expect(r.statusCode).toBe(413);
    expect(r.json().code).toBe('API_ERR_BODY_TOO_LARGE');

    // Exactly at the limit: a header then blank lines (no rows), in both formats.
    const blank = `serial\n${'\n'.repeat(bodyBytes - 7)}`;
    expect(Buffer.byteLength(blank)).toBe(bodyBytes);
    const csv = await importBody(blank, 'text/csv');
    expect(csv.statusCode).toBe(200);
    expect(csv.json().rows).toEqual([]);
    const nd = await importBody('\n'.repeat(bodyBytes), 'application/x-ndjson');
    expect(nd.json().rows).toEqual([]);

    // An opening quote that never closes, running to the end of a full-size body.
    const open = `serial\n"${'a'.repeat(bodyBytes - 9)}`;
    const q = await importBody(open, 'text/csv');
    expect(q.statusCode).toBe(413);
    // A full-size body of doubled quotes (escape sequences) inside one field.
    const quotes = `serial\n"${'""'.repeat((bodyBytes - 10) / 2)}"\n`;
    expect((await importBody(quotes, 'text/csv')).statusCode).toBe(413);
    // Many short rows of commas: the row limit stops parsing early.
    const commas = `serial\n${',\n'.repeat((bodyBytes - 7) / 2)}`;
    expect((await importBody(commas, 'text/csv')).statusCode).toBe(413);
    // Deeply nested JSON within one line: refused as a row, not a crash.
    const deep = `${'['.repeat(lineBytes / 2 - 1)}${']'.repeat(lineBytes / 2 - 1)}\n`;
    const d = await importBody(deep, 'application/x-ndjson');
    expect(d.json().rows[0]).toMatchObject({ result: 'refused', error: { message: 'not a JSON object' } });
  });
});
