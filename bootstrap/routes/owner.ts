/** `/api/v1/owner`: the owner certificate chain and signing-key reference in use (the key never comes back out). */
import { Type } from 'typebox';
import { setAudit } from '../audit.js';
import { ApiError } from '../errors.js';
import type { ApiContext, ApiInstance } from '../operator-api.js';

const Pem = (max: number) => Type.String({ minLength: 20, maxLength: max });
const OwnerView = Type.Object(
  {
    certificateChain: Type.Array(Type.String()),
    subject: Type.String(),
    issuer: Type.String(),
    notBefore: Type.String({ format: 'date-time' }),
    notAfter: Type.String({ format: 'date-time' }),
    fingerprintSha256: Type.String(),
    keyAlgorithm: Type.String(),
    keyReference: Type.String(),
    pinnedDomainCert: Type.Union([Type.String(), Type.Null()]),
    pinnedDomainCertSubject: Type.Union([Type.String(), Type.Null()]),
    labMasa: Type.Boolean(),
  },
  { $id: 'Owner' },
);
const OwnerInput = Type.Object(
  {
    certificateChain: Pem(256 * 1024),
    privateKey: Pem(64 * 1024),
    pinnedDomainCert: Type.Optional(Pem(64 * 1024)),
  },
  {
    $id: 'OwnerInput',
    additionalProperties: false,
    examples: [
      {
        certificateChain: '-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----\n',
        privateKey: '-----BEGIN PRIVATE KEY-----\nMIGH…\n-----END PRIVATE KEY-----\n',
      },
    ],
  },
);

/** Registers the owner routes (only when the service provides an owner store). */
export function registerOwnerRoutes(api: ApiInstance, ctx: ApiContext): void {
  const store = ctx.owner;
  api.get(
    '/owner',
    {
      schema: {
        tags: ['owner'],
        operationId: 'getOwner',
        summary: 'The owner certificate in use',
        description:
          'The chain that signs conveyed information, the pinned domain certificate vouchers name, and ' +
          'where the key is (a reference, never the key).',
        response: { 200: OwnerView },
      },
    },
    async () => {
      const view = await store?.get();
      if (!view) throw new ApiError('API_ERR_NOT_FOUND', 'no owner certificate is configured');
      return view;
    },
  );
  api.put(
    '/owner',
    {
      config: { role: 'admin', audit: 'owner.replace' },
      schema: {
        tags: ['owner'],
        operationId: 'putOwner',
        summary: 'Replace the owner certificate chain and key (PEM); the key is stored, never returned',
        description:
          'Checked (the key matches, digitalSignature, the chain reaches the pinned certificate), written ' +
          '(key mode 0600) and used from the next device request on.',
        body: OwnerInput,
        response: { 200: OwnerView },
      },
    },
    async (req) => {
      if (!store) throw new ApiError('API_ERR_CONFLICT', 'this service has no owner store');
      const view = await store.replace(req.body);
      setAudit(req, { target: view.fingerprintSha256, detail: { subject: view.subject } });
      return view;
    },
  );
}
