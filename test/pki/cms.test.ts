/**
 * CMS SignedData: round trips for every key type and content type, pkijs as an
 * independent verifier, and OpenSSL interop in both directions.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ContentTypeOid,
  type KeyAlgorithm,
  PkiError,
  createCertificateBag,
  generateKey,
  parseCertificate,
  parseCertificateBag,
  signCms,
  validateCertificatePath,
  verifySignedData,
} from '../../pki/index.js';
import { int, octets, oid, readChildren, readTlv, seq, setOf, tlv } from '../../pki/der.js';
import { hashAlgorithmIdentifier, signatureAlgorithmIdentifier } from '../../pki/signer.js';
import { haveTool } from '../helpers/tools.js';
import {
  type Identity,
  NOW,
  issue,
  makeRoot,
  openssl,
  opensslStatus,
  pkijsVerify,
  tempDir,
  writePem,
} from './fixtures.js';

const CONTENT_TYPES = [
  ContentTypeOid.sztpConveyedInfoJson,
  ContentTypeOid.sztpConveyedInfoXml,
  ContentTypeOid.animaJsonVoucher,
  ContentTypeOid.data,
];
const content = new TextEncoder().encode(
  '{"ietf-sztp-conveyed-info:redirect-information":{"bootstrap-server":[{"address":"a"}]}}',
);

let root: Identity;
let inter: Identity;
const rsaKeys: Record<string, { keyPem: string; publicKey: Uint8Array }> = {};

beforeAll(async () => {
  root = await makeRoot('ec-p384', 'CMS Root');
  inter = await issue(root, 'ca', 'CMS Intermediate', { alg: 'ec-p256' });
  // RSA keys once per file (slow on a shared 2-core box).
  for (const alg of ['rsa-2048', 'rsa-3072'] as const) {
    const k = await generateKey(alg);
    rsaKeys[alg] = { keyPem: k.privateKeyPem, publicKey: k.publicKey };
  }
});

async function signerFor(
  alg: KeyAlgorithm,
  opts: { hash?: 'sha256' | 'sha384' | 'sha512'; rsaPadding?: 'pkcs1' | 'pss' } = {},
) {
  return issue(inter, 'signing', `signer ${alg}`, {
    alg,
    ...(rsaKeys[alg] ? { reuseKey: rsaKeys[alg] } : {}),
    ...opts,
  });
}

describe('round trips', () => {
  for (const alg of ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072'] as const) {
    it(`${alg}: every content type signs, verifies, and pkijs agrees`, async () => {
      const id = await signerFor(alg);
      for (const contentType of CONTENT_TYPES) {
        const der = await signCms({ content, contentType, signer: id.signer, signingTime: NOW });
        const v = verifySignedData(der, { contentTypes: [contentType] });
        expect(v.eContentType).toBe(contentType);
        expect(Buffer.from(v.content).equals(Buffer.from(content))).toBe(true);
        expect(v.signer.commonName).toBe(`signer ${alg}`);
        expect(v.signingTime?.toISOString()).toBe(NOW.toISOString());
        expect(
          validateCertificatePath({
            certificate: v.signer,
            intermediates: v.certificates,
            trustAnchors: [root.cert],
            now: NOW,
          }).path,
        ).toHaveLength(3);
        expect(await pkijsVerify(der)).toBe(true);
      }
    });
  }

  const matrix = [
    ['ec-p256', 'sha384', undefined],
    ['ec-p256', 'sha512', undefined],
    ['ec-p384', 'sha256', undefined],
    ['rsa-2048', 'sha384', 'pkcs1'],
    ['rsa-2048', 'sha512', 'pkcs1'],
    ['rsa-2048', 'sha256', 'pss'],
    ['rsa-2048', 'sha384', 'pss'],
    ['rsa-2048', 'sha512', 'pss'],
  ] as const;
  for (const [alg, hash, rsaPadding] of matrix) {
    it(`${alg} ${hash}${rsaPadding ? ` ${rsaPadding}` : ''} verifies here and in pkijs`, async () => {
      const id = await signerFor(alg, { hash, ...(rsaPadding ? { rsaPadding } : {}) });
      const der = await signCms({
        content,
        contentType: ContentTypeOid.sztpConveyedInfoJson,
        signer: id.signer,
      });
      expect(
        verifySignedData(der, { contentTypes: [ContentTypeOid.sztpConveyedInfoJson] }).signer.der,
      ).toEqual(id.cert);
      expect(await pkijsVerify(der)).toBe(true);
    });
  }

  it('a detached-certificate signature verifies only with the certificate supplied', async () => {
    const id = await signerFor('ec-p256');
    const der = await signCms({
      content,
      contentType: ContentTypeOid.data,
      signer: id.signer,
      includeCertificates: false,
    });
    expect(() => verifySignedData(der, { contentTypes: [ContentTypeOid.data] })).toThrowError(
      expect.objectContaining({ code: 'PKI_ERR_SIGNER_NOT_FOUND' }),
    );
    expect(
      verifySignedData(der, { contentTypes: [ContentTypeOid.data], signerCertificates: [id.cert] }).signer
        .der,
    ).toEqual(id.cert);
    expect(await pkijsVerify(der, [id.cert])).toBe(true);
  });

  it('rejects content types not allowed by the caller', async () => {
    const id = await signerFor('ec-p256');
    const der = await signCms({ content, contentType: ContentTypeOid.animaJsonVoucher, signer: id.signer });
    expect(() => verifySignedData(der, { contentTypes: [ContentTypeOid.sztpConveyedInfoJson] })).toThrowError(
      expect.objectContaining({ code: 'PKI_ERR_WRONG_CONTENT_TYPE' }),
    );
  });

  it('certificate bags (degenerate SignedData) round-trip', () => {
    const bag = createCertificateBag([inter.cert, root.cert]);
    expect(parseCertificateBag(bag)).toEqual([inter.cert, root.cert]);
  });
});

/** Builds a SignedData by hand so RFC 5652 rules can be broken on purpose. */
async function handMade(
  id: Identity,
  opts: { eContentType: string; attrContentType?: string; noAttrs?: boolean },
) {
  const cert = parseCertificate(id.cert);
  const { createHash } = await import('node:crypto');
  const digest = createHash('sha256').update(content).digest();
  const attrs = setOf(
    seq(oid('1.2.840.113549.1.9.3'), setOf(oid(opts.attrContentType ?? opts.eContentType))),
    seq(oid('1.2.840.113549.1.9.4'), setOf(octets(digest))),
  );
  const signature = await id.signer.sign(opts.noAttrs ? content : attrs);
  const si = seq(
    int(1),
    seq(cert.issuerDer, tlv(0x02, cert.serialNumberBytes)),
    hashAlgorithmIdentifier('sha256'),
    ...(opts.noAttrs ? [] : [tlv(0xa0, readTlv(attrs).value)]),
    signatureAlgorithmIdentifier(id.signer.algorithm),
    octets(signature),
  );
  const sd = seq(
    int(3),
    setOf(hashAlgorithmIdentifier('sha256')),
    seq(oid(opts.eContentType), tlv(0xa0, octets(content))),
    tlv(0xa0, id.cert),
    setOf(si),
  );
  return seq(oid('1.2.840.113549.1.7.2'), tlv(0xa0, sd));
}

