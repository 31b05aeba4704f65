/**
 * RFC 8572 §5.4 end to end: vouchers, owner certificates and signed conveyed
 * information, the order of the checks, and a table of tampering cases each
 * rejected with its own code.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type BootstrappingDataInput,
  ContentTypeOid,
  type ConveyedInformation,
  type PkiErrorCode,
  type Voucher,
  createOwnerCertificateArtifact,
  createUnsignedConveyedInformation,
  decodeVoucher,
  encodeVoucher,
  parseCertificate,
  signCms,
  signConveyedInformation,
  signVoucher,
  verifyBootstrappingData,
  verifyOwnershipVoucher,
} from '../../pki/index.js';
import { DAY, type Identity, NOW, issue, makeRoot } from './fixtures.js';

const INFO: ConveyedInformation = {
  'ietf-sztp-conveyed-info:onboarding-information': {
    'boot-image': {
      'os-name': 'DPU-OS',
      'os-version': '1.2.3',
      'download-uri': ['https://images.example/dpu-os.bfb'],
      'image-verification': [
        { 'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256', 'hash-value': `ab:${'cd:'.repeat(30)}ef` },
      ],
    },
    'configuration-handling': 'merge',
    configuration: Buffer.from('<config/>').toString('base64'),
  },
};
const SN = 'DPU-0001';
const NONCE = new Uint8Array(16).fill(7);

let manufacturer: Identity;
let masa: Identity;
let ownerCa: Identity;
let ownerInter: Identity;
let owner: Identity;
let otherOwnerCa: Identity;
let otherOwner: Identity;
let rogueMasa: Identity;
let ci: Uint8Array;
let oc: Uint8Array;
let ov: Uint8Array;

const voucherFields = (over: Partial<Voucher> = {}): Voucher => ({
  createdOn: new Date(NOW.getTime() - DAY),
  expiresOn: new Date(NOW.getTime() + 30 * DAY),
  assertion: 'verified',
  serialNumber: SN,
  pinnedDomainCert: ownerCa.cert,
  ...over,
});

beforeAll(async () => {
  manufacturer = await makeRoot('ec-p384', 'Manufacturer CA');
  masa = await issue(manufacturer, 'signing', 'MASA', { alg: 'ec-p384' });
  ownerCa = await makeRoot('ec-p256', 'Owner CA');
  ownerInter = await issue(ownerCa, 'ca', 'Owner Intermediate');
  owner = await issue(ownerInter, 'signing', 'Owner');
  otherOwnerCa = await makeRoot('ec-p256', 'Other Owner CA');
  otherOwner = await issue(otherOwnerCa, 'signing', 'Other Owner');
  const rogueRoot = await makeRoot('ec-p256', 'Manufacturer CA');
  rogueMasa = await issue(rogueRoot, 'signing', 'MASA');
  ci = await signConveyedInformation({ information: INFO, signer: owner.signer, signingTime: NOW });
  oc = createOwnerCertificateArtifact([owner.cert, ownerInter.cert]);
  ov = await signVoucher(voucherFields(), masa.signer, { signingTime: NOW });
});

const input = (over: Partial<BootstrappingDataInput> = {}): BootstrappingDataInput => ({
  conveyedInformation: ci,
  ownerCertificate: oc,
  ownershipVoucher: ov,
  manufacturerTrustAnchors: [manufacturer.cert],
  serialNumber: SN,
  now: NOW,
  ...over,
});

function codeOf(fn: () => unknown): PkiErrorCode | 'OK' | `THREW ${string}` {
  try {
    fn();
    return 'OK';
  } catch (e) {
    const c = (e as { code?: PkiErrorCode }).code;
    return c ?? `THREW ${String(e)}`;
  }
}

/** Flips one byte of `needle` where it occurs inside `hay`, at `at` (negative: from its end). */
function flipInside(hay: Uint8Array, needle: Uint8Array, at: number): Uint8Array {
  const start = Buffer.from(hay).indexOf(Buffer.from(needle));
  if (start < 0) throw new Error('needle not found');
  const out = Uint8Array.from(hay);
  out[start + (at < 0 ? needle.length + at : at)]! ^= 0x01;
  return out;
}

