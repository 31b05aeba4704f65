/**
 * Object identifiers used by `pki/`, each with the document that assigns it.
 */

/** CMS content types (RFC 5652 §4, §5; RFC 8572 §10.3; RFC 8366 §8.3 + erratum EID 6807). */
export const ContentTypeOid = {
  /** id-data, RFC 5652 §4. */
  data: '1.2.840.113549.1.7.1',
  /** id-signedData, RFC 5652 §5.1. */
  signedData: '1.2.840.113549.1.7.2',
  /** id-envelopedData, RFC 5652 §6.1. */
  envelopedData: '1.2.840.113549.1.7.3',
  /** id-ct-animaJSONVoucher, RFC 8366 §8.3. */
  animaJsonVoucher: '1.2.840.113549.1.9.16.1.40',
  /** id-ct-sztpConveyedInfoXML, RFC 8572 §10.3. */
  sztpConveyedInfoXml: '1.2.840.113549.1.9.16.1.42',
  /** id-ct-sztpConveyedInfoJSON, RFC 8572 §10.3. */
  sztpConveyedInfoJson: '1.2.840.113549.1.9.16.1.43',
} as const;

/** CMS signed attribute types (RFC 5652 §11). */
export const AttributeOid = {
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
} as const;

/** Hash algorithms (RFC 5754 §2). */
export const HashOid = {
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
} as const;

/** Signature and key algorithms (RFC 4055, RFC 5754 §3, RFC 5758 §3.2, RFC 5480). */
export const AlgOid = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
} as const;

/** X.509 attribute types used in names (X.520; RFC 5280 §4.1.2.4). */
export const NameOid = {
  commonName: '2.5.4.3',
  /** X.520 serialNumber: the device serial of an IDevID (IEEE 802.1AR §8.6). Not "SN" (surname, 2.5.4.4). */
  serialNumber: '2.5.4.5',
  country: '2.5.4.6',
  locality: '2.5.4.7',
  state: '2.5.4.8',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
} as const;

/** X.509 extensions (RFC 5280 §4.2). */
export const ExtOid = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
} as const;

/** Extended key usages (RFC 5280 §4.2.1.12). */
export const EkuOid = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;