describe('RFC 5652 §5.3 pitfalls that OpenSSL 3.0 and pkijs accept', () => {
  it('rejects a contentType attribute that differs from the eContentType', async () => {
    const id = await signerFor('ec-p256');
    const der = await handMade(id, {
      eContentType: ContentTypeOid.sztpConveyedInfoJson,
      attrContentType: ContentTypeOid.data,
    });
    expect(await pkijsVerify(der)).toBe(true); // the pitfall: an independent verifier is fooled
    expect(() => verifySignedData(der, { contentTypes: [ContentTypeOid.sztpConveyedInfoJson] })).toThrowError(
      expect.objectContaining({ code: 'PKI_ERR_CONTENT_TYPE_ATTR_MISMATCH' }),
    );
  });

  it('rejects missing signed attributes for non-id-data content, accepts them absent for id-data', async () => {
    const id = await signerFor('ec-p256');
    const bad = await handMade(id, { eContentType: ContentTypeOid.sztpConveyedInfoJson, noAttrs: true });
    expect(() => verifySignedData(bad, { contentTypes: [ContentTypeOid.sztpConveyedInfoJson] })).toThrowError(
      expect.objectContaining({ code: 'PKI_ERR_MISSING_SIGNED_ATTRS' }),
    );
    const ok = await handMade(id, { eContentType: ContentTypeOid.data, noAttrs: true });
    expect(verifySignedData(ok, { contentTypes: [ContentTypeOid.data] }).content).toEqual(content);
  });

  it('hand-made structures are what we think they are', async () => {
    const id = await signerFor('ec-p256');
    const der = await handMade(id, { eContentType: ContentTypeOid.data });
    expect(readChildren(readTlv(der).value)).toHaveLength(2);
    expect(verifySignedData(der, { contentTypes: [ContentTypeOid.data] }).signer.der).toEqual(id.cert);
  });
});

