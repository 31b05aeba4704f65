/**
 * `/api/v1/images/{name}`: upload (streamed PUT, hashed in one pass), read,
 * list, delete, and the fetch log. Bytes are served to BMCs and devices by
 * `sztp-server/` (`/images/{name}` on :8081 and :8443), not here.
 */
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { type Static, Type } from 'typebox';
import type { Image } from '../../db/index.js';
import { Attr, withSpan } from '../../otel/index.js';
import { setAudit } from '../audit.js';
import { ApiError } from '../errors.js';
import { IMAGE_HASHES, type ImageHash, type ImageStore } from '../image-store.js';
import { NoContent } from '../openapi-contract.js';
import type { ApiContext, ApiInstance, ApiRoutes } from '../operator-api.js';
import { ResourceName } from './profiles.js';

/** Where an image can be downloaded from (the image service's advertised base URLs). */
export interface ImageUrls {
  https: string;
  http: string;
}

/** What the image routes need from the service around them. */
export interface ImageRoutesOptions {
  store: ImageStore;
  /** The download URLs of `name` for a request that came in with this Host header on this local address. */
  urls?:
    | ((name: string, origin: { host: string | undefined; localAddress: string | undefined }) => ImageUrls)
    | undefined;
  /** Told after an image is stored, replaced or deleted (the serving side drops its cached row). */
  onChange?: ((name: string) => void) | undefined;
}

const ImageView = Type.Object(
  {
    name: Type.String(),
    size: Type.Integer({ description: 'bytes' }),
    sha256: Type.String({ description: 'lowercase hex' }),
    sha384: Type.String({ description: 'lowercase hex' }),
    sha512: Type.String({ description: 'lowercase hex' }),
    contentType: Type.String(),
    osName: Type.Optional(Type.String()),
    osVersion: Type.Optional(Type.String()),
    createdAt: Type.String({ format: 'date-time' }),
    urls: Type.Optional(
      Type.Object({
        https: Type.String({ description: 'on the device TLS listener' }),
        http: Type.String({ description: 'on the plain-HTTP images listener' }),
      }),
    ),
  },
  { $id: 'Image' },
);
const ImageList = Type.Object({ items: Type.Array(ImageView) }, { $id: 'ImageList' });
type ImageViewT = Static<typeof ImageView>;

const FetchView = Type.Object(
  {
    clientAddress: Type.Union([Type.String(), Type.Null()]),
    listener: Type.String(),
    status: Type.Integer(),
    range: Type.Union([Type.String(), Type.Null()], {
      description: 'The Range header; for a row of several reads, every range served, in order',
    }),
    bytesSent: Type.Integer({ description: 'Summed over the reads of the row' }),
    durationMs: Type.Number({ description: 'Summed over the reads of the row' }),
    requests: Type.Integer({
      description: "Reads the row stands for: one client's 206 range reads within 250 ms share a row",
    }),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'ImageFetch' },
);
const ImageFetchList = Type.Object({ items: Type.Array(FetchView) }, { $id: 'ImageFetchList' });

/** Largest upload the route accepts at the HTTP layer; the store enforces its own limit. */
const ROUTE_BODY_LIMIT = 64 * 1024 ** 3;

/** Parses `X-Expected-Sha256/384/512` (hex, colons allowed, any case). */
function expectedHashes(headers: Record<string, unknown>): Partial<Record<ImageHash, string>> {
  const out: Partial<Record<ImageHash, string>> = {};
  for (const [alg, len] of Object.entries(IMAGE_HASHES) as [ImageHash, number][]) {
    const raw = headers[`x-expected-${alg}`];
    if (raw === undefined) continue;
    const hex = String(raw).trim().replace(/:/g, '').toLowerCase();
    if (!new RegExp(`^[0-9a-f]{${len}}$`).test(hex)) {
      throw new ApiError('API_ERR_BAD_REQUEST', `X-Expected-${alg}: must be ${len} hex digits`);
    }
    out[alg] = hex;
  }
  return out;
}

