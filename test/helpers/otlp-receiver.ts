/**
 * A test OTLP/HTTP receiver: a real node:http server on loopback that accepts
 * `POST /v1/traces` and `/v1/metrics` as sent by the real OTLP exporters, in
 * both encodings (`application/x-protobuf` and `application/json`), and keeps
 * the decoded spans.
 *
 * Protobuf is decoded from the wire format by the field numbers of
 * opentelemetry-proto (trace/v1/trace.proto, common/v1/common.proto,
 * resource/v1/resource.proto): only the fields the tests read.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One received span, in the shape the tests read. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, string | number | boolean>;
  events: string[];
  /** The resource's `service.name`. */
  service: string;
  /** How it arrived. */
  encoding: 'protobuf' | 'json';
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  /** Request counts per path. */
  requests: Record<string, number>;
  close(): Promise<void>;
}

type Field = { no: number; wire: number; value: bigint | Uint8Array };

/** Splits one protobuf message into its fields (varint, 64-bit, length-delimited, 32-bit). */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++]!;
      r |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return r;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 1) {
      out.push({ no, wire, value: buf.subarray(i, i + 8) });
      i += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, value: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 5) {
      out.push({ no, wire, value: buf.subarray(i, i + 4) });
      i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const text = (v: Field['value']) => Buffer.from(v as Uint8Array).toString('utf8');
const hex = (v: Field['value']) => Buffer.from(v as Uint8Array).toString('hex');

/** common.v1.KeyValue { 1 key; 2 AnyValue { 1 string, 2 bool, 3 int, 4 double } }. */
function keyValue(buf: Uint8Array): [string, string | number | boolean] {
  let key = '';
  let value: string | number | boolean = '';
  for (const f of fields(buf)) {
    if (f.no === 1) key = text(f.value);
    if (f.no === 2) {
      for (const a of fields(f.value as Uint8Array)) {
        if (a.no === 1) value = text(a.value);
        else if (a.no === 2) value = (a.value as bigint) !== 0n;
        else if (a.no === 3) value = Number(BigInt.asIntN(64, a.value as bigint));
        else if (a.no === 4) value = Buffer.from(a.value as Uint8Array).readDoubleLE(0);
      }
    }
  }
  return [key, value];
}

function decodeProtobuf(body: Uint8Array): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of fields(body).filter((f) => f.no === 1)) {
    let service = '';
    const scopeSpans: Uint8Array[] = [];
    for (const f of fields(rs.value as Uint8Array)) {
      if (f.no === 1) {
        for (const a of fields(f.value as Uint8Array)) {
          if (a.no !== 1) continue;
          const [k, v] = keyValue(a.value as Uint8Array);
          if (k === 'service.name') service = String(v);
        }
      } else if (f.no === 2) scopeSpans.push(f.value as Uint8Array);
    }
    for (const ss of scopeSpans) {
      for (const sp of fields(ss).filter((f) => f.no === 2)) {
        const span: ReceivedSpan = {
          traceId: '',
          spanId: '',
          parentSpanId: '',
          name: '',
          attributes: {},
          events: [],
          service,
          encoding: 'protobuf',
        };
        for (const f of fields(sp.value as Uint8Array)) {
          if (f.no === 1) span.traceId = hex(f.value);
          else if (f.no === 2) span.spanId = hex(f.value);
          else if (f.no === 4) span.parentSpanId = hex(f.value);
          else if (f.no === 5) span.name = text(f.value);
          else if (f.no === 9) {
            const [k, v] = keyValue(f.value as Uint8Array);
            span.attributes[k] = v;
          } else if (f.no === 11) {
            for (const e of fields(f.value as Uint8Array)) if (e.no === 2) span.events.push(text(e.value));
          }
        }
        spans.push(span);
      }
    }
  }
  return spans;
}

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
}
interface JsonKv {
  key: string;
  value: JsonAnyValue;
}

function decodeJson(body: string): ReceivedSpan[] {
  const req = JSON.parse(body) as {
    resourceSpans?: Array<{
      resource?: { attributes?: JsonKv[] };
      scopeSpans?: Array<{
        spans?: Array<{
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          attributes?: JsonKv[];
          events?: Array<{ name: string }>;
        }>;
      }>;
    }>;
  };
  const val = (v: JsonAnyValue) =>
    v.stringValue ?? v.boolValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? ''));
  const spans: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const service = String(
      val(rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value ?? { stringValue: '' }),
    );
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        spans.push({
          // OTLP/JSON carries ids as hex strings (OTLP spec, JSON encoding)
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, val(a.value)])),
          events: (s.events ?? []).map((e) => e.name),
          service,
          encoding: 'json',
        });
      }
    }
  }
  return spans;
}

/** Starts a receiver on 127.0.0.1 (an ephemeral port). */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: Record<string, number> = {};
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      requests[path] = (requests[path] ?? 0) + 1;
      const body = Buffer.concat(chunks);
      const json = (req.headers['content-type'] ?? '').includes('json');
      try {
        if (path === '/v1/traces')
          spans.push(...(json ? decodeJson(body.toString('utf8')) : decodeProtobuf(body)));
      } catch (err) {
        res.writeHead(400).end(String(err));
        return;
      }
      // An empty ExportServiceResponse: zero bytes in protobuf, {} in JSON.
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
