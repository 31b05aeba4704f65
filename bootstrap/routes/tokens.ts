/** `/api/v1/tokens`: create, list and revoke API tokens (admin only). */
import { Type } from 'typebox';
import { setAudit } from '../audit.js';
import { ApiError } from '../errors.js';
import { NoContent } from '../openapi-contract.js';
import type { ApiContext, ApiInstance } from '../operator-api.js';
import { createToken } from '../tokens.js';

const Role = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);
const TokenView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    role: Role,
    createdAt: Type.String({ format: 'date-time' }),
    lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'Token' },
);
const TokenList = Type.Object({ items: Type.Array(TokenView) }, { $id: 'TokenList' });
const TokenInput = Type.Object(
  { role: Role, name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[\\x20-\\x7e]+$' }) },
  {
    $id: 'TokenInput',
    additionalProperties: false,
    examples: [{ role: 'operator', name: 'fleet-pipeline' }],
  },
);
const CreatedToken = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    role: Role,
    token: Type.String({ description: 'the bearer secret: shown this once, stored only as a hash' }),
  },
  { $id: 'CreatedToken' },
);

/** Registers the token routes. */
export function registerTokenRoutes(api: ApiInstance, { db }: ApiContext): void {
  api.post(
    '/tokens',
    {
      config: { role: 'admin', audit: 'token.create' },
      schema: {
        tags: ['tokens'],
        operationId: 'createToken',
        summary: 'Create a token; its secret is returned once',
        description:
          'A random token with the given role. The answer holds its secret, which is never shown again ' +
          '(only its SHA-256 is stored); keep it in a secret store.',
        body: TokenInput,
        response: { 201: CreatedToken },
      },
    },
    async (req, reply) => {
      const created = await createToken(db, req.body.role, req.body.name);
      setAudit(req, { target: created.id });
      reply.code(201);
      return created;
    },
  );

  api.get(
    '/tokens',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['tokens'],
        operationId: 'listTokens',
        summary: 'List tokens (no secrets)',
        description: 'Every token, oldest first, with when it was last used and whether it is revoked.',
        response: { 200: TokenList },
      },
    },
    async () => {
      const rows = await db.selectFrom('api_tokens').selectAll().orderBy('created_at').execute();
      return {
        items: rows.map((r) => ({
          id: r.id,
          name: r.name,
          role: r.role,
          createdAt: r.created_at.toISOString(),
          lastUsedAt: r.last_used_at?.toISOString() ?? null,
          revokedAt: r.revoked_at?.toISOString() ?? null,
        })),
      };
    },
  );

  api.delete(
    '/tokens/:id',
    {
      config: { role: 'admin', audit: 'token.revoke', errors: ['API_ERR_CONFLICT'] },
      schema: {
        tags: ['tokens'],
        operationId: 'revokeToken',
        summary: 'Revoke a token',
        description:
          'The token stops working at once; it stays listed with `revokedAt`. A token cannot revoke itself.',
        response: { 204: NoContent },
        params: Type.Object({ id: Type.String({ format: 'uuid', maxLength: 36 }) }),
      },
    },
    async (req, reply) => {
      if (req.params.id === req.actor!.id)
        throw new ApiError('API_ERR_CONFLICT', 'a token cannot revoke itself');
      const r = await db
        .updateTable('api_tokens')
        .set({ revoked_at: new Date() })
        .where('id', '=', req.params.id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0)
        throw new ApiError('API_ERR_NOT_FOUND', `no live token ${req.params.id}`);
      reply.code(204);
    },
  );
}
