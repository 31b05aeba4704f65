/**
 * Metrics recorded where the work happens, read back through the SDK's real
 * Prometheus scrape (otel/sdk.ts), and the HTTP instrumentations the SDK wires
 * (@fastify/otel on /api/, undici for non-Redfish requests) against a real
 * OTLP receiver.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import fastify from 'fastify';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { observeDevicesByState } from '../../otel/index.js';
import { startTelemetry } from '../../otel/sdk.js';
import { WriteBehind } from '../../sztp-server/write-behind.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';

afterEach(() => {
  trace.disable();
  metrics.disable();
  context.disable();
  propagation.disable();
});

/** The value of the first scrape line that starts with `prefix`, or undefined. */
function sample(text: string, prefix: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('metrics in the scrape', () => {
  it('write-behind depth and drops by queue (the drop counter starts at 0)', async () => {
    const t = startTelemetry({ env: {}, defaultServiceName: 'dpu-ztp', prometheus: true });
    const scrape = t.scrape as () => Promise<string>;
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    const q = new WriteBehind<number>(
      async (batch) => {
        await blocked;
        if (batch.some((b) => b.item < 0)) throw new Error('database down');
      },
      { name: 'test_queue', flushMs: 60_000, maxPending: 3 },
    );
    const depth = 'dpu_ztp_write_behind_depth{queue="test_queue"';
    const dropped = 'dpu_ztp_write_behind_dropped_total{queue="test_queue"';
    expect(sample(await scrape(), dropped)).toBe(0);
    for (const i of [1, 2, 3, 4, 5]) q.add(i); // 5 into a queue of 3: the 2 oldest are dropped
    let text = await scrape();
    expect(sample(text, depth)).toBe(3);
    expect(sample(text, dropped)).toBe(2);
    q.add(-1); // one more overflow, then a batch the "database" refuses whole
    const flushed = q.flush();
    release();
    await flushed;
    text = await scrape();
    expect(sample(text, depth)).toBe(0);
    expect(sample(text, dropped)).toBe(2 + 1 + 3);
    await t.shutdown();
  });

  it('devices by state: one query per 5 s for any number of collections, every state reported, a hung database bounded', async () => {
    const t = startTelemetry({ env: {}, defaultServiceName: 'dpu-ztp', prometheus: true });
    const scrape = t.scrape as () => Promise<string>;
    let reads = 0;
    let hang = false;
    const stop = observeDevicesByState(
      async () => {
        reads++;
        if (hang) await new Promise(() => undefined);
        return [{ state: 'provisioned', count: 7 }];
      },
      { maxAgeMs: 200, timeoutMs: 100, states: ['registered', 'provisioned'] },
    );
    const [a, b] = await Promise.all([scrape(), scrape()]);
    expect(reads).toBe(1);
    for (const text of [a, b]) {
      expect(sample(text, 'dpu_ztp_devices{state="provisioned"')).toBe(7);
      expect(sample(text, 'dpu_ztp_devices{state="registered"')).toBe(0);
    }
    await scrape();
    expect(reads).toBe(1); // within maxAge: the last read is reused
    await new Promise((r) => setTimeout(r, 250));
    hang = true;
    const started = performance.now();
    const text = await scrape();
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(reads).toBe(2);
    expect(sample(text, 'dpu_ztp_devices{state="provisioned"')).toBe(7); // the last values, not nothing
    stop();
    await t.shutdown();
  });
});

describe('HTTP instrumentations (only while spans are exported)', () => {
  it('@fastify/otel traces /api/ routes only; undici traces outgoing requests except Redfish ones', async () => {
    const rx = await startOtlpReceiver();
    const peer = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    const peerUrl = `http://127.0.0.1:${(peer.address() as AddressInfo).port}`;
    try {
      const t = startTelemetry({
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url },
        defaultServiceName: 'dpu-ztp',
        instrument: true,
      });
      const app = fastify();
      app.get('/api/v1/things/:id', async () => ({ ok: true }));
      app.get('/restconf/data', async () => ({ ok: true }));
      await app.ready();
      expect((await app.inject({ method: 'GET', url: '/api/v1/things/7' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/restconf/data' })).statusCode).toBe(200);
      await (await request(`${peerUrl}/hook`, { method: 'POST', body: '{}' })).body.text();
      await (await request(`${peerUrl}/redfish/v1/`, { headers: { 'OData-Version': '4.0' } })).body.text();
      await app.close();
      await t.shutdown();
      const routes = rx.spans.map((s) => s.attributes['http.route']).filter(Boolean);
      expect(routes).toContain('/api/v1/things/:id');
      expect(routes).not.toContain('/restconf/data');
      const client = rx.spans.filter((s) => typeof s.attributes['url.full'] === 'string');
      expect(client.map((s) => s.attributes['url.full'])).toEqual([`${peerUrl}/hook`]);
    } finally {
      await new Promise((r) => peer.close(r));
      await rx.close();
    }
  });

  it('without an endpoint nothing is instrumented', async () => {
    const t = startTelemetry({ env: {}, defaultServiceName: 'dpu-ztp', prometheus: true, instrument: true });
    expect(t.tracing).toBe(false);
    const app = fastify();
    await app.ready();
    expect(app.hasPlugin('@fastify/otel')).toBe(false);
    await app.close();
    await t.shutdown();
  });
});
