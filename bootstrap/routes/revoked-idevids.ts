/**
 * `/api/v1/revoked-idevids`: the revoked device identities (IDevIDs) every
 * replica refuses (`SZTP_ERR_REVOKED_IDEVID`), by SHA-256 fingerprint. An admin
 * revokes (by fingerprint, or by handing the certificate) and lifts a
 * revocation; a viewer reads. A change is in force on this replica when the
 * answer leaves, and on the others once their NOTIFY arrives (see
 * `RevokedIdevids`); every change is in the audit log.
 */
import { Type } from 'typebox';
import { decodeArtifacts, isPkiError, parseCertificate } from '../../pki/index.js';
import { setAudit } from '../audit.js';
import { ApiError } from '../errors.js';
import { NoContent, Page } from '../openapi-contract.js';
import type { ApiContext, ApiInstance, ApiRoutes } from '../operator-api.js';
import {
  FINGERPRINT_PATTERN,
  isFingerprint,
  type RevokedIdevid,
  type RevokedIdevids,
} from '../revoked-idevids.js';

const Fingerprint = Type.String({
  pattern: FINGERPRINT_PATTERN,
  minLength: 95,
  maxLength: 95,
  description:
    "SHA-256 of the certificate's DER, colon hex, lowercase (`openssl x509 -noout -fingerprint -sha256`, lowercased)",
});
const Reason = Type.String({
  minLength: 1,
  maxLength: 500,
  pattern: '^[^\\u0000-\\u001f\\u007f]+$',
  description: 'why (free text, kept with the revocation and in the audit log)',
});

const RevokedView = Type.Object(
  {
    fingerprint: Fingerprint,
    reason: Type.Union([Type.String(), Type.Null()]),
    revokedAt: Type.String({ format: 'date-time' }),
    revokedBy: Type.String({
      description: 'the API token that revoked it, or `file:<path>` for a line of `revoked-idevids.txt`',
    }),
  },
  { $id: 'RevokedIdevid' },
);
const RevokedPage = Page(RevokedView, 'RevokedIdevidPage');
const RevokeInput = Type.Object(
  { reason: Type.Optional(Reason) },
  { $id: 'RevokeIdevidInput', additionalProperties: false, examples: [{ reason: 'DPU returned to vendor' }] },
);
const RevokeCertificateInput = Type.Object(
  {
    certificate: Type.String({
      minLength: 1,
      maxLength: 64 * 1024,
      description: 'the IDevID certificate, PEM (one CERTIFICATE block)',
    }),
    reason: Type.Optional(Reason),
  },
  {
    $id: 'RevokeIdevidCertificateInput',
    additionalProperties: false,
    examples: [
      {
        certificate: '-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----\n',
        reason: 'key compromised',
      },
    ],
  },
);

function view(r: RevokedIdevid) {
  return {
    fingerprint: r.fingerprint,
    reason: r.reason,
    revokedAt: r.revokedAt.toISOString(),
    revokedBy: r.revokedBy,
  };
}

/** The fingerprint of the one certificate in `pem`, or an `API_ERR_BAD_REQUEST` saying why not. */
function certificateFingerprint(pem: string): string {
  const blocks = [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]);
  if (blocks.length !== 1 || blocks[0] !== 'CERTIFICATE')
    throw new ApiError(
      'API_ERR_BAD_REQUEST',
      `certificate: expected one PEM CERTIFICATE block, found ${blocks.length ? blocks.join(', ') : 'none'}`,
    );
  try {
    return parseCertificate(decodeArtifacts(pem)[0] as Uint8Array).fingerprintSha256;
  } catch (err) {
    const why = isPkiError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
    throw new ApiError('API_ERR_BAD_REQUEST', `certificate: not an X.509 certificate (${why})`);
  }
}

/** What the revoked-IDevID routes are wired to. */
export interface RevokedIdevidRoutesOptions {
  /** The rows and this process's live set (the one the device listener asks). */
  revoked: RevokedIdevids;
}

