/**
 * How the operator listener serves the dashboard: `/` is `index.html`
 * revalidated on every load, hashed assets are immutable, every response but
 * `/docs` carries the self-only CSP (swagger-ui keeps working), unknown paths
 * are the API's problem 404, a missing build is a 503 naming the build step,
 * and `GET /api/v1/session` tells the page who its token is and the trace URL.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CSP } from '../../bootstrap/index.js';
import { type TestApi, testApi } from '../helpers/api.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-dashboard-files-'));
mkdirSync(join(root, 'assets'));
writeFileSync(
  join(root, 'index.html'),
  '<!doctype html><script type="module" src="/assets/index-Ab12Cd34.js"></script>',
);
writeFileSync(join(root, 'assets', 'index-Ab12Cd34.js'), 'console.log(1)');
writeFileSync(join(root, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');

let api: TestApi;
let bare: TestApi;
beforeAll(async () => {
  api = await testApi({ dashboard: { root, traceUiUrl: 'https://grafana.lab/trace/{traceId}' } });
  bare = await testApi({ dashboard: { root: join(root, 'missing') } });
});
afterAll(async () => {
  await api?.close();
  await bare?.close();
});

describe('dashboard serving', () => {
  it('serves index.html at / with no-cache and the self-only CSP', async () => {
    const r = await api.req({ method: 'GET', url: '/', as: null });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toMatch(/default-src 'self'/);
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
  });

  it('serves hashed assets as immutable, other files as no-cache', async () => {
    const js = await api.req({ method: 'GET', url: '/assets/index-Ab12Cd34.js', as: null });
    expect(js.statusCode).toBe(200);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const icon = await api.req({ method: 'GET', url: '/favicon.svg', as: null });
    expect(icon.headers['cache-control']).toBe('no-cache');
  });

  it('answers unknown paths with the API problem 404, never a file outside the build', async () => {
    for (const url of ['/nope', '/assets/../../etc/passwd', '/assets/missing-Ab12Cd34.js']) {
      const r = await api.req({ method: 'GET', url, as: null });
      expect(r.statusCode, url).toBe(404);
      expect(r.json().code).toBe('API_ERR_NOT_FOUND');
    }
  });

  it('keeps /docs (swagger-ui, inline code) outside the CSP and working', async () => {
    const r = await api.req({ method: 'GET', url: '/docs/', as: null });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-security-policy']).toBeUndefined();
  });

  it('says how to build when the dashboard is missing', async () => {
    const r = await bare.req({ method: 'GET', url: '/', as: null });
    expect(r.statusCode).toBe(503);
    expect(r.json().detail).toMatch(/npm run build/);
  });

  it('GET /api/v1/session: the token name and role, the trace URL; 401 without a token', async () => {
    const r = await api.req({ method: 'GET', url: '/api/v1/session', as: 'viewer' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      name: 'test-viewer',
      role: 'viewer',
      traceUiUrl: 'https://grafana.lab/trace/{traceId}',
    });
    expect(
      (await bare.req({ method: 'GET', url: '/api/v1/session', as: 'operator' })).json().traceUiUrl,
    ).toBe(null);
    expect((await api.req({ method: 'GET', url: '/api/v1/session', as: null })).statusCode).toBe(401);
  });
});