describe('verifyBootstrappingData (RFC 8572 §5.4)', () => {
  it('accepts signed JSON conveyed information and reports every step in order', () => {
    const r = verifyBootstrappingData(input());
    expect(r.signed).toBe(true);
    expect(r.conveyedInformation).toEqual(INFO);
    expect(r.contentType).toBe(ContentTypeOid.sztpConveyedInfoJson);
    expect(r.ownerCertificate?.commonName).toBe('Owner');
    expect(r.ownerPath?.map((c) => c.commonName)).toEqual(['Owner', 'Owner Intermediate', 'Owner CA']);
    expect(r.voucherSigner?.commonName).toBe('MASA');
    expect(r.checks.filter((c) => /^\d/.test(c)).map((c) => c[0])).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
    ]);
  });

  it('accepts XML and id-data content, decoding both to the JSON shape', async () => {
    const xml = await signConveyedInformation({ information: INFO, format: 'xml', signer: owner.signer });
    expect(verifyBootstrappingData(input({ conveyedInformation: xml })).conveyedInformation).toEqual(INFO);
    const { encodeConveyedInformation } = await import('../../pki/index.js');
    const idData = await signCms({
      content: encodeConveyedInformation(INFO, 'xml'),
      contentType: ContentTypeOid.data,
      signer: owner.signer,
      includeCertificates: false,
    });
    const r = verifyBootstrappingData(input({ conveyedInformation: idData }));
    expect(r.conveyedInformation).toEqual(INFO);
    expect(r.contentType).toBe(ContentTypeOid.data);
  });

  it('accepts a pinned intermediate and a pinned owner certificate (partial chains)', async () => {
    for (const pinned of [ownerInter.cert, owner.cert]) {
      const v = await signVoucher(voucherFields({ pinnedDomainCert: pinned }), masa.signer);
      expect(verifyBootstrappingData(input({ ownershipVoucher: v })).signed).toBe(true);
    }
    // Owner certificate artifact that also carries the pinned root (allowed by RFC 8572 §3.2).
    expect(
      verifyBootstrappingData(
        input({
          ownerCertificate: createOwnerCertificateArtifact([ownerInter.cert, owner.cert, ownerCa.cert]),
        }),
      ).signed,
    ).toBe(true);
  });

  it('accepts a nonce-bound voucher when the device sent that nonce, and the logged assertion', async () => {
    const v = await signVoucher(voucherFields({ nonce: NONCE, assertion: 'logged' }), masa.signer);
    expect(verifyBootstrappingData(input({ ownershipVoucher: v, nonce: NONCE })).signed).toBe(true);
  });

  it('accepts a MASA certificate configured directly as trust anchor, and a matching idevid-issuer', async () => {
    const idevidIssuer = new Uint8Array(20).fill(3);
    const v = await signVoucher(voucherFields({ idevidIssuer }), masa.signer);
    expect(
      verifyBootstrappingData(
        input({ ownershipVoucher: v, idevidIssuer, manufacturerTrustAnchors: [masa.cert] }),
      ).signed,
    ).toBe(true);
    // A CA key (keyCertSign only) must not sign vouchers.
    const byCa = await signVoucher(voucherFields(), manufacturer.signer);
    expect(codeOf(() => verifyBootstrappingData(input({ ownershipVoucher: byCa })))).toBe(
      'PKI_ERR_KEY_USAGE',
    );
  });

  it('accepts unsigned conveyed information only when allowed', () => {
    const unsigned = createUnsignedConveyedInformation(INFO, 'xml');
    const r = verifyBootstrappingData({ conveyedInformation: unsigned, now: NOW, allowUnsigned: true });
    expect(r).toMatchObject({
      signed: false,
      conveyedInformation: INFO,
      contentType: ContentTypeOid.sztpConveyedInfoXml,
    });
    expect(codeOf(() => verifyBootstrappingData({ conveyedInformation: unsigned, now: NOW }))).toBe(
      'PKI_ERR_UNSIGNED',
    );
  });

  it('runs the checks in RFC order: voucher before owner chain before signature', async () => {
    const expiredWrongSerial = await signVoucher(
      voucherFields({ serialNumber: 'OTHER', expiresOn: new Date(NOW.getTime() - 1000) }),
      masa.signer,
    );
    expect(codeOf(() => verifyBootstrappingData(input({ ownershipVoucher: expiredWrongSerial })))).toBe(
      'PKI_ERR_VOUCHER_EXPIRED',
    );
    const badSig = flipInside(ci, ci.subarray(-4), -1);
    expect(
      codeOf(() => verifyBootstrappingData(input({ conveyedInformation: badSig, serialNumber: 'OTHER' }))),
    ).toBe('PKI_ERR_SERIAL_MISMATCH');
    const otherPinned = await signVoucher(
      voucherFields({ pinnedDomainCert: otherOwnerCa.cert }),
      masa.signer,
    );
    expect(
      codeOf(() =>
        verifyBootstrappingData(input({ ownershipVoucher: otherPinned, conveyedInformation: badSig })),
      ),
    ).toBe('PKI_ERR_CHAIN_NOT_PINNED');
  });
});

