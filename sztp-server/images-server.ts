/** The plain-HTTP images listener (:8081) that BMCs and devices download from. */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { type ImageServingOptions, imageServing } from './image-serving.js';

/** What the images listener needs. */
export interface ImagesServerOptions {
  logger: FastifyBaseLogger;
  /** Serve `GET|HEAD /images/{name}` (without it only /healthz answers). */
  images?: Omit<ImageServingOptions, 'listener'> | undefined;
}

/** Builds the images app (not listening). */
export function buildImagesServer(opts: ImagesServerOptions): FastifyInstance {
  // Image names may be 128 bytes; Fastify's default cuts params at 100 (414).
  const app = Fastify({
    loggerInstance: opts.logger,
    routerOptions: { maxParamLength: 256 },
  }) as unknown as FastifyInstance;
  app.get('/healthz', async () => ({ status: 'ok' }));
  if (opts.images) app.register(imageServing, { ...opts.images, listener: 'http' });
  return app;
}
