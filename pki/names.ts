/**
 * X.501 distinguished names (RFC 5280 §4.1.2.4): building the few attributes
 * this service uses, and rendering any name as a readable string.
 */
import { decodeOid, oid, readChildren, readTlv, seq, setOf, tlv } from './der.js';
import { PkiError } from './errors.js';
import { NameOid } from './oids.js';

/** The subject/issuer attributes `pki/` writes. Order on the wire: C, ST, L, O, OU, CN, serialNumber. */
export interface DistinguishedName {
  country?: string;
  state?: string;
  locality?: string;
  organization?: string;
  organizationalUnit?: string;
  commonName?: string;
  /** X.520 serialNumber (2.5.4.5): the device serial number in an IDevID (IEEE 802.1AR §8.6). */
  serialNumber?: string;
}

const ORDER: [keyof DistinguishedName, string, 'printable' | 'utf8'][] = [
  ['country', NameOid.country, 'printable'],
  ['state', NameOid.state, 'utf8'],
  ['locality', NameOid.locality, 'utf8'],
  ['organization', NameOid.organization, 'utf8'],
  ['organizationalUnit', NameOid.organizationalUnit, 'utf8'],
  ['commonName', NameOid.commonName, 'utf8'],
  // X.520: serialNumber and countryName are PrintableString.
  ['serialNumber', NameOid.serialNumber, 'printable'],
];

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** Encodes a {@link DistinguishedName} as a DER Name (one attribute per RDN). */
export function encodeName(name: DistinguishedName): Uint8Array {
  const rdns: Uint8Array[] = [];
  for (const [key, attrOid, kind] of ORDER) {
    const value = name[key];
    if (value === undefined) continue;
    if (value.length === 0 || value.length > 64)
      throw new PkiError('PKI_ERR_BAD_INPUT', `${key} must be 1..64 characters (RFC 5280 App. A ub-*)`);
    if (kind === 'printable' && !PRINTABLE.test(value))
      throw new PkiError('PKI_ERR_BAD_INPUT', `${key} '${value}' is not a PrintableString (X.520)`);
    const str = tlv(kind === 'printable' ? 0x13 : 0x0c, new TextEncoder().encode(value));
    rdns.push(setOf(seq(oid(attrOid), str)));
  }
  if (rdns.length === 0)
    throw new PkiError('PKI_ERR_BAD_INPUT', 'a distinguished name needs at least one attribute');
  return seq(...rdns);
}

const SHORT: Record<string, string> = {
  [NameOid.commonName]: 'CN',
  [NameOid.serialNumber]: 'serialNumber',
  [NameOid.country]: 'C',
  [NameOid.locality]: 'L',
  [NameOid.state]: 'ST',
  [NameOid.organization]: 'O',
  [NameOid.organizationalUnit]: 'OU',
  '2.5.4.4': 'SN',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'emailAddress',
};

/** One decoded name attribute. */
export interface NameAttribute {
  oid: string;
  value: string;
}

function decodeString(tag: number, v: Uint8Array): string {
  switch (tag) {
    case 0x0c: // UTF8String
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x12: // NumericString
      return new TextDecoder('utf-8', { fatal: false }).decode(v);
    case 0x14: // TeletexString, read as Latin-1 like OpenSSL does
      return Buffer.from(v).toString('latin1');
    case 0x1e: // BMPString (UTF-16BE)
      return Buffer.from(v).swap16().toString('utf16le');
    default:
      return `#${Buffer.from(v).toString('hex')}`;
  }
}

/** Decodes a DER Name into its attributes, most significant first. */
export function decodeName(der: Uint8Array): NameAttribute[] {
  const top = readTlv(der);
  if (top.tag !== 0x30) throw new PkiError('PKI_ERR_MALFORMED_DER', 'Name is not a SEQUENCE');
  const out: NameAttribute[] = [];
  for (const rdn of readChildren(top.value)) {
    if (rdn.tag !== 0x31) throw new PkiError('PKI_ERR_MALFORMED_DER', 'RDN is not a SET');
    for (const atv of readChildren(rdn.value)) {
      const [t, v] = readChildren(atv.value);
      if (atv.tag !== 0x30 || !t || t.tag !== 0x06 || !v)
        throw new PkiError('PKI_ERR_MALFORMED_DER', 'bad AttributeTypeAndValue');
      out.push({ oid: decodeOid(t.value), value: decodeString(v.tag, v.value) });
    }
  }
  return out;
}

/** Renders a DER Name in wire order, e.g. `O=Example, CN=device, serialNumber=SN1` (2.5.4.5 is `serialNumber`, never `SN`). */
export function nameToString(der: Uint8Array): string {
  return decodeName(der)
    .map((a) => `${SHORT[a.oid] ?? a.oid}=${a.value.replace(/([,+"\\<>;])/g, '\\$1')}`)
    .join(', ');
}