describe('tampering table: each case rejected with its own code', () => {
  const cases: [
    string,
    () => Promise<Partial<BootstrappingDataInput>> | Partial<BootstrappingDataInput>,
    PkiErrorCode,
  ][] = [
    [
      'flipped byte in conveyed-information content',
      () => ({ conveyedInformation: flipInside(ci, new TextEncoder().encode('DPU-OS'), 0) }),
      'PKI_ERR_DIGEST_MISMATCH',
    ],
    [
      'flipped byte in conveyed-information signature',
      () => ({ conveyedInformation: flipInside(ci, ci.subarray(-4), -1) }),
      'PKI_ERR_BAD_SIGNATURE',
    ],
    [
      'flipped byte in voucher signature',
      () => ({ ownershipVoucher: flipInside(ov, ov.subarray(-4), -1) }),
      'PKI_ERR_BAD_SIGNATURE',
    ],
    [
      'flipped byte in voucher content',
      () => ({ ownershipVoucher: flipInside(ov, new TextEncoder().encode('"verified"'), 2) }),
      'PKI_ERR_DIGEST_MISMATCH',
    ],
    [
      'flipped byte in the MASA certificate',
      () => ({ ownershipVoucher: flipInside(ov, masa.cert, -3) }),
      'PKI_ERR_UNTRUSTED_SIGNER',
    ],
    [
      'flipped byte in the owner certificate',
      () => ({ ownerCertificate: flipInside(oc, owner.cert, -3) }),
      'PKI_ERR_CHAIN_NOT_PINNED',
    ],
    [
      'voucher handed in as conveyed information',
      () => ({ conveyedInformation: ov }),
      'PKI_ERR_WRONG_CONTENT_TYPE',
    ],
    [
      'conveyed information signed with the voucher content type',
      async () => ({
        conveyedInformation: await signCms({
          content: new TextEncoder().encode(JSON.stringify(INFO)),
          contentType: ContentTypeOid.animaJsonVoucher,
          signer: owner.signer,
        }),
      }),
      'PKI_ERR_WRONG_CONTENT_TYPE',
    ],
    [
      'unsigned conveyed information',
      () => ({ conveyedInformation: createUnsignedConveyedInformation(INFO) }),
      'PKI_ERR_UNSIGNED',
    ],
    [
      'owner certificate artifact missing',
      () => ({ ownerCertificate: undefined }),
      'PKI_ERR_MISSING_ARTIFACT',
    ],
    [
      'expired voucher',
      async () => ({
        ownershipVoucher: await signVoucher(
          voucherFields({ expiresOn: new Date(NOW.getTime() - 1) }),
          masa.signer,
        ),
      }),
      'PKI_ERR_VOUCHER_EXPIRED',
    ],
    [
      'voucher created in the future',
      async () => ({
        ownershipVoucher: await signVoucher(
          voucherFields({ createdOn: new Date(NOW.getTime() + DAY) }),
          masa.signer,
        ),
      }),
      'PKI_ERR_VOUCHER_NOT_YET_VALID',
    ],
    [
      'proximity assertion',
      async () => ({
        ownershipVoucher: await signVoucher(voucherFields({ assertion: 'proximity' }), masa.signer),
      }),
      'PKI_ERR_ASSERTION_REJECTED',
    ],
    ['serial mismatch', () => ({ serialNumber: 'DPU-9999' }), 'PKI_ERR_SERIAL_MISMATCH'],
    [
      'idevid-issuer mismatch',
      async () => ({
        ownershipVoucher: await signVoucher(voucherFields({ idevidIssuer: new Uint8Array(20) }), masa.signer),
        idevidIssuer: new Uint8Array(20).fill(1),
      }),
      'PKI_ERR_IDEVID_ISSUER_MISMATCH',
    ],
    [
      'nonce mismatch',
      async () => ({
        ownershipVoucher: await signVoucher(voucherFields({ nonce: NONCE }), masa.signer),
        nonce: new Uint8Array(16),
      }),
      'PKI_ERR_NONCE_MISMATCH',
    ],
    ['device sent a nonce, voucher has none', () => ({ nonce: NONCE }), 'PKI_ERR_NONCE_MISMATCH'],
    [
      'voucher signed by an untrusted MASA with the same names',
      async () => ({ ownershipVoucher: await signVoucher(voucherFields(), rogueMasa.signer) }),
      'PKI_ERR_UNTRUSTED_SIGNER',
    ],
    [
      'pinned cert of another owner',
      async () => ({
        ownershipVoucher: await signVoucher(
          voucherFields({ pinnedDomainCert: otherOwnerCa.cert }),
          masa.signer,
        ),
      }),
      'PKI_ERR_CHAIN_NOT_PINNED',
    ],
    [
      'signer missing from the owner certificate',
      async () => ({
        conveyedInformation: await signConveyedInformation({ information: INFO, signer: otherOwner.signer }),
      }),
      'PKI_ERR_SIGNER_NOT_FOUND',
    ],
    [
      'revocation checks demanded',
      async () => ({
        ownershipVoucher: await signVoucher(voucherFields({ domainCertRevocationChecks: true }), masa.signer),
      }),
      'PKI_ERR_REVOCATION_UNAVAILABLE',
    ],
    [
      'owner certificate expired',
      () => ({ now: new Date(NOW.getTime() + 366 * DAY), ownershipVoucher: ov }),
      'PKI_ERR_CERT_EXPIRED',
    ],
    [
      'owner certificate is a CA without digitalSignature',
      async () => ({
        conveyedInformation: await signConveyedInformation({ information: INFO, signer: ownerInter.signer }),
        ownerCertificate: createOwnerCertificateArtifact([ownerInter.cert]),
      }),
      'PKI_ERR_KEY_USAGE',
    ],
    [
      'voucher JSON that is not a voucher',
      async () => ({
        ownershipVoucher: await signCms({
          content: new TextEncoder().encode('{"ietf-voucher:voucher":{"assertion":"verified"}}'),
          contentType: ContentTypeOid.animaJsonVoucher,
          signer: masa.signer,
        }),
      }),
      'PKI_ERR_MALFORMED_VOUCHER',
    ],
    [
      'signed content that is not conveyed information',
      async () => ({
        conveyedInformation: await signCms({
          content: new TextEncoder().encode('{"x":1}'),
          contentType: ContentTypeOid.sztpConveyedInfoJson,
          signer: owner.signer,
        }),
      }),
      'PKI_ERR_BAD_CONVEYED_INFO',
    ],
    [
      'truncated conveyed information',
      () => ({ conveyedInformation: ci.subarray(0, ci.length - 10) }),
      'PKI_ERR_MALFORMED_DER',
    ],
    ['truncated voucher', () => ({ ownershipVoucher: ov.subarray(0, 100) }), 'PKI_ERR_MALFORMED_DER'],
    [
      'garbage owner certificate',
      () => ({ ownerCertificate: new TextEncoder().encode('not a certificate at all') }),
      'PKI_ERR_MALFORMED_DER',
    ],
    ['voucher handed in as owner certificate', () => ({ ownerCertificate: ov }), 'PKI_ERR_MALFORMED_CMS'],
  ];
  for (const [name, make, expected] of cases) {
    it(`${name} → ${expected}`, async () => {
      const over = await make();
      expect(codeOf(() => verifyBootstrappingData(input(over)))).toBe(expected);
    });
  }
  it('the untampered inputs pass (the table tests what it claims)', () => {
    expect(codeOf(() => verifyBootstrappingData(input()))).toBe('OK');
  });
});

