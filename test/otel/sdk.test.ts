/**
 * otel/sdk.ts with the real OTLP exporters against a real loopback receiver
 * (test/helpers/otlp-receiver.ts), in-process and through `dpu-ztp serve`.
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { instruments, Metric, tracer } from '../../otel/index.js';
import { parseKeyValueList, signalUrl, startTelemetry } from '../../otel/sdk.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { childEnv, seedDataDir, startServe } from '../helpers/serve.js';
import { repeatsPgliteRun } from '../helpers/db.js';

afterEach(() => {
  trace.disable();
  metrics.disable();
  context.disable();
  propagation.disable();
});

/** A loopback port with nothing listening (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('startTelemetry', () => {
  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`exports parent and child spans over OTLP ${protocol} with the configured resource`, async () => {
      const rx = await startOtlpReceiver();
      try {
        const t = startTelemetry({
          env: {
            OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
            OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
            OTEL_SERVICE_NAME: 'otel-test',
            OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=lab',
          },
          defaultServiceName: 'dpu-ztp',
        });
        expect(t.tracing).toBe(true);
        await tracer().startActiveSpan('outer', async (outer) => {
          tracer().startSpan('inner').end();
          outer.addEvent('progress');
          outer.end();
        });
        await t.shutdown();
        const outer = rx.spans.find((s) => s.name === 'outer');
        const inner = rx.spans.find((s) => s.name === 'inner');
        expect(outer?.service).toBe('otel-test');
        expect(outer?.encoding).toBe(protocol === 'http/json' ? 'json' : 'protobuf');
        expect(outer?.events).toEqual(['progress']);
        expect(inner?.traceId).toBe(outer?.traceId);
        expect(inner?.parentSpanId).toBe(outer?.spanId);
      } finally {
        await rx.close();
      }
    });
  }

  it('with no endpoint registers no tracer provider (spans stay the no-op) and sends nothing', async () => {
    const t = startTelemetry({ env: {}, defaultServiceName: 'dpu-ztp', prometheus: true });
    expect(t.tracing).toBe(false);
    const span = tracer().startSpan('nothing');
    expect(span.isRecording()).toBe(false);
    span.end();
    await t.shutdown();
  });

  it('OTEL_SDK_DISABLED=true starts nothing, not even the scrape', () => {
    const t = startTelemetry({
      env: { OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' },
      defaultServiceName: 'dpu-ztp',
      prometheus: true,
    });
    expect(t.tracing).toBe(false);
    expect(t.scrape).toBeUndefined();
  });

  it('a collector on a closed port neither fails the work nor holds shutdown past its 2 s budget', async () => {
    const port = await closedPort();
    const t = startTelemetry({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_METRIC_EXPORT_INTERVAL: '100' },
      defaultServiceName: 'dpu-ztp',
      prometheus: true,
    });
    for (let i = 0; i < 5000; i++) tracer().startSpan(`s${i}`).end(); // beyond the 2048 queue
    const started = performance.now();
    await t.shutdown();
    // The budget is a timer, not work: only a blocked event loop could stretch it.
    expect(performance.now() - started).toBeLessThan(2_000 + 1_000);
  });

  it('scrape serves instruments in Prometheus text format, including SDK queue drops', async () => {
    const port = await closedPort();
    const t = startTelemetry({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
      defaultServiceName: 'dpu-ztp',
      prometheus: true,
    });
    instruments().progressReports.add(2, { progress_type: 'bootstrap-complete' });
    // one batch of 512 is taken out for export, the rest overflow the 2 048 queue
    for (let i = 0; i < 5000; i++) tracer().startSpan(`s${i}`).end();
    const text = await (t.scrape as () => Promise<string>)();
    expect(text).toContain(
      'dpu_ztp_sztp_progress_reports_total{progress_type="bootstrap-complete",otel_scope_name="dpu-ztp"} 2',
    );
    expect(text).toMatch(/otel_sdk_processor_span_processed_total\{[^}]*error_type="queue_full"[^}]*\} \d+/);
    await t.shutdown();
  });

  it('reads OTEL_* lists and endpoints as the OTLP exporter spec says', () => {
    expect(parseKeyValueList('a=1, b = x%20y ,bad,=z')).toEqual({ a: '1', b: 'x y' });
    expect(signalUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }, 'traces')).toBe(
      'http://c:4318/v1/traces',
    );
    expect(
      signalUrl(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m/x' },
        'metrics',
      ),
    ).toBe('http://m/x');
    expect(signalUrl({}, 'traces')).toBeUndefined();
  });
});

describe.skipIf(repeatsPgliteRun)('dpu-ztp serve with OTEL_* set', () => {
  it('exports its spans, serves GET /metrics without a token, and stops promptly', {
    timeout: 180_000,
  }, async () => {
    const rx = await startOtlpReceiver();
    // start-up is slow on a loaded shared machine: give it room (not a speed check)
    const serve = await startServe(
      ['--data-dir', seedDataDir(join(mkdtempSync(join(tmpdir(), 'dpu-ztp-sdk-')), 'data'))],
      childEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }),
      120_000,
    );
    try {
      // An image read (missing image: a 404) and a RESTCONF discovery, both recorded.
      expect((await fetch(`${serve.images}/images/none.img`)).status).toBe(404);
      const metricsRes = await fetch(`${serve.api}/metrics`);
      expect(metricsRes.status).toBe(200);
      expect(metricsRes.headers.get('content-type')).toContain('text/plain');
      const text = await metricsRes.text();
      expect(text).toContain(
        `${Metric.imageActiveDownloads.replaceAll('.', '_')}{listener="http",otel_scope_name="dpu-ztp"} 0`,
      );
    } finally {
      const started = performance.now();
      expect(await serve.stop()).toBe(0);
      expect(performance.now() - started).toBeLessThan(10_000);
      await rx.close();
    }
    const img = rx.spans.find((s) => s.name === 'image.serve');
    expect(img?.service).toBe('dpu-ztp');
    expect(img?.attributes['http.response.status_code']).toBe(404);
  });

  it('--no-metrics removes GET /metrics', { timeout: 180_000 }, async () => {
    const serve = await startServe(
      ['--no-metrics', '--data-dir', seedDataDir(join(mkdtempSync(join(tmpdir(), 'dpu-ztp-sdk-')), 'data'))],
      childEnv(),
      120_000,
    );
    try {
      expect((await fetch(`${serve.api}/metrics`)).status).toBe(404);
    } finally {
      await serve.stop();
    }
  });
});
