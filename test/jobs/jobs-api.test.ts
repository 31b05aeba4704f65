/**
 * `/api/v1/jobs` in process (app.inject) over a real runner, database and
 * emulated BMCs: who may do what (viewer reads, operator runs), problem
 * bodies with codes for bad requests, selectors, cursor pages, the
 * Idempotency-Key rules, cancel and retry of jobs in the wrong state.
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOperatorApi, createToken, jobRoutes } from '../../bootstrap/index.js';
import type { JobRunner } from '../../bootstrap/job-runner.js';
import { type JobRig, jobRig } from './harness.js';

let rig: JobRig;
let runner: JobRunner;
let app: FastifyInstance;
const tokens: Record<'admin' | 'operator' | 'viewer', string> = { admin: '', operator: '', viewer: '' };

beforeAll(async () => {
  rig = await jobRig();
  runner = await rig.runner();
  app = await buildOperatorApi({
    logger: pino({ level: 'silent' }),
    db: rig.db.db,
    readiness: async () => [],
    maxEventLoopDelayMs: 0,
    routes: [jobRoutes({ runner })],
  });
  await app.ready();
  for (const role of ['admin', 'operator', 'viewer'] as const)
    tokens[role] = (await createToken(rig.db.db, role, `t-${role}`)).token;
  for (const [i, serial] of ['API-1', 'API-2', 'API-3'].entries()) {
    await rig.device(serial, 'generic');
    await rig.db.db
      .updateTable('devices')
      .set({ labels: JSON.stringify({ rack: i < 2 ? 'r1' : 'r2' }) })
      .where('serial', '=', serial)
      .execute();
  }
});
afterAll(async () => {
  await app?.close();
  await rig?.close();
});

function req(
  method: 'GET' | 'POST',
  url: string,
  opts: { as?: keyof typeof tokens | null; body?: unknown; key?: string } = {},
) {
  const as = opts.as === undefined ? 'operator' : opts.as;
  return app.inject({
    method,
    url,
    headers: {
      ...(as ? { authorization: `Bearer ${tokens[as]}` } : {}),
      ...(opts.key ? { 'idempotency-key': opts.key } : {}),
    },
    ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
  });
}

async function settle(id: string) {
  for (let i = 0; i < 400; i++) {
    const v = (await req('GET', `/api/v1/jobs/${id}`, { as: 'viewer' })).json();
    if (!['queued', 'running'].includes(v.state)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('job did not finish');
}

describe('jobs API', () => {
  it('needs a token; viewer reads but may not run; operator runs', async () => {
    expect((await req('GET', '/api/v1/jobs', { as: null })).statusCode).toBe(401);
    const denied = await req('POST', '/api/v1/jobs', {
      as: 'viewer',
      body: { kind: 'power', action: 'on', devices: ['API-1'] },
    });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().code).toBe('API_ERR_FORBIDDEN');
    expect((await req('GET', '/api/v1/jobs', { as: 'viewer' })).statusCode).toBe(200);
  });

  it('refuses bad jobs with a coded problem body and creates nothing', async () => {
    const cases: Array<[unknown, number, string, RegExp]> = [
      [{ kind: 'provision' }, 400, 'API_ERR_BAD_REQUEST', /either devices/],
      [
        { kind: 'provision', devices: ['API-1'], selector: { labels: { rack: 'r1' } } },
        400,
        'API_ERR_BAD_REQUEST',
        /not both/,
      ],
      [
        { kind: 'provision', devices: ['NOPE-1', 'API-1'] },
        400,
        'API_ERR_BAD_REQUEST',
        /no such device: NOPE-1/,
      ],
      [
        { kind: 'provision', selector: { labels: { rack: 'none' } } },
        400,
        'API_ERR_BAD_REQUEST',
        /no device has these labels/,
      ],
      [{ kind: 'power', devices: ['API-1'] }, 400, 'API_ERR_BAD_REQUEST', /needs action/],
      [
        { kind: 'decommission', devices: ['API-1'], strategy: 'auto' },
        400,
        'API_ERR_BAD_REQUEST',
        /provision jobs/,
      ],
      [{ kind: 'reboot', devices: ['API-1'] }, 400, 'API_ERR_VALIDATION', /kind/],
      [{ kind: 'provision', devices: ['API-1'], extra: 1 }, 400, 'API_ERR_VALIDATION', /additional/],
    ];
    for (const [body, status, code, detail] of cases) {
      const r = await req('POST', '/api/v1/jobs', { body });
      expect(r.statusCode, JSON.stringify(body)).toBe(status);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.json().code).toBe(code);
      expect(r.json().detail).toMatch(detail);
    }
    expect((await req('GET', '/api/v1/jobs')).json().items).toEqual([]);
    expect((await req('GET', '/api/v1/jobs/00000000-0000-4000-8000-000000000000')).statusCode).toBe(404);
  });

  it('selects devices by label; Idempotency-Key replays, refuses another body, and a busy device is a conflict', async () => {
    const body = { kind: 'power', action: 'off', selector: { labels: { rack: 'r1' } } };
    const first = await req('POST', '/api/v1/jobs', { body, key: 'k-1' });
    expect(first.statusCode).toBe(202);
    expect(first.json().devices.map((d: { serial: string }) => d.serial)).toEqual(['API-1', 'API-2']);
    const replay = await req('POST', '/api/v1/jobs', {
      body: { selector: { labels: { rack: 'r1' } }, action: 'off', kind: 'power' },
      key: 'k-1',
    });
    expect(replay.statusCode).toBe(202);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json().id).toBe(first.json().id);
    const other = await req('POST', '/api/v1/jobs', { body: { ...body, action: 'on' }, key: 'k-1' });
    expect(other.statusCode).toBe(409);
    expect(other.json().code).toBe('API_ERR_IDEMPOTENCY_MISMATCH');
    // Another token's key space is its own.
    const admin = await req('POST', '/api/v1/jobs', {
      as: 'admin',
      body: { kind: 'power', action: 'off', devices: ['API-3'] },
      key: 'k-1',
    });
    expect(admin.statusCode).toBe(202);
    const v = await settle(first.json().id);
    expect(v.state).toBe('succeeded');
    await settle(admin.json().id);
    // A retry of a succeeded job, or a cancel of a finished one, is a conflict.
    expect((await req('POST', `/api/v1/jobs/${v.id}/retry`)).json().code).toBe('API_ERR_CONFLICT');
    expect((await req('POST', `/api/v1/jobs/${v.id}/cancel`)).statusCode).toBe(409);
    const list = await req('GET', '/api/v1/jobs?state=succeeded&limit=1', { as: 'viewer' });
    expect(list.json().items).toHaveLength(1);
    const next = await req('GET', `/api/v1/jobs?state=succeeded&limit=1&cursor=${list.json().nextCursor}`, {
      as: 'viewer',
    });
    expect(next.json().items).toHaveLength(1);
    expect(next.json().items[0].id).not.toBe(list.json().items[0].id);
    expect(next.json().nextCursor).toBe(null);
    expect((await req('GET', '/api/v1/jobs?cursor=bogus')).json().code).toBe('API_ERR_BAD_REQUEST');
  });

  it("GET /jobs/{id}?steps=true shows each step's BMC messages, of successful steps too", async () => {
    await rig.device('API-BF', 'bluefield');
    const created = await req('POST', '/api/v1/jobs', {
      body: { kind: 'power', action: 'cycle', devices: ['API-BF'] },
      key: 'bmc-messages-1',
    });
    expect(created.statusCode).toBe(202);
    const id = created.json().id as string;
    expect((await settle(id)).state).toBe('succeeded');
    const r = await req('GET', `/api/v1/jobs/${id}?steps=true`, { as: 'viewer' });
    expect(r.statusCode).toBe(200);
    const steps = r.json().devices[0].steps as Array<{ step: string; result: string; bmcMessages: unknown }>;
    expect(steps.map((s) => [s.step, s.result])).toEqual([
      ['preflight', 'done'],
      ['power', 'done'],
    ]);
    expect(steps[0]?.bmcMessages).toBeNull();
    // bmcweb answers ComputerSystem.Reset with messages::success.
    expect(steps[1]?.bmcMessages).toEqual([
      {
        MessageId: 'Base.1.16.Success',
        Message: 'The request completed successfully.',
        Severity: 'OK',
        Resolution: 'None',
      },
    ]);
  });

  it('the device of a job not yet finished cannot join another job', async () => {
    rig.behaviour.set('API-3', 'silent');
    const a = await req('POST', '/api/v1/jobs', {
      body: {
        kind: 'provision',
        devices: ['API-3'],
        installerImage: 'installer.iso',
        timeouts: { awaitDevice: 30 },
      },
    });
    expect(a.statusCode).toBe(202);
    const b = await req('POST', '/api/v1/jobs', {
      body: { kind: 'power', action: 'on', devices: ['API-3'] },
    });
    expect(b.statusCode).toBe(409);
    expect(b.json().detail).toContain(a.json().id);
    const c = await req('POST', `/api/v1/jobs/${a.json().id}/cancel`);
    expect(c.statusCode).toBe(200);
    expect(c.json().state).toBe('cancelled');
    expect((await settle(a.json().id)).devices[0].state).toBe('cancelled');
  });
});