describe('vouchers', () => {
  it('encode/decode round-trips every field, including RFC 8366bis leaves', () => {
    const v = voucherFields({
      idevidIssuer: new Uint8Array([1, 2, 3]),
      nonce: NONCE,
      domainCertRevocationChecks: false,
      lastRenewalDate: new Date(NOW.getTime() + 10 * DAY),
      pinnedDomainPubkSha256: new Uint8Array(32).fill(9),
      estDomain: 'https://est.example',
    });
    const back = decodeVoucher(encodeVoucher(v));
    expect(back).toEqual({ ...v, createdOn: new Date(Math.floor(v.createdOn.getTime() / 1000) * 1000) });
    const json = JSON.parse(new TextDecoder().decode(encodeVoucher(v)));
    expect(Object.keys(json)).toEqual(['ietf-voucher:voucher']);
    expect(json['ietf-voucher:voucher']['serial-number']).toBe(SN);
  });

  it('tolerates known real-world quirks (string boolean, unpadded nonce) and rejects the rest', () => {
    const pdc = Buffer.from(ownerCa.cert).toString('base64');
    const doc = (inner: Record<string, unknown>) =>
      new TextEncoder().encode(
        JSON.stringify({
          'ietf-voucher:voucher': {
            'created-on': '2030-01-01T00:00:00Z',
            assertion: 'verified',
            'serial-number': SN,
            'pinned-domain-cert': pdc,
            ...inner,
          },
        }),
      );
    expect(
      decodeVoucher(doc({ 'domain-cert-revocation-checks': 'true', nonce: '4vTsppS2CeqBzhEdoifM2g' })).nonce,
    ).toHaveLength(16);
    for (const bad of [
      { assertion: '' },
      { 'created-on': 'yesterday' },
      { extra: 1 },
      { 'pinned-domain-cert': 'AAAA' },
      { 'serial-number': 5 },
    ]) {
      expect(codeOf(() => decodeVoucher(doc(bad)))).toBe('PKI_ERR_MALFORMED_VOUCHER');
    }
    expect(codeOf(() => decodeVoucher(new TextEncoder().encode('[]')))).toBe('PKI_ERR_MALFORMED_VOUCHER');
  });

  it('verifyOwnershipVoucher stands alone and a custom assertion policy applies', async () => {
    const v = await signVoucher(voucherFields({ assertion: 'proximity' }), masa.signer);
    const r = verifyOwnershipVoucher(v, {
      manufacturerTrustAnchors: [manufacturer.cert],
      serialNumber: SN,
      now: NOW,
      acceptedAssertions: ['proximity'],
    });
    expect(r.voucher.assertion).toBe('proximity');
    expect(parseCertificate(r.voucher.pinnedDomainCert).commonName).toBe('Owner CA');
  });
});
