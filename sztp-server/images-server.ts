/** The plain-HTTP images listener (:8081) that BMCs and devices download from. */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { ImageServer, type ImageServingOptions, imageServerFactory } from './image-serving.js';

/** What the images listener needs. */
export interface ImagesServerOptions {
  logger: FastifyBaseLogger;
  /** Serve `GET|HEAD /images/{name}` (without it only /healthz answers). */
  images?: Omit<ImageServingOptions, 'listener'> | undefined;
}

/** Builds the images app (not listening). */
export function buildImagesServer(opts: ImagesServerOptions): FastifyInstance {
  // `GET|HEAD /images/{name}` is answered in front of Fastify (see imageServerFactory);
  // Fastify serves the rest (/healthz, 404s).
  const images = opts.images ? new ImageServer({ ...opts.images, listener: 'http' }, opts.logger) : undefined;
  const app = Fastify({
    loggerInstance: opts.logger,
    ...(images ? { serverFactory: imageServerFactory(images) } : {}),
  }) as unknown as FastifyInstance;
  app.get('/healthz', async () => ({ status: 'ok' }));
  if (images) app.addHook('onClose', () => images.close());
  return app;
}
