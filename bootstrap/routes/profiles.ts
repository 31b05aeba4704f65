/**
 * `/api/v1/profiles/{name}`: what a device is given — onboarding information
 * (boot image, configuration, scripts) or redirect information (other
 * bootstrap servers). RFC 8572 §2.2 and the `ietf-sztp-conveyed-info` module
 * set the rules checked here beyond the schema.
 */
import { type Static, Type } from 'typebox';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/index.js';
import { setAudit } from '../audit.js';
import { ApiError } from '../errors.js';
import type { ApiContext, ApiInstance } from '../operator-api.js';

/** Names of profiles, images and similar resources. */
export const ResourceName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$', maxLength: 128 });

const Text = (max: number) => Type.String({ maxLength: max });

/** The profile body (PUT) and the profile part of the response. */
export const ProfileSpec = Type.Object(
  {
    type: Type.Union([Type.Literal('onboarding'), Type.Literal('redirect')]),
    bootImage: Type.Optional(
      Type.Object(
        {
          osName: Type.String({ minLength: 1, maxLength: 255 }),
          osVersion: Type.String({ minLength: 1, maxLength: 255 }),
          image: ResourceName,
        },
        { additionalProperties: false },
      ),
    ),
    configurationHandling: Type.Optional(Type.Union([Type.Literal('merge'), Type.Literal('replace')])),
    configuration: Type.Optional(Text(4 * 1024 * 1024)),
    preConfigurationScript: Type.Optional(Text(1024 * 1024)),
    postConfigurationScript: Type.Optional(Text(1024 * 1024)),
    bootstrapServers: Type.Optional(
      Type.Array(
        Type.Object(
          {
            address: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:_\\[\\]%-]+$' }),
            port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
            trustAnchor: Type.Optional(Text(256 * 1024)),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 32 },
      ),
    ),
    signed: Type.Optional(Type.Boolean()),
    responseFormat: Type.Optional(Type.Union([Type.Literal('rfc8572'), Type.Literal('opi-agent')])),
  },
  { additionalProperties: false },
);
/** A profile as given by the operator. */
export type ProfileSpecT = Static<typeof ProfileSpec>;

const ProfileView = Type.Intersect([
  ProfileSpec,
  Type.Object({
    name: Type.String(),
    version: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  }),
]);

const ONBOARDING_FIELDS = [
  'bootImage',
  'configurationHandling',
  'configuration',
  'preConfigurationScript',
  'postConfigurationScript',
] as const;

/** Checks the rules of `ietf-sztp-conveyed-info` that a schema cannot express. */
async function checkProfile(db: Kysely<Database>, spec: ProfileSpecT): Promise<void> {
  const bad = (msg: string) => new ApiError('API_ERR_BAD_REQUEST', msg);
  if (spec.type === 'redirect') {
    if (!spec.bootstrapServers)
      throw bad('a redirect profile needs bootstrapServers (RFC 8572 redirect-information)');
    const extra = ONBOARDING_FIELDS.filter((f) => spec[f] !== undefined);
    if (extra.length) throw bad(`a redirect profile cannot carry onboarding fields: ${extra.join(', ')}`);
    const seen = new Set<string>();
    for (const s of spec.bootstrapServers) {
      if (seen.has(s.address))
        throw bad(`bootstrapServers: address ${s.address} is listed twice (it is the list key)`);
      seen.add(s.address);
      if (
        s.trustAnchor !== undefined &&
        !/^(-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*)+$/.test(s.trustAnchor.trim()) &&
        !isBase64(s.trustAnchor)
      ) {
        throw bad(`bootstrapServers[${s.address}].trustAnchor must be PEM certificates or base64 CMS`);
      }
    }
    return;
  }
  if (spec.bootstrapServers) throw bad('an onboarding profile cannot carry bootstrapServers');
  if (!ONBOARDING_FIELDS.some((f) => spec[f] !== undefined)) {
    throw bad(
      'an onboarding profile needs at least one of bootImage, configuration, preConfigurationScript, postConfigurationScript',
    );
  }
  // YANG: configuration-handling `must ../configuration` and configuration `must ../configuration-handling`.
  if ((spec.configuration === undefined) !== (spec.configurationHandling === undefined)) {
    throw bad('configuration and configurationHandling go together (ietf-sztp-conveyed-info "must" rules)');
  }
  if (spec.bootImage) {
    const img = await db
      .selectFrom('images')
      .select('name')
      .where('name', '=', spec.bootImage.image)
      .executeTakeFirst();
    if (!img) throw bad(`bootImage.image: no image named ${spec.bootImage.image} (upload it first)`);
  }
}

