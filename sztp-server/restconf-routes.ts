/**
 * RESTCONF routes of the bootstrap server (RFC 8040 + RFC 8572 §7): root
 * discovery, the two operations, content negotiation of JSON and XML, and
 * every failure as `ietf-restconf:errors`. Registered as an encapsulated
 * plugin on the device listener (STYLE.md lesson 3).
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BootstrapService, DeviceIdentity, ImageBase, RequestCredentials } from './bootstrap-rpc.js';
import { SztpError } from './errors.js';
import { instruments, progressAttrs, restconfAttrs } from '../otel/index.js';
import {
  type Encoding,
  encodeErrors,
  MEDIA_TYPE,
  OutputEncoder,
  parseGetBootstrappingDataJson,
  parseGetBootstrappingDataXml,
  parseReportProgressJson,
  parseReportProgressXml,
  SZTP_SERVER_MOD,
} from './restconf-codec.js';

/** Options of the RESTCONF plugin. */
export interface RestconfRoutesOptions {
  service: BootstrapService;
  /** Advertised base URLs for image downloads; when absent, derived from the request's Host. */
  imageBase?: (req: FastifyRequest) => ImageBase;
  /** Largest request body in bytes (default {@link RESTCONF_BODY_LIMIT}). */
  bodyLimit?: number;
}

/**
 * Default body limit: 128 KiB. The largest RPC input is report-progress with a
 * message (at most 64 KiB, see the codec), SSH host keys and trust-anchor
 * certificate bags (a few KiB each); get-bootstrapping-data inputs are a few
 * hundred bytes.
 */
export const RESTCONF_BODY_LIMIT = 128 * 1024;

const JSON_TYPES = ['application/yang-data+json', 'application/json'];
const XML_TYPES = ['application/yang-data+xml', 'application/xml', 'text/xml'];

/** The request body's encoding, from Content-Type (absent: JSON, as the OPI agent sends none on some paths). */
function requestEncoding(req: FastifyRequest): Encoding | undefined {
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct === '' || JSON_TYPES.includes(ct)) return 'json';
  if (XML_TYPES.includes(ct)) return 'xml';
  return undefined;
}

/** The response encoding by Accept (RFC 8040 §5.2); no Accept: the request's encoding. */
function responseEncoding(req: FastifyRequest, fallback: Encoding): Encoding {
  const accept = req.headers.accept;
  if (!accept) return fallback;
  let best: { enc: Encoding; q: number } | undefined;
  for (const part of accept.split(',')) {
    const [typeRaw, ...params] = part.trim().split(';');
    const type = (typeRaw ?? '').trim().toLowerCase();
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qp ? Number(qp.slice(2)) : 1;
    if (!(q > 0)) continue;
    let enc: Encoding | undefined;
    if (JSON_TYPES.includes(type)) enc = 'json';
    else if (XML_TYPES.includes(type)) enc = 'xml';
    else if (type === '*/*' || type === 'application/*') enc = fallback;
    if (enc && (!best || q > best.q)) best = { enc, q };
  }
  if (!best)
    throw new SztpError(
      'SZTP_ERR_NOT_ACCEPTABLE',
      `Accept: ${accept} allows neither ${MEDIA_TYPE.json} nor ${MEDIA_TYPE.xml}`,
    );
  return best.enc;
}

/** Peer chains by TLS connection: a keep-alive connection's client certificate cannot change. */
const chains = new WeakMap<TLSSocket, Uint8Array[]>();

/**
 * The client certificate chain as the device sent it (leaf first), DER. Read with
 * `getPeerCertificate(true)` (~100 µs per new connection) rather than the cheaper
 * `getPeerX509Certificate()` (~20 µs, leaf only): measured on Node 20, once the latter has
 * been called the former no longer returns the intermediates the client sent, so an IDevID
 * under an issuing CA could not be validated.
 */
function peerChain(req: FastifyRequest): Uint8Array[] {
  const socket = req.raw.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function') return [];
  const known = chains.get(socket);
  if (known) return known;
  const chain: Uint8Array[] = [];
  const leaf = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  let c: typeof leaf | undefined = leaf?.raw ? leaf : undefined;
  while (c?.raw && !seen.has(c.fingerprint256) && chain.length < 10) {
    seen.add(c.fingerprint256);
    chain.push(new Uint8Array(c.raw));
    c = c.issuerCertificate as typeof leaf | undefined;
  }
  chains.set(socket, chain);
  return chain;
}