describe.skipIf(!haveTool('openssl'))('OpenSSL interop', () => {
  let t: ReturnType<typeof tempDir>;
  beforeAll(() => {
    t = tempDir();
  });
  afterAll(() => t.cleanup());

  describe('OpenSSL verifies what pki/ signs', () => {
    const cases = [
      ['ec-p256', undefined, true],
      ['ec-p384', undefined, false],
      ['rsa-2048', 'pkcs1', true],
      ['rsa-2048', 'pss', false],
      ['rsa-3072', 'pkcs1', false],
    ] as const;
    for (const [alg, rsaPadding, viaIntermediate] of cases) {
      it(`${alg}${rsaPadding ? ` ${rsaPadding}` : ''} ${viaIntermediate ? 'with' : 'without'} an intermediate`, async () => {
        const issuer = viaIntermediate ? inter : root;
        const id = await issue(issuer, 'signing', `ossl ${alg}`, {
          alg,
          ...(rsaKeys[alg] ? { reuseKey: rsaKeys[alg] } : {}),
          ...(rsaPadding ? { rsaPadding } : {}),
        });
        for (const contentType of [ContentTypeOid.sztpConveyedInfoJson, ContentTypeOid.animaJsonVoucher]) {
          const der = await signCms({ content, contentType, signer: id.signer, signingTime: new Date() });
          const f = join(t.dir, `${alg}-${rsaPadding}-${viaIntermediate}.cms`);
          writeFileSync(f, der);
          const out = openssl([
            'cms',
            '-verify',
            '-binary',
            '-inform',
            'DER',
            '-in',
            f,
            '-CAfile',
            writePem(join(t.dir, 'root.pem'), [root.cert]),
            '-purpose',
            'any',
            '-attime',
            String(Math.floor(NOW.getTime() / 1000)),
          ]);
          expect(Buffer.from(out).equals(Buffer.from(content))).toBe(true);
        }
      });
    }

    it('openssl pkcs7 -print_certs lists the owner-certificate artifact', async () => {
      const owner = await issue(inter, 'signing', 'printed owner');
      const f = join(t.dir, 'bag.cms');
      writeFileSync(f, createCertificateBag([owner.cert, inter.cert]));
      const out = openssl(['pkcs7', '-inform', 'DER', '-in', f, '-print_certs', '-noout']).toString();
      expect(out).toContain('subject=O = pki tests, CN = printed owner');
      expect(out).toContain('subject=O = pki tests, CN = CMS Intermediate');
    });
  });

  describe('pki/ verifies what OpenSSL signs', () => {
    // OpenSSL's certificates start at the real clock; validate a minute later.
    const now = new Date(Date.now() + 60_000);
    const mk = (name: string, keyArgs: string[], ca?: string, ext = 'basicConstraints=critical,CA:TRUE') => {
      const key = join(t.dir, `${name}.key`);
      const crt = join(t.dir, `${name}.crt`);
      openssl([
        'req',
        '-x509',
        '-newkey',
        ...keyArgs,
        '-nodes',
        '-keyout',
        key,
        '-out',
        crt,
        '-subj',
        `/O=openssl/CN=${name}`,
        '-days',
        '30',
        '-addext',
        ext,
        ...(ca ? ['-CA', join(t.dir, `${ca}.crt`), '-CAkey', join(t.dir, `${ca}.key`)] : []),
      ]);
      return { key, crt };
    };
    const rsa = ['rsa:2048'];
    const ec = ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    beforeAll(() => {
      mk('oroot', ec);
      mk('ointer', ec, 'oroot');
      mk('oec-leaf', ec, 'ointer', 'keyUsage=critical,digitalSignature');
      mk('orsa-leaf', rsa, 'oroot', 'keyUsage=critical,digitalSignature');
    });
    let signed = 0;
    const sign = (leaf: string, oidStr: string, extra: string[] = []) => {
      const input = join(t.dir, 'content.json');
      writeFileSync(input, content);
      const out = join(t.dir, `signed-${++signed}.cms`);
      openssl([
        'cms',
        '-sign',
        '-binary',
        '-nodetach',
        '-econtent_type',
        oidStr,
        '-outform',
        'DER',
        '-signer',
        join(t.dir, `${leaf}.crt`),
        '-inkey',
        join(t.dir, `${leaf}.key`),
        '-in',
        input,
        '-out',
        out,
        ...extra,
      ]);
      return new Uint8Array(readFileSync(out));
    };
    const rootDer = () =>
      new Uint8Array(openssl(['x509', '-in', join(t.dir, 'oroot.crt'), '-outform', 'DER']));

    const cases: [string, string, string[]][] = [
      ['EC with intermediate, -nosmimecap', 'oec-leaf', ['-nosmimecap', '-certfile', 'ointer.crt']],
      [
        'EC with intermediate, smimeCapabilities, SHA-384',
        'oec-leaf',
        ['-certfile', 'ointer.crt', '-md', 'sha384'],
      ],
      ['RSA PKCS#1 v1.5 without intermediate', 'orsa-leaf', ['-nosmimecap']],
      ['RSA-PSS without intermediate', 'orsa-leaf', ['-nosmimecap', '-keyopt', 'rsa_padding_mode:pss']],
      ['RSA SHA-512', 'orsa-leaf', ['-md', 'sha512']],
    ];
    for (const [name, leaf, extra] of cases) {
      it(name, () => {
        const args = extra.map((a) => (a.endsWith('.crt') ? join(t.dir, a) : a));
        for (const oidStr of [
          ContentTypeOid.sztpConveyedInfoJson,
          ContentTypeOid.sztpConveyedInfoXml,
          ContentTypeOid.animaJsonVoucher,
        ]) {
          const der = sign(leaf, oidStr, args);
          const v = verifySignedData(der, { contentTypes: [oidStr] });
          expect(v.content).toEqual(content);
          expect(v.signingTime).toBeInstanceOf(Date);
          const path = validateCertificatePath({
            certificate: v.signer,
            intermediates: v.certificates,
            trustAnchors: [rootDer()],
            now,
          });
          expect(path.path.at(-1)!.commonName).toBe('oroot');
        }
      });
    }

    it('rejects OpenSSL -noattr output for non-id-data content (OpenSSL itself accepts it)', () => {
      const der = sign('oec-leaf', ContentTypeOid.sztpConveyedInfoJson, [
        '-noattr',
        '-certfile',
        join(t.dir, 'ointer.crt'),
      ]);
      const f = join(t.dir, 'noattr.cms');
      writeFileSync(f, der);
      const r = opensslStatus([
        'cms',
        '-verify',
        '-binary',
        '-inform',
        'DER',
        '-in',
        f,
        '-CAfile',
        join(t.dir, 'oroot.crt'),
        '-purpose',
        'any',
        '-out',
        '/dev/null',
      ]);
      expect(r.status, r.stderr).toBe(0);
      expect(() =>
        verifySignedData(der, { contentTypes: [ContentTypeOid.sztpConveyedInfoJson] }),
      ).toThrowError(expect.objectContaining({ code: 'PKI_ERR_MISSING_SIGNED_ATTRS' }));
    });

    it('detects a signer that does not chain to our anchors', () => {
      const der = sign('orsa-leaf', ContentTypeOid.data, []);
      const v = verifySignedData(der, { contentTypes: [ContentTypeOid.data] });
      let err: unknown;
      try {
        validateCertificatePath({ certificate: v.signer, trustAnchors: [root.cert], now });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PkiError);
      expect((err as PkiError).code).toBe('PKI_ERR_UNTRUSTED_SIGNER');
    });
  });
});
