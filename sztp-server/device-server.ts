/**
 * The device-facing listener (:8443, TLS): RFC 8572 RESTCONF and HTTPS image
 * downloads. A client certificate is requested but not required at the TLS
 * layer (`rejectUnauthorized: false`), so a device without one still gets a
 * RESTCONF error instead of a TLS abort; each request is judged on its own.
 */
import type { Server as TlsServer } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import { type ImageServingOptions, imageServing } from './image-serving.js';
import type { BootstrapService } from './bootstrap-rpc.js';
import { SztpError } from './errors.js';
import { encodeErrors, MEDIA_TYPE } from './restconf-codec.js';
import { type RestconfRoutesOptions, restconfRoutes } from './restconf-routes.js';

/** TLS material for the device listener. */
export interface DeviceTls {
  /** Server certificate chain (PEM). */
  cert: Buffer | string;
  /** Server private key (PEM). */
  key: Buffer | string;
  /** CA certificates clients may present (manufacturer CAs), PEM: sent in the CertificateRequest. */
  ca?: Array<Buffer | string>;
}

/** What the device listener needs. */
export interface DeviceServerOptions {
  logger: FastifyBaseLogger;
  tls: DeviceTls;
  /** Serve `GET|HEAD /images/{name}` over HTTPS too (some BMCs refuse plain HTTP). */
  images?: Omit<ImageServingOptions, 'listener'> | undefined;
  /** A TLS connection whose handshake has not finished after this long is closed (default Node's 120 s). */
  handshakeTimeoutMs?: number;
  /** The bootstrap logic behind the RESTCONF operations. */
  service: BootstrapService;
  /** Advertised image base URLs (see RestconfRoutesOptions). */
  imageBase?: RestconfRoutesOptions['imageBase'];
}

/** Builds the device-facing app (not listening). */
export async function buildDeviceServer(opts: DeviceServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger,
    // Image names may be up to 128 characters (Fastify's default parameter limit is 100).
    routerOptions: { maxParamLength: 256 },
    // Router errors (an image name past the limit, a URL that does not decode) answer
    // as RESTCONF errors like everything else on this listener.
    frameworkErrors: (err, _req, res) => {
      const reply = res as unknown as FastifyReply;
      const e = new SztpError(
        'SZTP_ERR_MALFORMED',
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? 'a path segment is longer than 256 characters'
          : 'malformed URL',
      );
      void reply.code(e.status).type(MEDIA_TYPE.json).send(encodeErrors(e, 'json'));
    },
    https: {
      cert: opts.tls.cert,
      key: opts.tls.key,
      ...(opts.tls.ca ? { ca: opts.tls.ca } : {}),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      ...(opts.handshakeTimeoutMs ? { handshakeTimeout: opts.handshakeTimeoutMs } : {}),
    },
  }) as unknown as FastifyInstance;
  app.get('/healthz', async () => ({ status: 'ok' }));
  // Queued request records are written before the database closes.
  app.addHook('onClose', async () => opts.service.flush());
  if (opts.images) await app.register(imageServing, { ...opts.images, listener: 'https' });
  await app.register(restconfRoutes, {
    service: opts.service,
    ...(opts.imageBase ? { imageBase: opts.imageBase } : {}),
  });
  return app;
}

/**
 * Replaces the device listener's certificate, key and client CA list in place (Node's
 * `setSecureContext`): handshakes from now on use the new ones, connections already
 * open keep theirs. Used when another replica rotates the TLS credentials.
 */
export function setDeviceTls(app: FastifyInstance, tls: DeviceTls): void {
  (app.server as unknown as TlsServer).setSecureContext({
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca ? { ca: tls.ca } : {}),
    minVersion: 'TLSv1.2',
  });
}
