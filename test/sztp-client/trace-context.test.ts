/**
 * The agent's trace context over real HTTPS (lab PKI, node:https): the job's
 * `traceparent` handed over by a trusted server is sent on every later request;
 * `--traceparent` wins; an untrusted server cannot set it.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLabPki, decodeArtifact } from '../../pki/index.js';
import { AgentTraceContext, HttpsSource, isTraceparent } from '../../sztp-client/index.js';

const JOB = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const OVERRIDE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

let server: Server;
let url: string;
let tlsCa: Uint8Array;
/** `path traceparent-or-none` per request, in order. */
const seen: string[] = [];

beforeAll(async () => {
  const pki = await createLabPki({ now: new Date(), devices: ['TC-1'] });
  const file = (p: string) => Buffer.from(pki.files.find((f) => f.path === p)!.data).toString();
  tlsCa = decodeArtifact(file('tls-ca.crt'));
  server = createServer({ cert: file('server.crt'), key: file('server.key') }, (req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.url?.split(':').pop()} ${req.headers.traceparent ?? 'none'}`);
      if (req.url?.endsWith('get-bootstrapping-data')) {
        res.writeHead(200, { 'content-type': 'application/yang-data+json', traceparent: JOB });
        res.end(JSON.stringify({ 'ietf-sztp-bootstrap-server:output': { 'conveyed-information': 'AAAA' } }));
      } else if (req.url?.endsWith('report-progress')) res.writeHead(204).end();
      else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function session(trust: boolean, override?: string): Promise<string[]> {
  seen.length = 0;
  const source = new HttpsSource({
    url,
    trustAnchors: trust ? [tlsCa] : [],
    timeoutMs: 10_000,
    trace: new AgentTraceContext(override),
  });
  await source.fetch({ signedDataPreferred: false }).catch(() => undefined); // the body is not real CMS
  if (trust) await source.report({ type: 'bootstrap-initiated' });
  await source.fetch({ signedDataPreferred: false }).catch(() => undefined);
  return [...seen];
}

describe('AgentTraceContext with HttpsSource', () => {
  it('continues the trace a trusted server hands over on every later request', async () => {
    expect(await session(true)).toEqual([
      '/.well-known/host-meta none',
      'get-bootstrapping-data none',
      `report-progress ${JOB}`,
      `get-bootstrapping-data ${JOB}`,
    ]);
  });

  it('sends --traceparent on every request, whatever the server hands over', async () => {
    expect(await session(true, OVERRIDE)).toEqual([
      `/.well-known/host-meta ${OVERRIDE}`,
      `get-bootstrapping-data ${OVERRIDE}`,
      `report-progress ${OVERRIDE}`,
      `get-bootstrapping-data ${OVERRIDE}`,
    ]);
  });

  it('takes nothing from an untrusted server', async () => {
    expect(await session(false)).toEqual([
      '/.well-known/host-meta none',
      'get-bootstrapping-data none',
      'get-bootstrapping-data none',
    ]);
  });

  it('accepts only version-00 traceparents with non-zero ids', () => {
    expect(isTraceparent(JOB)).toBe(true);
    for (const bad of [
      JOB.toUpperCase(),
      `01${JOB.slice(2)}`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `${JOB} `,
    ])
      expect(isTraceparent(bad), bad).toBe(false);
  });
});