/** Registers the image routes (a factory: the store comes from the composition root). */
export function imageRoutes(opts: ImageRoutesOptions): ApiRoutes {
  return async (api: ApiInstance, { db }: ApiContext) => {
    const { store } = opts;
    const params = Type.Object({ name: ResourceName });
    const view = (r: Image, req: FastifyRequest): ImageViewT => ({
      name: r.name,
      size: Number(r.size),
      sha256: r.sha256,
      sha384: r.sha384,
      sha512: r.sha512,
      contentType: r.content_type,
      ...(r.os_name !== null ? { osName: r.os_name } : {}),
      ...(r.os_version !== null ? { osVersion: r.os_version } : {}),
      createdAt: new Date(r.created_at).toISOString(),
      ...(opts.urls
        ? { urls: opts.urls(r.name, { host: req.headers.host, localAddress: req.socket.localAddress }) }
        : {}),
    });

    // The upload lives in its own scope so that its pass-through body parser
    // (the raw request stream, any content type) applies to it alone.
    await api.register(async (plugin) => {
      const scope = plugin as unknown as ApiInstance;
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
      scope.put(
        '/images/:name',
        {
          bodyLimit: ROUTE_BODY_LIMIT,
          config: {
            audit: 'image.put',
            errors: ['API_ERR_HASH_MISMATCH', 'API_ERR_INSUFFICIENT_STORAGE'],
            rawBody: ['application/octet-stream', 'application/x-iso9660-image'],
          },
          schema: {
            tags: ['images'],
            operationId: 'putImage',
            summary: 'Upload (create or replace) an image: the body is the image bytes',
            description:
              'Streams to disk while SHA-256/384/512 are computed; nothing is visible until complete. ' +
              'Send X-Expected-Sha256 (or -Sha384/-Sha512) to have a mismatching body rejected (422).',
            params,
            querystring: Type.Object(
              {
                osName: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
                osVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
              },
              { additionalProperties: false },
            ),
            response: { 200: ImageView, 201: ImageView },
          },
        },
        async (req, reply) => {
          const { name } = req.params;
          const body = req.body as Readable | undefined;
          // Refused before the body is read: close the connection rather than read it all.
          const refuse = (e: ApiError) => {
            reply.header('connection', 'close');
            return e;
          };
          let expected: ReturnType<typeof expectedHashes>;
          try {
            expected = expectedHashes(req.headers);
          } catch (err) {
            throw refuse(err as ApiError);
          }
          if (!body) throw new ApiError('API_ERR_BAD_REQUEST', 'empty body: send the image bytes');
          const declared = req.headers['content-length'] ? Number(req.headers['content-length']) : undefined;
          if (declared !== undefined && declared > store.maxBytes) {
            throw refuse(
              new ApiError('API_ERR_BODY_TOO_LARGE', `image larger than the ${store.maxBytes}-byte limit`),
            );
          }
          if (declared !== undefined && declared > (await store.freeBytes())) {
            throw refuse(
              new ApiError(
                'API_ERR_INSUFFICIENT_STORAGE',
                `the image store has less than the ${declared} bytes this image needs; nothing was stored`,
              ),
            );
          }
          const { image, replaced } = await withSpan(
            'image.upload',
            { [Attr.image]: name, [Attr.imageSize]: declared },
            async (span) => {
              let received: Awaited<ReturnType<ImageStore['receive']>>;
              try {
                received = await store.receive(body);
              } catch (err) {
                if (!body.readableEnded) reply.header('connection', 'close');
                throw err;
              }
              span.setAttribute(Attr.imageSize, received.size);
              for (const [alg, want] of Object.entries(expected) as [ImageHash, string][]) {
                if (received[alg] !== want) {
                  await store.discard(received);
                  throw new ApiError(
                    'API_ERR_HASH_MISMATCH',
                    `the body's ${alg} is ${received[alg]}, X-Expected-${alg} says ${want}; nothing was stored`,
                    { expected: want, actual: received[alg], algorithm: alg },
                  );
                }
              }
              return store.commit(name, received, {
                osName: req.query.osName,
                osVersion: req.query.osVersion,
              });
            },
          );
          opts.onChange?.(name);
          setAudit(req, { detail: { size: Number(image.size), sha256: image.sha256, replaced } });
          reply.code(replaced ? 200 : 201).header('location', `/api/v1/images/${encodeURIComponent(name)}`);
          return view(image, req);
        },
      );
    });

    api.get(
      '/images',
      {
        schema: {
          tags: ['images'],
          operationId: 'listImages',
          summary: 'List images',
          description: 'Every image, by name, with its hashes and download URLs.',
          response: { 200: ImageList },
        },
      },
      async (req) => ({
        items: (await db.selectFrom('images').selectAll().orderBy('name').execute()).map((r) => view(r, req)),
      }),
    );

    api.get(
      '/images/:name',
      {
        schema: {
          tags: ['images'],
          operationId: 'getImage',
          summary: 'Read an image',
          description:
            'Size, SHA-256/384/512, OS name and version, and the URLs devices and BMCs fetch it from.',
          params,
          response: { 200: ImageView },
        },
      },
      async (req) => {
        const row = await db
          .selectFrom('images')
          .selectAll()
          .where('name', '=', req.params.name)
          .executeTakeFirst();
        if (!row) throw new ApiError('API_ERR_NOT_FOUND', `no image ${req.params.name}`);
        return view(row, req);
      },
    );

    api.get(
      '/images/:name/fetches',
      {
        schema: {
          tags: ['images'],
          operationId: 'listImageFetches',
          summary: 'Recent downloads of an image (newest first)',
          description: 'Who fetched it, from which listener, with what status, range and speed.',
          params,
          querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }),
          response: { 200: ImageFetchList },
        },
      },
      async (req) => {
        const rows = await db
          .selectFrom('image_fetches')
          .selectAll()
          .where('image', '=', req.params.name)
          .orderBy('id', 'desc')
          .limit(req.query.limit ?? 100)
          .execute();
        return {
          items: rows.map((r) => ({
            clientAddress: r.client_address,
            listener: r.listener,
            status: r.status,
            range: r.range,
            bytesSent: Number(r.bytes_sent),
            durationMs: r.duration_ms,
            requests: r.requests,
            createdAt: new Date(r.created_at).toISOString(),
          })),
        };
      },
    );

    api.delete(
      '/images/:name',
      {
        config: { audit: 'image.delete', errors: ['API_ERR_CONFLICT'] },
        schema: {
          tags: ['images'],
          operationId: 'deleteImage',
          summary: 'Delete an image (one a profile uses needs ?force=true)',
          description: 'An image a profile names is refused (409) unless `force=true`.',
          params,
          response: { 204: NoContent },
          querystring: Type.Object({ force: Type.Optional(Type.Boolean()) }),
        },
      },
      async (req, reply) => {
        const { name } = req.params;
        const users = await db
          .selectFrom('profiles')
          .select('name')
          // The boot image devices download, or the installer image a BMC boots.
          .where((eb) =>
            eb.or([
              eb(sql<string>`spec->'bootImage'->>'image'`, '=', name),
              eb(sql<string>`spec->>'installerImage'`, '=', name),
            ]),
          )
          .orderBy('name')
          .limit(6)
          .execute();
        if (users.length && !req.query.force) {
          throw new ApiError(
            'API_ERR_CONFLICT',
            `image ${name} is used by profile(s) ${users
              .slice(0, 5)
              .map((p) => p.name)
              .join(', ')}${users.length > 5 ? ', …' : ''}; add ?force=true to delete it anyway`,
          );
        }
        if (!(await store.remove(name))) throw new ApiError('API_ERR_NOT_FOUND', `no image ${name}`);
        opts.onChange?.(name);
        setAudit(req, { detail: { force: Boolean(req.query.force), usedBy: users.map((p) => p.name) } });
        reply.code(204);
      },
    );
  };
}
