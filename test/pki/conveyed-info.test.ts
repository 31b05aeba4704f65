/**
 * Conveyed information: the RFC 8572 examples, JSON ⇄ XML, strictness, and
 * the unsigned/signed CMS forms.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ContentTypeOid,
  type ConveyedInformation,
  createUnsignedConveyedInformation,
  decodeConveyedInformation,
  encodeConveyedInformation,
  toColonHex,
  verifyBootstrappingData,
} from '../../pki/index.js';
import { haveShared, sharedPath } from '../helpers/shared.js';
import { NOW } from './fixtures.js';

const FIXTURES = sharedPath('fixtures', 'rfc8572');
const fixture = (f: string) => new Uint8Array(readFileSync(join(FIXTURES, f)));
const enc = (s: string) => new TextEncoder().encode(s);
const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return 'OK';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
};

describe.skipIf(!haveShared('fixtures/rfc8572'))('RFC 8572 examples (needs ../shared/fixtures)', () => {
  it('the JSON onboarding and redirect examples parse', () => {
    const ob = decodeConveyedInformation(fixture('ex-file-onboarding-information.json'));
    expect(ob).toMatchObject({
      'ietf-sztp-conveyed-info:onboarding-information': {
        'boot-image': { 'os-name': 'VendorOS', 'download-uri': ['http://some/path/to/raw/file'] },
        'configuration-handling': 'merge',
      },
    });
    const rd = decodeConveyedInformation(fixture('ex-file-redirect-information.json'));
    expect(rd).toEqual(decodeConveyedInformation(fixture('ex-file-redirect-information.xml')));
    expect(
      (rd as { 'ietf-sztp-conveyed-info:redirect-information': { 'bootstrap-server': unknown[] } })[
        'ietf-sztp-conveyed-info:redirect-information'
      ]['bootstrap-server'],
    ).toHaveLength(3);
  });

  it('the XML onboarding example is reported as invalid (embedded XML where base64 binary belongs)', () => {
    expect(() => decodeConveyedInformation(fixture('ex-file-onboarding-information.xml'))).toThrowError(
      /configuration must be a leaf, found child element <system> \(binary leaves carry base64 text/,
    );
    expect(codeOf(() => decodeConveyedInformation(fixture('ex-file-onboarding-information.xml')))).toBe(
      'PKI_ERR_BAD_CONVEYED_INFO',
    );
  });
});

const INFO: ConveyedInformation = {
  'ietf-sztp-conveyed-info:onboarding-information': {
    'boot-image': {
      'os-name': 'DPU <OS> & "friends"',
      'os-version': '2.0',
      'download-uri': ['https://a.example/img.bfb', 'http://b.example/img.bfb'],
      'image-verification': [
        {
          'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256',
          'hash-value': toColonHex(new Uint8Array(32).fill(0xab)),
        },
      ],
    },
    'pre-configuration-script': 'IyEvYmluL3NoCg==',
    'configuration-handling': 'replace',
    configuration: 'PGNvbmZpZy8+',
    'post-configuration-script': 'ZXhpdCAwCg==',
  },
};

describe('JSON and XML', () => {
  it('round-trips through both encodings to the same JSON shape', () => {
    for (const fmt of ['json', 'xml'] as const)
      expect(decodeConveyedInformation(encodeConveyedInformation(INFO, fmt))).toEqual(INFO);
    const redirect: ConveyedInformation = {
      'ietf-sztp-conveyed-info:redirect-information': {
        'bootstrap-server': [
          { address: '2001:db8::1', port: 8443, 'trust-anchor': 'AAAA' },
          { address: 'b' },
        ],
      },
    };
    expect(decodeConveyedInformation(encodeConveyedInformation(redirect, 'xml'))).toEqual(redirect);
  });

  it('hash-value is lowercase colon hex; bare and prefixed identities normalise to the qualified form', () => {
    expect(toColonHex(Uint8Array.of(0xba, 0xec, 0x0f))).toBe('ba:ec:0f');
    const bare = enc(
      '{"ietf-sztp-conveyed-info:onboarding-information":{"boot-image":{"download-uri":["https://x/y"],"image-verification":[{"hash-algorithm":"sha-256","hash-value":"AB:CD"}]}}}',
    );
    expect(JSON.stringify(decodeConveyedInformation(bare))).toContain(
      '"hash-algorithm":"ietf-sztp-conveyed-info:sha-256"',
    );
    const xml = enc(
      '<onboarding-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info" xmlns:x="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info"><boot-image><download-uri>https://x/y</download-uri><image-verification><hash-algorithm>x:sha-256</hash-algorithm><hash-value>ab:cd</hash-value></image-verification></boot-image></onboarding-information>',
    );
    expect(codeOf(() => decodeConveyedInformation(xml))).toBe('OK');
  });

  const rejects: [string, string][] = [
    ['empty onboarding information', '{"ietf-sztp-conveyed-info:onboarding-information":{}}'],
    [
      'unqualified top-level member',
      '{"onboarding-information":{"configuration-handling":"merge","configuration":"AA=="}}',
    ],
    [
      'unknown member',
      '{"ietf-sztp-conveyed-info:onboarding-information":{"boot-image":{"os-name":"x","colour":"red"}}}',
    ],
    [
      'plain hex hash-value',
      '{"ietf-sztp-conveyed-info:onboarding-information":{"boot-image":{"download-uri":["https://x"],"image-verification":[{"hash-algorithm":"sha-256","hash-value":"abcd"}]}}}',
    ],
    [
      'image-verification without download-uri',
      '{"ietf-sztp-conveyed-info:onboarding-information":{"boot-image":{"image-verification":[{"hash-algorithm":"sha-256","hash-value":"ab"}]}}}',
    ],
    [
      'configuration without configuration-handling',
      '{"ietf-sztp-conveyed-info:onboarding-information":{"configuration":"AA=="}}',
    ],
    [
      'non-base64 script',
      '{"ietf-sztp-conveyed-info:onboarding-information":{"pre-configuration-script":"#!/bin/sh"}}',
    ],
    [
      'unknown hash algorithm',
      '{"ietf-sztp-conveyed-info:onboarding-information":{"boot-image":{"download-uri":["https://x"],"image-verification":[{"hash-algorithm":"md5","hash-value":"ab"}]}}}',
    ],
    ['empty redirect', '{"ietf-sztp-conveyed-info:redirect-information":{"bootstrap-server":[]}}'],
    [
      'port as string',
      '{"ietf-sztp-conveyed-info:redirect-information":{"bootstrap-server":[{"address":"a","port":"443"}]}}',
    ],
    [
      'both choices',
      '{"ietf-sztp-conveyed-info:redirect-information":{"bootstrap-server":[{"address":"a"}]},"ietf-sztp-conveyed-info:onboarding-information":{"configuration-handling":"merge","configuration":"AA=="}}',
    ],
    ['not JSON', '{"ietf-sztp-conveyed-info:'],
    [
      'XML in the wrong namespace',
      '<onboarding-information xmlns="urn:example"><configuration-handling>merge</configuration-handling></onboarding-information>',
    ],
    [
      'XML with a DTD',
      '<!DOCTYPE x [<!ENTITY e "boom">]><redirect-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info"><bootstrap-server><address>&e;</address></bootstrap-server></redirect-information>',
    ],
    [
      'XML with an unknown element',
      '<redirect-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info"><bootstrap-server><address>a</address><colour>red</colour></bootstrap-server></redirect-information>',
    ],
    [
      'XML not well-formed',
      '<redirect-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info"><bootstrap-server><address>a</bootstrap-server></redirect-information>',
    ],
    [
      'XML unbound identity prefix',
      '<onboarding-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info"><boot-image><download-uri>https://x</download-uri><image-verification><hash-algorithm>p:sha-256</hash-algorithm><hash-value>ab</hash-value></image-verification></boot-image></onboarding-information>',
    ],
    [
      'XML repeated leaf',
      '<onboarding-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info"><boot-image><os-name>a</os-name><os-name>b</os-name></boot-image></onboarding-information>',
    ],
    [
      'XML trailing content',
      '<redirect-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info"><bootstrap-server><address>a</address></bootstrap-server></redirect-information><x/>',
    ],
  ];
  for (const [name, text] of rejects) {
    it(`rejects ${name}`, () => {
      expect(codeOf(() => decodeConveyedInformation(enc(text)))).toBe('PKI_ERR_BAD_CONVEYED_INFO');
    });
  }

  it('encoding refuses invalid input too', () => {
    expect(
      codeOf(() => encodeConveyedInformation({ 'ietf-sztp-conveyed-info:onboarding-information': {} })),
    ).toBe('PKI_ERR_BAD_CONVEYED_INFO');
  });
});

describe('unsigned CMS form', () => {
  it('wraps JSON and XML in a ContentInfo of the RFC 8572 content types', () => {
    for (const [fmt, oid] of [
      ['json', ContentTypeOid.sztpConveyedInfoJson],
      ['xml', ContentTypeOid.sztpConveyedInfoXml],
    ] as const) {
      const der = createUnsignedConveyedInformation(INFO, fmt);
      const r = verifyBootstrappingData({ conveyedInformation: der, now: NOW, allowUnsigned: true });
      expect(r.contentType).toBe(oid);
      expect(r.conveyedInformation).toEqual(INFO);
    }
  });
});