/** True when `s` is canonical base64 (whitespace allowed between groups). */
export function isBase64(s: string): boolean {
  const t = s.replace(/\s+/g, '');
  return t.length > 0 && t.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(t);
}

type ProfileRow = {
  name: string;
  version: number;
  spec: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
};
function view(r: ProfileRow) {
  return {
    ...(r.spec as ProfileSpecT),
    name: r.name,
    version: r.version,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

/** Registers the profile routes. */
export function registerProfileRoutes(api: ApiInstance, { db }: ApiContext): void {
  const params = Type.Object({ name: ResourceName });

  api.put(
    '/profiles/:name',
    {
      config: { audit: 'profile.put' },
      schema: {
        tags: ['profiles'],
        operationId: 'putProfile',
        summary: 'Create or replace a profile',
        params,
        body: ProfileSpec,
        response: { 200: ProfileView, 201: ProfileView },
      },
    },
    async (req, reply) => {
      await checkProfile(db, req.body);
      const spec = JSON.stringify(req.body);
      const row = await db.transaction().execute(async (tx) => {
        const existing = await tx
          .selectFrom('profiles')
          .select('version')
          .where('name', '=', req.params.name)
          .forUpdate()
          .executeTakeFirst();
        if (existing) {
          return tx
            .updateTable('profiles')
            .set({ spec, version: existing.version + 1, updated_at: new Date() })
            .where('name', '=', req.params.name)
            .returningAll()
            .executeTakeFirstOrThrow();
        }
        return tx
          .insertInto('profiles')
          .values({ name: req.params.name, spec, updated_at: new Date() })
          .returningAll()
          .executeTakeFirstOrThrow();
      });
      setAudit(req, { detail: { version: row.version } });
      reply.code(row.version === 1 ? 201 : 200);
      return view(row);
    },
  );

  api.get(
    '/profiles/:name',
    {
      schema: {
        tags: ['profiles'],
        operationId: 'getProfile',
        summary: 'Read a profile',
        params,
        response: { 200: ProfileView },
      },
    },
    async (req) => {
      const row = await db
        .selectFrom('profiles')
        .selectAll()
        .where('name', '=', req.params.name)
        .executeTakeFirst();
      if (!row) throw new ApiError('API_ERR_NOT_FOUND', `no profile ${req.params.name}`);
      return view(row);
    },
  );

  api.get(
    '/profiles',
    {
      schema: {
        tags: ['profiles'],
        operationId: 'listProfiles',
        summary: 'List profiles',
        response: { 200: Type.Object({ items: Type.Array(ProfileView) }) },
      },
    },
    async () => ({
      items: (await db.selectFrom('profiles').selectAll().orderBy('name').execute()).map(view),
    }),
  );

  api.delete(
    '/profiles/:name',
    {
      config: { audit: 'profile.delete' },
      schema: {
        tags: ['profiles'],
        operationId: 'deleteProfile',
        summary: 'Delete a profile no device uses',
        params,
      },
    },
    async (req, reply) => {
      const used = await db
        .selectFrom('devices')
        .select('serial')
        .where('profile', '=', req.params.name)
        .limit(5)
        .execute();
      if (used.length) {
        throw new ApiError(
          'API_ERR_CONFLICT',
          `profile ${req.params.name} is used by ${used.map((d) => d.serial).join(', ')}${used.length === 5 ? ', …' : ''}`,
        );
      }
      const r = await db.deleteFrom('profiles').where('name', '=', req.params.name).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0)
        throw new ApiError('API_ERR_NOT_FOUND', `no profile ${req.params.name}`);
      reply.code(204);
    },
  );
}
