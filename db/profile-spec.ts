/**
 * The profile spec: what a device is given (RFC 8572 §2.2 conveyed
 * information — onboarding or redirect) as the operator writes it and the
 * database stores it (`profiles.spec`, jsonb). ONE TypeBox schema, owned here
 * because both sides read it: `bootstrap/` validates it at PUT (and checks the
 * artifacts inside — trust anchors, images — beyond what a schema can say) and
 * `sztp-server/` validates it again where it reads a stored row, so a row
 * written before a rule existed, or edited in the database, is refused with a
 * coded error instead of failing deep inside a device's request.
 */
import { type Static, Type } from 'typebox';
import { Compile } from 'typebox/compile';

/** Names of profiles, images and similar resources. */
export const ResourceName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$', maxLength: 128 });

const Text = (max: number) => Type.String({ maxLength: max });

/** The profile body (PUT /api/v1/profiles/{name}) and what `profiles.spec` holds. */
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
    /**
     * The image (by name, in the image service) the BMC boots to start the device agent —
     * the installer OS of a provisioning job; the jobs read it. Not part of conveyed information.
     */
    installerImage: Type.Optional(ResourceName),
  },
  { additionalProperties: false },
);

/** A profile as given by the operator and stored. */
export type ProfileSpec = Static<typeof ProfileSpec>;

let compiled:
  | { Check(v: unknown): boolean; Errors(v: unknown): Array<{ instancePath: string; message: string }> }
  | undefined;

/** The result of {@link parseProfileSpec}. */
export type ProfileSpecResult = { ok: true; spec: ProfileSpec } | { ok: false; error: string };

/**
 * Checks a stored (or received) value against {@link ProfileSpec}. Schema rules only:
 * the artifact and cross-field checks live with the writer (`bootstrap/`).
 */
export function parseProfileSpec(value: unknown): ProfileSpecResult {
  compiled ??= Compile(ProfileSpec);
  const c = compiled;
  if (c.Check(value)) return { ok: true, spec: value as ProfileSpec };
  const first = c.Errors(value)[0];
  return {
    ok: false,
    error: first ? `${first.instancePath || '/'} ${first.message}` : 'does not match the profile schema',
  };
}
