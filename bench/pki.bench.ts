/**
 * pki benchmark: sign/s and verify/s of a 2 KB conveyed information for
 * RSA-2048, EC P-256 and EC P-384, beside node:crypto sign/verify of the same
 * bytes with the same key (the floor), and the full RFC 8572 §5.4 verify
 * (voucher + owner chain + signature) in ms.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import {
  type ConveyedInformation,
  type KeyAlgorithm,
  createCertificate,
  createOwnerCertificateArtifact,
  encodeConveyedInformation,
  generateKey,
  signConveyedInformation,
  signVoucher,
  signerFromPrivateKey,
  verifyBootstrappingData,
  verifySignedData,
  withCertificates,
} from '../pki/index.js';
import type { Report } from './run.js';

const DAY = 86_400_000;
const BUDGET_MS = Number(process.env.PKI_BENCH_MS ?? 800);
const CI_JSON = '1.2.840.113549.1.9.16.1.43';

/** Onboarding information padded to about 2 KB of JSON. */
function twoKilobytes(): ConveyedInformation {
  const base: ConveyedInformation = {
    'ietf-sztp-conveyed-info:onboarding-information': {
      'boot-image': {
        'os-name': 'DPU-OS',
        'os-version': '1.0',
        'download-uri': ['https://images.example/dpu-os.bfb'],
        'image-verification': [
          {
            'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256',
            'hash-value': new Array(32).fill('ab').join(':'),
          },
        ],
      },
      'configuration-handling': 'merge',
      configuration: '',
    },
  };
  const size =
    encodeConveyedInformation({
      ...base,
      'ietf-sztp-conveyed-info:onboarding-information': {
        ...base['ietf-sztp-conveyed-info:onboarding-information'],
        configuration: 'AAAA',
      },
    }).length - 4;
  const pad = Buffer.alloc(Math.floor(((2048 - size) * 3) / 4), 0x61).toString('base64');
  return {
    'ietf-sztp-conveyed-info:onboarding-information': {
      ...base['ietf-sztp-conveyed-info:onboarding-information'],
      configuration: pad,
    },
  };
}

/** Runs `fn` repeatedly for about BUDGET_MS; returns operations per second and mean ms. */
async function measure(
  fn: () => unknown | Promise<unknown>,
): Promise<{ opsPerSec: number; meanMs: number; n: number }> {
  for (let i = 0; i < 3; i++) await fn(); // warm-up
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < BUDGET_MS) {
    await fn();
    n++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return { opsPerSec: Math.round((n * 1000) / elapsed), meanMs: Number((elapsed / n).toFixed(3)), n };
}

async function ca(alg: KeyAlgorithm, cn: string, now: Date) {
  const k = await generateKey(alg);
  const s = signerFromPrivateKey(k.privateKeyPem);
  const cert = await createCertificate({
    profile: 'ca',
    subject: { commonName: cn },
    publicKey: k.publicKey,
    issuer: s,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 365 * DAY),
  });
  return withCertificates(s, [cert]);
}

async function leaf(issuer: Awaited<ReturnType<typeof ca>>, alg: KeyAlgorithm, cn: string, now: Date) {
  const k = await generateKey(alg);
  const cert = await createCertificate({
    profile: 'signing',
    subject: { commonName: cn },
    publicKey: k.publicKey,
    issuer,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 365 * DAY),
  });
  return {
    cert,
    keyPem: k.privateKeyPem,
    signer: signerFromPrivateKey(k.privateKeyPem, { certificates: [cert] }),
  };
}

export default async function pkiBench(report: Report): Promise<void> {
  const now = new Date();
  const information = twoKilobytes();
  const content = encodeConveyedInformation(information);
  for (const alg of ['rsa-2048', 'ec-p256', 'ec-p384'] as const) {
    const root = await ca(alg, `bench root ${alg}`, now);
    const owner = await leaf(root, alg, `bench owner ${alg}`, now);
    const hash = owner.signer.algorithm.hash;
    const priv = createPrivateKey(owner.keyPem);
    const pub = createPublicKey(priv);
    const cms = await signConveyedInformation({ information, signer: owner.signer });
    const rawSig = nodeSign(hash, content, priv);

    const sign = await measure(() => signConveyedInformation({ information, signer: owner.signer }));
    const signFloor = await measure(
      () =>
        new Promise<void>((resolve, reject) =>
          nodeSign(hash, content, priv, (e) => (e ? reject(e) : resolve())),
        ),
    );
    report({
      name: `sign ${alg}`,
      bytes: content.length,
      opsPerSec: sign.opsPerSec,
      floorOpsPerSec: signFloor.opsPerSec,
      ratioToFloor: Number((sign.opsPerSec / signFloor.opsPerSec).toFixed(2)),
    });

    const verify = await measure(() =>
      verifySignedData(cms, { contentTypes: [CI_JSON], signerCertificates: [owner.cert] }),
    );
    const verifyFloor = await measure(() => nodeVerify(hash, content, pub, rawSig));
    report({
      name: `verify ${alg}`,
      bytes: content.length,
      opsPerSec: verify.opsPerSec,
      floorOpsPerSec: verifyFloor.opsPerSec,
      ratioToFloor: Number((verify.opsPerSec / verifyFloor.opsPerSec).toFixed(2)),
    });

    // Full §5.4: voucher (MASA under a manufacturer CA), owner chain to the pinned owner CA, signature.
    const manufacturer = await ca(alg, `bench manufacturer ${alg}`, now);
    const masa = await leaf(manufacturer, alg, `bench masa ${alg}`, now);
    const voucher = await signVoucher(
      {
        createdOn: new Date(now.getTime() - DAY),
        expiresOn: new Date(now.getTime() + DAY),
        assertion: 'verified',
        serialNumber: 'BENCH-1',
        pinnedDomainCert: root.certificates[0]!,
      },
      withCertificates(masa.signer, [masa.cert, manufacturer.certificates[0]!]),
    );
    const input = {
      conveyedInformation: cms,
      ownerCertificate: createOwnerCertificateArtifact([owner.cert]),
      ownershipVoucher: voucher,
      manufacturerTrustAnchors: [manufacturer.certificates[0]!],
      serialNumber: 'BENCH-1',
      now,
    };
    const full = await measure(() => verifyBootstrappingData(input));
    report({
      name: `rfc8572 5.4 verify ${alg}`,
      meanMs: full.meanMs,
      opsPerSec: full.opsPerSec,
      signatureChecks: 4,
    });
  }
}
