/**
 * Every listener of a real `dpu-ztp serve` bounds its connections: sockets that
 * never send a byte (plain and TLS, handshake never finished) are closed after the
 * idle/handshake timeouts, connections past --max-connections are closed on
 * accept, and /healthz stays fast while hostile XML bodies at the body limit
 * arrive on the device listener.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESTCONF_BODY_LIMIT } from '../../sztp-server/restconf-routes.js';
import { childEnv, runCli, type ServeProcess, seedDataDir, startServe } from '../helpers/serve.js';
import { repeatsPgliteRun } from '../helpers/db.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-conn-'));
const pkiDir = join(root, 'pki');
const IDLE_MS = 1500;
const CAP = 40;
let serve: ServeProcess;

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** Opens `n` TCP connections that send nothing; resolves once all are connected or closed. */
async function idleSockets(
  url: string,
  n: number,
): Promise<{ sockets: Socket[]; closedAt: (number | undefined)[] }> {
  const { host, port } = hostPort(url);
  const closedAt: (number | undefined)[] = new Array(n).fill(undefined);
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<Socket>((resolve) => {
          const s = connect({ host, port });
          s.on('error', () => {});
          s.on('close', () => {
            closedAt[i] = Date.now();
            resolve(s);
          });
          s.on('connect', () => resolve(s));
        }),
    ),
  );
  return { sockets, closedAt };
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

beforeAll(async () => {
  const init = runCli(['pki', 'init', '--out', pkiDir, '--devices', 'CONN-1']);
  expect(init.code, init.stderr).toBe(0);
  serve = await startServe(
    [
      '--data-dir',
      seedDataDir(join(root, 'data')),
      '--pki-dir',
      pkiDir,
      '--idle-timeout',
      String(IDLE_MS),
      '--headers-timeout',
      String(IDLE_MS),
      '--tls-handshake-timeout',
      String(IDLE_MS),
      '--max-connections',
      String(CAP),
    ],
    childEnv(),
    120_000,
  );
});

afterAll(async () => {
  await serve?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe.skipIf(repeatsPgliteRun)('connection limits on every listener', () => {
  for (const listener of ['api', 'device', 'images'] as const) {
    it(`${listener}: idle connections are closed, and those past the cap at once`, async () => {
      const url = serve[listener];
      const started = Date.now();
      const { sockets, closedAt } = await idleSockets(url, CAP * 3);
      // Past the cap: closed on accept, long before the idle timeout.
      expect(await waitFor(() => closedAt.filter((t) => t !== undefined).length >= CAP * 2, IDLE_MS)).toBe(
        true,
      );
      // The rest: closed by the idle (or, on the TLS listener, handshake) timeout.
      expect(await waitFor(() => closedAt.every((t) => t !== undefined), IDLE_MS * 4 + 5_000)).toBe(true);
      const last = Math.max(...(closedAt as number[]));
      expect(last - started).toBeGreaterThanOrEqual(IDLE_MS - 100);
      for (const s of sockets) s.destroy();
      // The listener still serves afterwards.
      const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
      const res = await request(`${url}/healthz`, { dispatcher });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      await dispatcher.close();
    });
  }

  it('a TLS connection that finished its handshake and then sends nothing is closed', async () => {
    const { host, port } = hostPort(serve.device);
    const closed = await new Promise<number>((resolve, reject) => {
      const t0 = Date.now();
      const s = tlsConnect({ host, port, rejectUnauthorized: false }, () => {
        s.on('close', () => resolve(Date.now() - t0));
      });
      s.on('error', () => {});
      setTimeout(() => reject(new Error('not closed')), IDLE_MS * 4 + 5_000).unref();
    });
    expect(closed).toBeGreaterThanOrEqual(IDLE_MS - 100);
  });
});

describe.skipIf(repeatsPgliteRun)('hostile XML does not stall the service', () => {
  it('/healthz answers in under 100 ms while namespace bombs at the body limit arrive', async () => {
    const device = new Agent({
      connections: 4,
      connect: {
        rejectUnauthorized: false,
        cert: readFileSync(join(pkiDir, 'devices/CONN-1/idevid.crt')),
        key: readFileSync(join(pkiDir, 'devices/CONN-1/idevid.key')),
      },
    });
    const decls = Array.from({ length: 3_500 }, (_, i) => ` xmlns:p${i}="u:${i}"`).join('');
    let body = `<input xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server"${decls}></input>`;
    body = body.replace(
      '></input>',
      `>${'<a/>'.repeat(Math.floor((RESTCONF_BODY_LIMIT - body.length) / 4))}</input>`,
    );
    expect(body.length).toBeLessThanOrEqual(RESTCONF_BODY_LIMIT);
    expect(body.length).toBeGreaterThan(RESTCONF_BODY_LIMIT - 64);
    // The same probe with no attack first: on a machine busy with other work, slowness that
    // is not the attack's shows here too.
    const probe = async (n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        const res = await fetch(`${serve.api}/healthz`);
        await res.text();
        out.push(performance.now() - t);
        expect(res.status).toBe(200);
        await new Promise((r) => setTimeout(r, 50));
      }
      return out.sort((a, b) => a - b);
    };
    const quiet = await probe(20);
    let stop = false;
    const statuses: number[] = [];
    const attack = async (withCert: boolean) => {
      const plain = new Agent({ connect: { rejectUnauthorized: false } });
      while (!stop) {
        const res = await request(
          `${serve.device}/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/yang-data+xml' },
            body,
            dispatcher: withCert ? device : plain,
          },
        );
        statuses.push(res.statusCode);
        await res.body.dump();
      }
      await plain.close();
    };
    const attackers = [attack(true), attack(false)];
    await new Promise((r) => setTimeout(r, 300));
    const latencies = await probe(20);
    stop = true;
    await Promise.all(attackers);
    await device.close();
    expect(statuses.length).toBeGreaterThan(20);
    // Refused as too big (or unauthenticated, without a certificate), never a 5xx.
    for (const s of statuses) expect([401, 413]).toContain(s);
    expect(statuses).toContain(413);
    // The median and the 90th percentile must be fast, unless the machine is so busy that
    // healthz is slow without any attack (then: no slower than twice that).
    expect(latencies[10]).toBeLessThan(Math.max(100, 2 * (quiet[10] as number)));
    expect(latencies[18]).toBeLessThan(Math.max(100, 2 * (quiet[18] as number)));
  });
});

describe.skipIf(repeatsPgliteRun)("router errors answer in each listener's error shape", () => {
  it('operator API: a path segment past the limit is a problem+json 414 with a code', async () => {
    const res = await fetch(`${serve.api}/api/v1/devices/${'a'.repeat(300)}`);
    expect(res.status).toBe(414);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as { code: string }).code).toBe('API_ERR_URI_TOO_LONG');
  });

  it('device listener: an image name past the limit is a RESTCONF error', async () => {
    const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
    const res = await request(`${serve.device}/images/${'a'.repeat(300)}`, { dispatcher });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/yang-data\+json/);
    const body = (await res.body.json()) as { 'ietf-restconf:errors': { error: { 'error-tag': string }[] } };
    expect(body['ietf-restconf:errors'].error[0]?.['error-tag']).toBe('malformed-message');
    await dispatcher.close();
  });
});
