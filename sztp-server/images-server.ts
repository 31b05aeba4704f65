/** The plain-HTTP images listener (:8081) that BMCs and devices download from. */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';

/** What the images listener needs. */
export interface ImagesServerOptions {
  logger: FastifyBaseLogger;
}

/** Builds the images app (not listening). */
export function buildImagesServer(opts: ImagesServerOptions): FastifyInstance {
  const app = Fastify({ loggerInstance: opts.logger }) as unknown as FastifyInstance;
  app.get('/healthz', async () => ({ status: 'ok' }));
  return app;
}
