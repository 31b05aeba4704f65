import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BmcEmulator,
  RedfishClient,
  RedfishError,
  SessionCache,
  startBmcEmulator,
} from '../../redfish/index.js';
import { FAST_EMULATOR, fastClient } from './helpers.js';

let emu: BmcEmulator | undefined;
const clients: RedfishClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await emu?.close();
  emu = undefined;
});
const client = (url: string, extra = {}) => {
  const c = new RedfishClient(fastClient(url, extra));
  clients.push(c);
  return c;
};

describe('RedfishClient against the emulator', () => {
  it('reads the service root anonymously and sends OData-Version', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    const c = client(emu.url);
    const root = await c.serviceRoot();
    expect(root.RedfishVersion).toBe('1.20.0');
    expect(emu.requests[0]).toMatchObject({ method: 'GET', path: '/redfish/v1' });
    expect(emu.sessionCount).toBe(0);
  });

  it('logs in with a session, reuses it, and logs out on close', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    const c = new RedfishClient(fastClient(emu.url));
    await c.get('/redfish/v1/Systems');
    await c.get('/redfish/v1/Managers');
    expect(c.authMode).toBe('session');
    expect(emu.sessionCount).toBe(1);
    expect(emu.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    await c.close();
    expect(emu.sessionCount).toBe(0);
    expect(emu.requests.at(-1)).toMatchObject({
      method: 'DELETE',
      path: '/redfish/v1/SessionService/Sessions/1',
    });
  });

  it('rejects bad credentials with REDFISH_ERR_AUTH', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    const c = client(emu.url, { password: 'wrong' });
    await expect(c.get('/redfish/v1/Systems')).rejects.toMatchObject({ code: 'REDFISH_ERR_AUTH' });
  });

  it('uses Basic auth when asked', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    const c = client(emu.url, { auth: 'basic' });
    const res = await c.get('/redfish/v1/Systems');
    expect(res.body.Members).toHaveLength(1);
    expect(emu.sessionCount).toBe(0);
  });

  it('survives a full session pool: a shared cache reuses the session; auto falls back to Basic', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, maxSessions: 1 });
    const cache = new SessionCache();
    const a = client(emu.url, { sessionCache: cache });
    const b = client(emu.url, { sessionCache: cache });
    await a.get('/redfish/v1/Systems');
    await b.get('/redfish/v1/Systems');
    expect(emu.sessionCount).toBe(1);
    const solo = client(emu.url, {
      retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 5, maxRetryAfterMs: 20 },
    });
    await solo.get('/redfish/v1/Managers');
    expect(solo.authMode).toBe('basic');
  });

  it('re-authenticates once when the session disappears (401)', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    const cache = new SessionCache();
    const c = client(emu.url, { sessionCache: cache });
    await c.get('/redfish/v1/Systems');
    // The BMC forgets the session (reboot / timeout): delete it behind the client's back.
    const other = client(emu.url, { sessionCache: new SessionCache(), auth: 'basic' });
    await other.delete('/redfish/v1/SessionService/Sessions/1');
    await c.get('/redfish/v1/Systems');
    expect(emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Sessions'))).toHaveLength(2);
  });

  it('parses error bodies into typed errors with @Message.ExtendedInfo', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    const c = client(emu.url);
    const err = await c.get('/redfish/v1/Nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedfishError);
    const e = err as RedfishError;
    expect(e.code).toBe('REDFISH_ERR_HTTP');
    expect(e.status).toBe(404);
    expect(e.hasMessage('ResourceNotFound')).toBe(true);
    expect(e.messages[0]?.Resolution).toBeTruthy();
  });

  it('reports PasswordChangeRequired with its own code', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, passwordChangeRequired: true, persona: 'bluefield' });
    const c = client(emu.url);
    await expect(c.get('/redfish/v1/Managers')).rejects.toMatchObject({
      code: 'REDFISH_ERR_PASSWORD_CHANGE_REQUIRED',
      status: 403,
    });
  });

  it('retries 503 honouring Retry-After, and 500, then succeeds', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    emu.faults.add({ method: 'GET', path: '/redfish/v1/Systems', status: 503, retryAfter: 1 });
    emu.faults.add({ method: 'GET', path: '/redfish/v1/Systems', status: 500 });
    const c = client(emu.url);
    const t0 = Date.now();
    await c.get('/redfish/v1/Systems');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(emu.requests.filter((r) => r.path === '/redfish/v1/Systems')).toHaveLength(3);
  });

  it('gives up after the configured attempts with the BMC message', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    emu.faults.add({
      path: '/redfish/v1/Systems',
      status: 503,
      times: 10,
      messageId: 'IDRAC.2.8.SYS518',
      message: 'iDRAC is not ready.',
    });
    const c = client(emu.url);
    const err = (await c.get('/redfish/v1/Systems').catch((e: unknown) => e)) as RedfishError;
    expect(err.code).toBe('REDFISH_ERR_HTTP');
    expect(err.status).toBe(503);
    expect(err.message).toContain('iDRAC is not ready.');
  });

  it('retries a connection reset', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    emu.faults.add({ path: '/redfish/v1/Managers', reset: true });
    const c = client(emu.url);
    const res = await c.get('/redfish/v1/Managers');
    expect(res.status).toBe(200);
  });

  it('times out a hanging BMC with REDFISH_ERR_TIMEOUT (bounded, no hang)', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    emu.faults.add({ path: '/redfish/v1/Chassis', delayMs: 5_000, times: 5 });
    const c = client(emu.url, {
      timeouts: { connectMs: 500, requestMs: 150 },
      retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 5, maxRetryAfterMs: 5 },
    });
    await c.login();
    const t0 = Date.now();
    await expect(c.get('/redfish/v1/Chassis')).rejects.toMatchObject({ code: 'REDFISH_ERR_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('refuses a connection with REDFISH_ERR_CONNECTION', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((r) => srv.close(() => r()));
    const c = client(`http://127.0.0.1:${port}`, {
      retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 5, maxRetryAfterMs: 5 },
    });
    await expect(c.serviceRoot()).rejects.toMatchObject({ code: 'REDFISH_ERR_CONNECTION' });
  });

  it('PATCH sends If-Match; a stale ETag (412) is re-read and retried', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    const c = client(emu.url);
    const sys = await c.get('/redfish/v1/Systems/DPU');
    // Someone else changes the system: our ETag is now stale.
    await c.patch('/redfish/v1/Systems/DPU', { AssetTag: 'x' }, sys.etag);
    await c.patch('/redfish/v1/Systems/DPU', { AssetTag: 'y' }, sys.etag);
    const patches = emu.requests.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(3);
    expect(patches[1]?.ifMatch).toBe(sys.etag);
    expect(patches[2]?.ifMatch).not.toBe(sys.etag);
    expect(emu.resource('/redfish/v1/Systems/DPU')?.AssetTag).toBe('y');
  });

  it('fails with REDFISH_ERR_PRECONDITION when 412 persists', async () => {
    emu = await startBmcEmulator(FAST_EMULATOR);
    emu.faults.add({ method: 'PATCH', status: 412, times: 10, messageId: 'Base.1.16.PreconditionFailed' });
    const c = client(emu.url);
    await expect(c.patch('/redfish/v1/Systems/DPU', { AssetTag: 'x' }, 'fetch')).rejects.toMatchObject({
      code: 'REDFISH_ERR_PRECONDITION',
    });
  });

  it('limits concurrency per BMC', async () => {
    let inFlight = 0;
    let peak = 0;
    const srv = createServer((_req, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      }, 20);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const { port } = srv.address() as AddressInfo;
    const c = client(`http://127.0.0.1:${port}`, { auth: 'basic', maxConcurrency: 2 });
    await Promise.all(Array.from({ length: 8 }, () => c.get('/redfish/v1/x')));
    expect(peak).toBe(2);
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  });

  it('rejects a non-JSON body with REDFISH_ERR_BAD_RESPONSE', async () => {
    const srv = createServer((_req, res) => res.writeHead(200).end('<html>login</html>'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const { port } = srv.address() as AddressInfo;
    const c = client(`http://127.0.0.1:${port}`, { auth: 'basic' });
    await expect(c.get('/redfish/v1/')).rejects.toMatchObject({ code: 'REDFISH_ERR_BAD_RESPONSE' });
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  });

  it('rejects an invalid URL with REDFISH_ERR_CONFIG', () => {
    expect(() => new RedfishClient({ url: 'ftp://x', username: 'a', password: 'b' })).toThrow(/http/);
  });
});