function credentials(req: FastifyRequest): RequestCredentials {
  return { peerChain: peerChain(req), authorization: req.headers.authorization, remoteAddress: req.ip };
}

/** The identity each operation request authenticated as, set by its onRequest hook. */
const identities = new WeakMap<FastifyRequest, DeviceIdentity>();

/** The identity {@link restconfRoutes}' onRequest hook authenticated (it always ran before the handler). */
function identityOf(req: FastifyRequest): DeviceIdentity {
  const id = identities.get(req);
  if (!id) throw new SztpError('SZTP_ERR_UNAUTHENTICATED', 'request was not authenticated');
  return id;
}

function defaultImageBase(req: FastifyRequest): ImageBase {
  return { https: `https://${req.headers.host ?? req.hostname}` };
}

function sendError(reply: FastifyReply, err: SztpError, enc: Encoding): FastifyReply {
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.code(err.status).type(MEDIA_TYPE[enc]).send(encodeErrors(err, enc));
}

/** Registers root discovery and the two RFC 8572 operations. */
export async function restconfRoutes(app: FastifyInstance, opts: RestconfRoutesOptions): Promise<void> {
  // Keep the raw body: each operation parses JSON or XML itself, so that a parse
  // failure becomes a RESTCONF error rather than Fastify's generic one.
  app.removeAllContentTypeParsers();

  // Metrics: requests and latency by RPC and outcome (`ok`, or the HTTP status
  // class of the RESTCONF error), with attribute objects built once per pair.
  const m = instruments();
  // The RPCs' request counters start at 0 (a series that appears at 1 shows no rate until it moves again).
  for (const rpc of ['get-bootstrapping-data', 'report-progress'])
    m.restconfRequests.add(0, restconfAttrs(rpc, 'ok'));
  const rpcOf = new Map<string | undefined, string>();
  app.addHook('onResponse', (req, reply, done) => {
    const url = req.routeOptions.url;
    let rpc = rpcOf.get(url);
    if (rpc === undefined) {
      rpc = url?.startsWith('/restconf/operations/') ? url.slice(url.lastIndexOf(':') + 1) : 'other';
      rpcOf.set(url, rpc);
    }
    const s = reply.statusCode;
    const attrs = restconfAttrs(rpc, s < 400 ? 'ok' : s < 500 ? 'client_error' : 'server_error');
    m.restconfRequests.add(1, attrs);
    m.restconfDuration.record(reply.elapsedTime / 1000, attrs);
    done();
  });
  app.addContentTypeParser(
    '*',
    { parseAs: 'string', bodyLimit: opts.bodyLimit ?? RESTCONF_BODY_LIMIT },
    (_req, body, done) => done(null, body),
  );

  app.setErrorHandler((err, req, reply) => {
    const enc = requestEncoding(req) ?? 'json';
    if (err instanceof SztpError) return sendError(reply, err, enc);
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.statusCode === 413 || e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(
        reply,
        new SztpError(
          'SZTP_ERR_TOO_BIG',
          `request body exceeds ${opts.bodyLimit ?? RESTCONF_BODY_LIMIT} bytes`,
        ),
        enc,
      );
    }
    if (e.statusCode && e.statusCode < 500)
      return sendError(reply, new SztpError('SZTP_ERR_MALFORMED', e.message), enc);
    req.log.error({ err }, 'RESTCONF request failed');
    return sendError(reply, new SztpError('SZTP_ERR_INTERNAL', 'internal error'), enc);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(
      reply,
      new SztpError('SZTP_ERR_UNKNOWN_OPERATION', `no RESTCONF resource ${req.method} ${req.url}`),
      'json',
    ),
  );

  // RFC 8040 §3.1: root resource discovery.
  app.get('/.well-known/host-meta', async (_req, reply) =>
    reply
      .type('application/xrd+xml')
      .send(
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0"><Link rel="restconf" href="/restconf"/></XRD>',
      ),
  );
  app.get('/restconf', async (req, reply) => {
    const enc = responseEncoding(req, 'json');
    const body =
      enc === 'json'
        ? JSON.stringify({
            'ietf-restconf:restconf': { data: {}, operations: {}, 'yang-library-version': '2019-01-04' },
          })
        : '<restconf xmlns="urn:ietf:params:xml:ns:yang:ietf-restconf"><data/><operations/><yang-library-version>2019-01-04</yang-library-version></restconf>';
    return reply.type(MEDIA_TYPE[enc]).send(body);
  });
  app.get('/restconf/operations', async (req, reply) => {
    const enc = responseEncoding(req, 'json');
    const ops = ['get-bootstrapping-data', 'report-progress'];
    const body =
      enc === 'json'
        ? JSON.stringify({
            'ietf-restconf:operations': Object.fromEntries(
              ops.map((o) => [`${SZTP_SERVER_MOD}:${o}`, [null]]),
            ),
          })
        : `<operations xmlns="urn:ietf:params:xml:ns:yang:ietf-restconf">${ops.map((o) => `<${o} xmlns="urn:ietf:params:xml:ns:yang:${SZTP_SERVER_MOD}">/restconf/operations/${SZTP_SERVER_MOD}:${o}</${o}>`).join('')}</operations>`;
    return reply.type(MEDIA_TYPE[enc]).send(body);
  });

  const encoder = new OutputEncoder();
  // Fastify route syntax: '::' is a literal ':'.
  const base = `/restconf/operations/${SZTP_SERVER_MOD}:`.replace(/:$/, '::');

  // Authenticate (client certificate or HTTP Basic) in onRequest, before the body is even
  // read: an unauthenticated client never costs a body buffer or a JSON/XML parse.
  const authenticateFirst = async (req: FastifyRequest): Promise<void> => {
    identities.set(req, await opts.service.authenticate(credentials(req)));
  };

  app.post(`${base}get-bootstrapping-data`, { onRequest: authenticateFirst }, async (req, reply) => {
    const { reqEnc, enc, raw } = negotiate(req);
    const input =
      reqEnc === 'json' ? parseGetBootstrappingDataJson(parseJson(raw)) : parseGetBootstrappingDataXml(raw);
    const out = await opts.service.getBootstrappingData(
      credentials(req),
      input,
      enc,
      (opts.imageBase ?? defaultImageBase)(req),
      identityOf(req),
      req.headers.traceparent,
    );
    if (out.traceparent) reply.header('traceparent', out.traceparent);
    return reply.type(MEDIA_TYPE[enc]).send(encoder.encode(out, enc));
  });

  app.post(`${base}report-progress`, { onRequest: authenticateFirst }, async (req, reply) => {
    // Negotiated even though 204 has no body: 406 when nothing acceptable.
    const { reqEnc, raw } = negotiate(req);
    const input = reqEnc === 'json' ? parseReportProgressJson(parseJson(raw)) : parseReportProgressXml(raw);
    const traceparent = await opts.service.reportProgress(
      credentials(req),
      input,
      identityOf(req),
      req.headers.traceparent,
    );
    m.progressReports.add(1, progressAttrs(input.progressType));
    if (traceparent) reply.header('traceparent', traceparent);
    return reply.code(204).send();
  });
}

/** Request and response encodings of an operation, and its raw body; 415/406 as RESTCONF errors. */
function negotiate(req: FastifyRequest): { reqEnc: Encoding; enc: Encoding; raw: string } {
  const reqEnc = requestEncoding(req);
  if (!reqEnc) {
    throw new SztpError(
      'SZTP_ERR_UNSUPPORTED_MEDIA_TYPE',
      `Content-Type ${req.headers['content-type']} is not ${MEDIA_TYPE.json} or ${MEDIA_TYPE.xml}`,
    );
  }
  return { reqEnc, enc: responseEncoding(req, reqEnc), raw: typeof req.body === 'string' ? req.body : '' };
}

function parseJson(raw: string): unknown {
  if (raw.trim() === '') return undefined;
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new SztpError('SZTP_ERR_MALFORMED', `JSON body: ${(err as Error).message}`);
  }
}
