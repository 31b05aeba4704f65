/**
 * `/api/v1/profiles/{name}`: what a device is given — onboarding information
 * (boot image, configuration, scripts) or redirect information (other
 * bootstrap servers). RFC 8572 §2.2 and the `ietf-sztp-conveyed-info` module
 * set the rules checked here beyond the schema.
 */
import { Type } from 'typebox';
import { type Kysely, sql } from 'kysely';
import { type Database, ProfileSpec, ResourceName } from '../../db/index.js';
import {
  createOwnerCertificateArtifact,
  decodeArtifacts,
  isPkiError,
  parseCertificate,
  parseCertificateBag,
} from '../../pki/index.js';
import { setAudit } from '../audit.js';
import { ApiError } from '../errors.js';
import { alreadyExists, checkIfMatch, etagOf, isCreateOnly } from '../etag.js';
import { NoContent } from '../openapi-contract.js';
import type { ApiContext, ApiInstance } from '../operator-api.js';

/** Names of profiles, images and similar resources (owned by `db/profile-spec.ts`). */
export { ResourceName } from '../../db/index.js';

/** A profile as given by the operator (the one schema, `db/profile-spec.ts`). */
export type ProfileSpecT = ProfileSpec;

/** The body of `PUT /profiles/{name}`: the one profile schema, named for the document. */
const ProfileInput = Type.Object(ProfileSpec.properties, {
  $id: 'ProfileInput',
  additionalProperties: false,
  examples: [
    {
      type: 'onboarding',
      bootImage: { osName: 'Ubuntu', osVersion: '24.04', image: 'ubuntu-24.04-bf.bfb' },
      configurationHandling: 'merge',
      configuration: 'hostname: dpu-01\n',
      installerImage: 'ubuntu-24.04-installer.iso',
    },
  ],
});

const ProfileView = Type.Intersect(
  [
    ProfileSpec,
    Type.Object({
      name: Type.String(),
      version: Type.Integer({ description: 'starts at 1, and grows by one at each replace' }),
      createdAt: Type.String({ format: 'date-time' }),
      updatedAt: Type.String({ format: 'date-time' }),
    }),
  ],
  { $id: 'Profile' },
);
const ProfileList = Type.Object({ items: Type.Array(ProfileView) }, { $id: 'ProfileList' });

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
  if (spec.installerImage !== undefined) await imageMustExist(db, 'installerImage', spec.installerImage);
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
      if (s.trustAnchor !== undefined) {
        const why = trustAnchorProblem(s.trustAnchor);
        if (why) throw bad(`bootstrapServers[${s.address}].trustAnchor: ${why}`);
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
  if (spec.bootImage) await imageMustExist(db, 'bootImage.image', spec.bootImage.image);
}

async function imageMustExist(db: Kysely<Database>, field: string, name: string): Promise<void> {
  const img = await db.selectFrom('images').select('name').where('name', '=', name).executeTakeFirst();
  if (!img) throw new ApiError('API_ERR_BAD_REQUEST', `${field}: no image named ${name} (upload it first)`);
}

/**
 * Why a trust anchor cannot be sent to a device, or undefined when it can: PEM must hold
 * only CERTIFICATE blocks that each parse as X.509, base64 must be a CMS degenerate
 * SignedData (RFC 8572 §2.2 `trust-anchor`) whose certificates each parse. Checked whole
 * at PUT, so no stored profile can make a device's request fail.
 */
export function trustAnchorProblem(text: string): string | undefined {
  try {
    let certs: Uint8Array[];
    if (text.includes('-----BEGIN')) {
      if (!/^(-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\s*)+$/.test(text.trim()))
        return 'PEM must hold only CERTIFICATE blocks';
      certs = decodeArtifacts(text);
      // The same wrapping the device listener does, so it cannot fail there.
      createOwnerCertificateArtifact(certs);
    } else {
      if (!isBase64(text)) return 'must be PEM certificates or base64 CMS';
      certs = parseCertificateBag(new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'base64')));
    }
    if (certs.length === 0) return 'holds no certificate';
    for (const c of certs) parseCertificate(c);
    return undefined;
  } catch (err) {
    return `does not parse (${isPkiError(err) ? `${err.code}: ` : ''}${(err as Error).message})`;
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
      config: { audit: 'profile.put', etag: true },
      schema: {
        tags: ['profiles'],
        operationId: 'putProfile',
        summary: 'Create or replace a profile',
        description:
          'Creates the profile (201) or replaces it whole (200, `version` + 1). Checked whole at write ' +
          'time (RFC 8572 conveyed-information rules, trust anchors parse, named images exist), so no ' +
          'stored profile can make a device request fail.',
        params,
        body: ProfileInput,
        response: { 200: ProfileView, 201: ProfileView },
      },
    },
    async (req, reply) => {
      await checkProfile(db, req.body);
      const spec = JSON.stringify(req.body);
      const row = await db.transaction().execute(async (tx) => {
        const existing = await tx
          .selectFrom('profiles')
          .selectAll()
          .where('name', '=', req.params.name)
          .forUpdate()
          .executeTakeFirst();
        checkIfMatch(req, existing && view(existing));
        const update = () =>
          tx
            .updateTable('profiles')
            .set({ spec, version: sql<number>`version + 1`, updated_at: new Date() })
            .where('name', '=', req.params.name)
            .returningAll()
            .executeTakeFirstOrThrow();
        if (existing) return update();
        // No row to lock: another request may create it meanwhile (its insert wins, this one waits).
        const created = await tx
          .insertInto('profiles')
          .values({ name: req.params.name, spec, updated_at: new Date() })
          .onConflict((oc) => oc.column('name').doNothing())
          .returningAll()
          .executeTakeFirst();
        if (created) return created;
        if (isCreateOnly(req)) throw alreadyExists();
        // Created by a concurrent PUT since the look above: this one is its next version.
        return update();
      });
      setAudit(req, { detail: { version: row.version } });
      const v = view(row);
      reply.code(row.version === 1 ? 201 : 200).header('etag', etagOf(v));
      return v;
    },
  );

  api.get(
    '/profiles/:name',
    {
      config: { etag: true },
      schema: {
        tags: ['profiles'],
        operationId: 'getProfile',
        summary: 'Read a profile',
        description: 'The profile as given, with its name, version and times.',
        params,
        response: { 200: ProfileView },
      },
    },
    async (req, reply) => {
      const row = await db
        .selectFrom('profiles')
        .selectAll()
        .where('name', '=', req.params.name)
        .executeTakeFirst();
      if (!row) throw new ApiError('API_ERR_NOT_FOUND', `no profile ${req.params.name}`);
      const v = view(row);
      reply.header('etag', etagOf(v));
      return v;
    },
  );

  api.get(
    '/profiles',
    {
      schema: {
        tags: ['profiles'],
        operationId: 'listProfiles',
        summary: 'List profiles',
        description: 'Every profile, by name.',
        response: { 200: ProfileList },
      },
    },
    async () => ({
      items: (await db.selectFrom('profiles').selectAll().orderBy('name').execute()).map(view),
    }),
  );

  api.delete(
    '/profiles/:name',
    {
      config: { audit: 'profile.delete', errors: ['API_ERR_CONFLICT'] },
      schema: {
        tags: ['profiles'],
        operationId: 'deleteProfile',
        summary: 'Delete a profile no device uses',
        description: 'A profile a device names cannot be deleted (409 `API_ERR_CONFLICT` lists up to five).',
        params,
        response: { 204: NoContent },
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
