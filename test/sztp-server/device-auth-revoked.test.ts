/**
 * The device authenticator and a live revocation list: the list is asked
 * first, by the leaf's fingerprint, on every request — so a revoked IDevID is
 * refused before any chain validation, and a change to the list applies to the
 * next request of a chain already validated and remembered (a keep-alive
 * connection), both ways.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLabPki, decodeArtifact, parseCertificate } from '../../pki/index.js';
import { DeviceAuthenticator } from '../../sztp-server/device-auth.js';
import { backend, migratedDatabase, type TestDatabase } from '../helpers/db.js';

let t: TestDatabase;
let chain: Uint8Array[];
let fingerprint: string;
let anchor: Uint8Array;

beforeAll(async () => {
  t = await migratedDatabase();
  const lab = await createLabPki({ now: new Date(), devices: ['AUTH-R1'] });
  const file = (p: string) => lab.files.find((f) => f.path === p)?.data.toString() as string;
  chain = [decodeArtifact(file('devices/AUTH-R1/idevid.crt'))];
  anchor = decodeArtifact(file('manufacturer-ca.crt'));
  fingerprint = parseCertificate(chain[0] as Uint8Array).fingerprintSha256;
}, 60_000);
afterAll(async () => {
  await t?.drop();
});

describe(`device authentication with a live revocation list (${backend})`, () => {
  it('refuses a revoked IDevID before validating its chain', async () => {
    // No trust anchors: any chain that were validated would be SZTP_ERR_UNTRUSTED_IDEVID.
    const revoked = new Set([fingerprint]);
    const auth = new DeviceAuthenticator({
      db: t.db,
      manufacturerAnchors: [],
      revokedFingerprints: revoked,
      now: () => new Date(),
    });
    await expect(auth.authenticate({ peerChain: chain })).rejects.toMatchObject({
      code: 'SZTP_ERR_REVOKED_IDEVID',
      message: expect.stringContaining(fingerprint),
    });
    revoked.clear();
    await expect(auth.authenticate({ peerChain: chain })).rejects.toMatchObject({
      code: 'SZTP_ERR_UNTRUSTED_IDEVID',
    });
  });

  it('applies a change of the list to the next request of a remembered chain, both ways', async () => {
    const revoked = new Set<string>();
    const auth = new DeviceAuthenticator({
      db: t.db,
      manufacturerAnchors: [anchor],
      revokedFingerprints: revoked,
      now: () => new Date(),
    });
    // The same array for every request, as the routes hand it per TLS connection.
    expect((await auth.authenticate({ peerChain: chain })).serial).toBe('AUTH-R1');
    revoked.add(fingerprint);
    await expect(auth.authenticate({ peerChain: chain })).rejects.toMatchObject({
      code: 'SZTP_ERR_REVOKED_IDEVID',
    });
    // A new connection (another array, same bytes) too.
    await expect(auth.authenticate({ peerChain: [...chain] })).rejects.toMatchObject({
      code: 'SZTP_ERR_REVOKED_IDEVID',
    });
    revoked.delete(fingerprint);
    expect((await auth.authenticate({ peerChain: chain })).serial).toBe('AUTH-R1');
  });
});
