/**
 * Property tests: random and mutated input into every parser never crashes or
 * hangs, and every failure is a PkiError with a catalogued code.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  PKI_ERROR_CATALOGUE,
  PkiError,
  createOwnerCertificateArtifact,
  decodeArtifacts,
  decodeConveyedInformation,
  decodeVoucher,
  encodeConveyedInformation,
  parseCertificate,
  parseCertificateBag,
  signConveyedInformation,
  signVoucher,
  verifyBootstrappingData,
  verifyOwnershipVoucher,
  verifySignedData,
  ContentTypeOid,
} from '../../pki/index.js';
import { DAY, NOW, issue, makeRoot } from './fixtures.js';

const RUNS = { numRuns: 300 };
let ci: Uint8Array;
let oc: Uint8Array;
let ov: Uint8Array;
let cert: Uint8Array;
let anchor: Uint8Array;

beforeAll(async () => {
  const manufacturer = await makeRoot('ec-p256', 'fuzz manufacturer');
  const masa = await issue(manufacturer, 'signing', 'fuzz masa');
  const ownerCa = await makeRoot('ec-p256', 'fuzz owner ca');
  const owner = await issue(ownerCa, 'signing', 'fuzz owner');
  cert = owner.cert;
  anchor = manufacturer.cert;
  ci = await signConveyedInformation({
    information: {
      'ietf-sztp-conveyed-info:redirect-information': { 'bootstrap-server': [{ address: 'x', port: 1 }] },
    },
    signer: owner.signer,
  });
  oc = createOwnerCertificateArtifact([owner.cert]);
  ov = await signVoucher(
    {
      createdOn: new Date(NOW.getTime() - DAY),
      assertion: 'verified',
      serialNumber: 'SN',
      pinnedDomainCert: ownerCa.cert,
    },
    masa.signer,
  );
});

/** Returns normally, or throws only a catalogued PkiError. */
function coded(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof PkiError) || !(err.code in PKI_ERROR_CATALOGUE)) throw err;
  }
}

/** Mutations of a valid artifact: flips, truncation, insertion, deletion, length-byte havoc. */
const mutated = (base: () => Uint8Array) =>
  fc
    .tuple(
      fc.constantFrom('flip', 'truncate', 'insert', 'delete', 'setbyte'),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 1, max: 8 }),
    )
    .map(([op, pos, byte, n]) => {
      const b = base();
      const i = pos % b.length;
      switch (op) {
        case 'flip': {
          const out = Uint8Array.from(b);
          out[i]! ^= 1 << (byte % 8);
          return out;
        }
        case 'truncate':
          return b.subarray(0, i);
        case 'insert':
          return Uint8Array.from([...b.subarray(0, i), ...new Array(n).fill(byte), ...b.subarray(i)]);
        case 'delete':
          return Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + n)]);
        default: {
          const out = Uint8Array.from(b);
          out[i] = byte;
          return out;
        }
      }
    });

const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 512 }),
  fc.uint8Array({ minLength: 2, maxLength: 64 }).map((b) => Uint8Array.from([0x30, ...b])),
);

describe('no parser crashes or hangs on hostile bytes', () => {
  const parsers: [string, (b: Uint8Array) => unknown][] = [
    ['parseCertificate', (b) => parseCertificate(b)],
    ['parseCertificateBag', (b) => parseCertificateBag(b)],
    ['verifySignedData', (b) => verifySignedData(b, { contentTypes: Object.values(ContentTypeOid) })],
    ['decodeVoucher', (b) => decodeVoucher(b)],
    ['decodeConveyedInformation', (b) => decodeConveyedInformation(b)],
    ['decodeArtifacts', (b) => decodeArtifacts(b)],
    [
      'verifyOwnershipVoucher',
      (b) => verifyOwnershipVoucher(b, { manufacturerTrustAnchors: [anchor], serialNumber: 'SN', now: NOW }),
    ],
  ];
  for (const [name, parse] of parsers) {
    it(`${name}: random bytes`, () => {
      fc.assert(
        fc.property(anyBytes, (b) => coded(() => parse(b))),
        RUNS,
      );
    });
  }

  it('parseCertificate: mutated certificates', () => {
    fc.assert(
      fc.property(
        mutated(() => cert),
        (b) => coded(() => parseCertificate(b)),
      ),
      RUNS,
    );
  });

  for (const which of ['conveyedInformation', 'ownerCertificate', 'ownershipVoucher'] as const) {
    it(`verifyBootstrappingData: mutated ${which}`, () => {
      const base = { conveyedInformation: ci, ownerCertificate: oc, ownershipVoucher: ov };
      fc.assert(
        fc.property(
          mutated(() => base[which]),
          (b) =>
            coded(() =>
              verifyBootstrappingData({
                ...base,
                [which]: b,
                manufacturerTrustAnchors: [anchor],
                serialNumber: 'SN',
                now: NOW,
              }),
            ),
        ),
        RUNS,
      );
    });
  }

  it('the unmutated artifacts verify (the base case is valid)', () => {
    expect(
      verifyBootstrappingData({
        conveyedInformation: ci,
        ownerCertificate: oc,
        ownershipVoucher: ov,
        manufacturerTrustAnchors: [anchor],
        serialNumber: 'SN',
        now: NOW,
      }).signed,
    ).toBe(true);
  });

  it('XML and JSON decoding: random and mutated text', () => {
    const xml = new TextDecoder().decode(
      encodeConveyedInformation(
        {
          'ietf-sztp-conveyed-info:redirect-information': {
            'bootstrap-server': [{ address: 'a', port: 2, 'trust-anchor': 'AAAA' }],
          },
        },
        'xml',
      ),
    );
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc
        .tuple(fc.nat(), fc.string({ maxLength: 8 }))
        .map(([i, s]) => xml.slice(0, i % xml.length) + s + xml.slice(i % xml.length)),
      fc.nat().map((i) => xml.slice(0, i % xml.length)),
      fc.json().map((j) => `{"ietf-sztp-conveyed-info:onboarding-information":${j}}`),
    );
    fc.assert(
      fc.property(text, (s) => coded(() => decodeConveyedInformation(new TextEncoder().encode(s)))),
      { numRuns: 500 },
    );
  });

  it('deep nesting is refused, not a stack overflow', () => {
    const deep = `${'<a>'.repeat(100_000)}`;
    const deepDer = new Uint8Array(200_000).fill(0x30).map((v, i) => (i % 2 ? 0x80 : v));
    coded(() => decodeConveyedInformation(new TextEncoder().encode(deep)));
    coded(() => verifySignedData(deepDer, { contentTypes: [] }));
    coded(() => decodeConveyedInformation(new TextEncoder().encode('['.repeat(100_000))));
  });
});