/** The revoked-IDevID routes. */
export function revokedIdevidRoutes(o: RevokedIdevidRoutesOptions): ApiRoutes {
  return (api: ApiInstance, _ctx: ApiContext) => {
    const params = Type.Object({ fingerprint: Fingerprint });

    api.put(
      '/revoked-idevids/:fingerprint',
      {
        config: { role: 'admin', audit: 'idevid.revoke' },
        schema: {
          tags: ['idevids'],
          operationId: 'revokeIdevid',
          summary: 'Revoke a device identity (IDevID) by fingerprint',
          description:
            'Every replica refuses a TLS client certificate with this SHA-256 fingerprint from its next ' +
            'request on (`SZTP_ERR_REVOKED_IDEVID`): this one before answering, the others on a ' +
            'database NOTIFY (within a second; a periodic re-check covers a lost one). 201 when newly ' +
            'revoked; 200 when it already was (the reason is replaced, time and author kept).',
          params,
          body: RevokeInput,
          response: { 200: RevokedView, 201: RevokedView },
        },
      },
      async (req, reply) => {
        const { entry, created } = await o.revoked.revoke(
          req.params.fingerprint,
          req.actor!.name,
          req.body?.reason,
        );
        setAudit(req, { detail: { created } });
        reply.code(created ? 201 : 200);
        return view(entry);
      },
    );

    api.post(
      '/revoked-idevids',
      {
        config: { role: 'admin', audit: 'idevid.revoke' },
        schema: {
          tags: ['idevids'],
          operationId: 'revokeIdevidCertificate',
          summary: 'Revoke a device identity (IDevID) by its certificate',
          description:
            'As `PUT /revoked-idevids/{fingerprint}`, the fingerprint computed from the PEM certificate ' +
            'given (which is not stored). Revoking the same certificate again is harmless (200).',
          body: RevokeCertificateInput,
          response: { 200: RevokedView, 201: RevokedView },
        },
      },
      async (req, reply) => {
        const fingerprint = certificateFingerprint(req.body.certificate);
        const { entry, created } = await o.revoked.revoke(fingerprint, req.actor!.name, req.body.reason);
        setAudit(req, { target: fingerprint, detail: { created } });
        reply.code(created ? 201 : 200);
        return view(entry);
      },
    );

    api.delete(
      '/revoked-idevids/:fingerprint',
      {
        config: { role: 'admin', audit: 'idevid.unrevoke' },
        schema: {
          tags: ['idevids'],
          operationId: 'deleteRevokedIdevid',
          summary: 'Lift the revocation of a device identity',
          description:
            'The device is accepted again from its next request on, on every replica. A fingerprint that ' +
            'is also listed in `<pki-dir>/revoked-idevids.txt` is revoked again when a replica starts: ' +
            'remove it there too.',
          params,
          response: { 204: NoContent },
        },
      },
      async (req, reply) => {
        if (!(await o.revoked.unrevoke(req.params.fingerprint)))
          throw new ApiError('API_ERR_NOT_FOUND', `${req.params.fingerprint} is not revoked`);
        reply.code(204);
      },
    );

    api.get(
      '/revoked-idevids/:fingerprint',
      {
        schema: {
          tags: ['idevids'],
          operationId: 'getRevokedIdevid',
          summary: 'Read one revocation',
          description: '404 when the fingerprint is not revoked.',
          params,
          response: { 200: RevokedView },
        },
      },
      async (req) => {
        const r = await o.revoked.get(req.params.fingerprint);
        if (!r) throw new ApiError('API_ERR_NOT_FOUND', `${req.params.fingerprint} is not revoked`);
        return view(r);
      },
    );

    api.get(
      '/revoked-idevids',
      {
        schema: {
          tags: ['idevids'],
          operationId: 'listRevokedIdevids',
          summary: 'List revoked device identities, by fingerprint',
          description:
            'Cursor pages ordered by fingerprint (keyset: an entry added while paging is never repeated).',
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
              cursor: Type.Optional(Type.String({ maxLength: 200 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: RevokedPage },
        },
      },
      async (req) => {
        const limit = req.query.limit ?? 100;
        let after: string | undefined;
        if (req.query.cursor !== undefined) {
          after = Buffer.from(req.query.cursor, 'base64url').toString('latin1');
          if (
            !isFingerprint(after) ||
            Buffer.from(after, 'latin1').toString('base64url') !== req.query.cursor
          )
            throw new ApiError('API_ERR_BAD_REQUEST', 'cursor is not one this API returned');
        }
        const { items, more } = await o.revoked.list({ after, limit });
        return {
          items: items.map(view),
          nextCursor: more
            ? Buffer.from(items[items.length - 1]!.fingerprint, 'latin1').toString('base64url')
            : null,
        };
      },
    );
  };
}
