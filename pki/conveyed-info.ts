/**
 * Conveyed information (RFC 8572 §2.2, §6.1, YANG module
 * ietf-sztp-conveyed-info@2019-04-30): the JSON shape (RFC 7951) used
 * throughout, strict validation, XML encode/decode to the same shape, and the
 * CMS forms — unsigned ContentInfo and owner-signed SignedData (RFC 8572 §3.1).
 */
import { signCms, encodeOctetContentInfo } from './cms.js';
import { PkiError, guard } from './errors.js';
import { ContentTypeOid } from './oids.js';
import type { Signer } from './signer.js';
import { XmlSyntaxError, type XmlElement, type XmlLimits, escapeXml, parseXml } from './xml.js';

/** XML namespace of ietf-sztp-conveyed-info. */
export const CONVEYED_INFO_NS = 'urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info';
const MOD = 'ietf-sztp-conveyed-info';
/** JSON member name of onboarding information (RFC 7951 §4: module-qualified). */
export const ONBOARDING_KEY = `${MOD}:onboarding-information` as const;
/** JSON member name of redirect information. */
export const REDIRECT_KEY = `${MOD}:redirect-information` as const;
/** The only hash identity RFC 8572 defines, in the module-qualified form we normalise to. */
export const SHA_256_IDENTITY = `${MOD}:sha-256`;

/** `image-verification` list entry; `hash-value` is colon-separated hex (yang:hex-string). */
export interface ImageVerification {
  'hash-algorithm': string;
  'hash-value': string;
}

/** `boot-image` container. */
export interface BootImage {
  'os-name'?: string;
  'os-version'?: string;
  'download-uri'?: string[];
  'image-verification'?: ImageVerification[];
}

/** `onboarding-information` container. Binary leaves are base64 strings as in RFC 7951 §6.6. */
export interface OnboardingInformation {
  'boot-image'?: BootImage;
  'configuration-handling'?: 'merge' | 'replace';
  'pre-configuration-script'?: string;
  configuration?: string;
  'post-configuration-script'?: string;
}

/** One `bootstrap-server` of `redirect-information`. `trust-anchor` is a base64 degenerate SignedData. */
export interface BootstrapServer {
  address: string;
  port?: number;
  'trust-anchor'?: string;
}

/** `redirect-information` container. */
export interface RedirectInformation {
  'bootstrap-server': BootstrapServer[];
}

/** Conveyed information as RFC 8572 encodes it in JSON: exactly one of the two members. */
export type ConveyedInformation =
  | { [ONBOARDING_KEY]: OnboardingInformation }
  | { [REDIRECT_KEY]: RedirectInformation };

/** Encodings of conveyed information on the wire. */
export type ConveyedInformationFormat = 'json' | 'xml';

const bad = (msg: string): never => {
  throw new PkiError('PKI_ERR_BAD_CONVEYED_INFO', msg);
};
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX_STRING = /^([0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*)?$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function onlyKeys(o: Record<string, unknown>, allowed: string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) bad(`unknown member '${k}' in ${where}`);
}
function str(v: unknown, where: string): string {
  if (typeof v !== 'string') bad(`${where} must be a string`);
  return v as string;
}
function binary(v: unknown, where: string): string {
  const s = str(v, where);
  if (!B64.test(s)) bad(`${where} must be base64 binary (RFC 7951 §6.6)`);
  return s;
}

/**
 * Validates conveyed information against the YANG module's constraints and
 * returns a normalised copy (hash-algorithm identities module-qualified).
 */
export function validateConveyedInformation(value: unknown): ConveyedInformation {
  if (!isObject(value)) return bad('conveyed information must be a JSON object');
  const keys = Object.keys(value);
  if (keys.length !== 1) bad(`expected exactly one of '${ONBOARDING_KEY}' or '${REDIRECT_KEY}'`);
  if (keys[0] === ONBOARDING_KEY) return { [ONBOARDING_KEY]: validateOnboarding(value[ONBOARDING_KEY]) };
  if (keys[0] === REDIRECT_KEY) return { [REDIRECT_KEY]: validateRedirect(value[REDIRECT_KEY]) };
  return bad(`unknown top-level member '${keys[0]}' (must be module-qualified, RFC 7951 §4)`);
}

function validateOnboarding(v: unknown): OnboardingInformation {
  if (!isObject(v)) return bad('onboarding-information must be an object');
  const where = 'onboarding-information';
  onlyKeys(
    v,
    [
      'boot-image',
      'configuration-handling',
      'pre-configuration-script',
      'configuration',
      'post-configuration-script',
    ],
    where,
  );
  // YANG: the choice is mandatory, so an empty container is not conveyed information.
  if (Object.keys(v).length === 0) bad('onboarding-information is empty');
  const out: OnboardingInformation = {};
  if (v['boot-image'] !== undefined) out['boot-image'] = validateBootImage(v['boot-image']);
  const ch = v['configuration-handling'];
  if (ch !== undefined) {
    if (ch !== 'merge' && ch !== 'replace') bad("configuration-handling must be 'merge' or 'replace'");
    out['configuration-handling'] = ch as 'merge' | 'replace';
  }
  for (const k of ['pre-configuration-script', 'configuration', 'post-configuration-script'] as const) {
    if (v[k] !== undefined) out[k] = binary(v[k], k);
  }
  // YANG must-statements: configuration-handling ⇔ configuration.
  if ((out.configuration === undefined) !== (out['configuration-handling'] === undefined))
    bad('configuration and configuration-handling must appear together');
  return out;
}

function validateBootImage(v: unknown): BootImage {
  if (!isObject(v)) return bad('boot-image must be an object');
  onlyKeys(v, ['os-name', 'os-version', 'download-uri', 'image-verification'], 'boot-image');
  const out: BootImage = {};
  if (v['os-name'] !== undefined) out['os-name'] = str(v['os-name'], 'os-name');
  if (v['os-version'] !== undefined) out['os-version'] = str(v['os-version'], 'os-version');
  if (v['download-uri'] !== undefined) {
    const list = v['download-uri'];
    if (!Array.isArray(list)) bad('download-uri must be an array');
    out['download-uri'] = (list as unknown[]).map((u) => {
      const s = str(u, 'download-uri');
      if (!/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(s)) bad(`download-uri '${s}' is not a URI`);
      return s;
    });
  }
  if (v['image-verification'] !== undefined) {
    const list = v['image-verification'];
    if (!Array.isArray(list)) bad('image-verification must be an array');
    const seen = new Set<string>();
    out['image-verification'] = (list as unknown[]).map((e) => {
      if (!isObject(e)) return bad('image-verification entry must be an object');
      onlyKeys(e, ['hash-algorithm', 'hash-value'], 'image-verification');
      const alg = str(e['hash-algorithm'], 'hash-algorithm');
      // RFC 7951 §6.8: the identity may be bare (same module) or module-qualified.
      if (alg !== 'sha-256' && alg !== SHA_256_IDENTITY)
        bad(`unknown hash-algorithm '${alg}' (only sha-256 is defined)`);
      if (seen.has(SHA_256_IDENTITY)) bad('duplicate image-verification key');
      seen.add(SHA_256_IDENTITY);
      const hv = str(e['hash-value'], 'hash-value');
      if (!HEX_STRING.test(hv))
        bad('hash-value must be colon-separated hex (yang:hex-string), e.g. "ba:ec:…"');
      return { 'hash-algorithm': SHA_256_IDENTITY, 'hash-value': hv };
    });
    // YANG: must '../download-uri'.
    if (!out['download-uri']) bad('image-verification requires download-uri');
  }
  return out;
}

function validateRedirect(v: unknown): RedirectInformation {
  if (!isObject(v)) return bad('redirect-information must be an object');
  onlyKeys(v, ['bootstrap-server'], 'redirect-information');
  const list = v['bootstrap-server'];
  if (!Array.isArray(list) || list.length === 0)
    bad('redirect-information needs at least one bootstrap-server');
  const seen = new Set<string>();
  return {
    'bootstrap-server': (list as unknown[]).map((e) => {
      if (!isObject(e)) return bad('bootstrap-server entry must be an object');
      onlyKeys(e, ['address', 'port', 'trust-anchor'], 'bootstrap-server');
      const address = str(e.address, 'bootstrap-server address');
      if (address === '' || seen.has(address))
        bad(`bootstrap-server address '${address}' empty or duplicated`);
      seen.add(address);
      const out: BootstrapServer = { address };
      if (e.port !== undefined) {
        if (!Number.isInteger(e.port) || (e.port as number) < 0 || (e.port as number) > 65535)
          bad('port must be an integer 0..65535 (inet:port-number)');
        out.port = e.port as number;
      }
      if (e['trust-anchor'] !== undefined) out['trust-anchor'] = binary(e['trust-anchor'], 'trust-anchor');
      return out;
    }),
  };
}

// --- XML ---------------------------------------------------------------

function leafText(el: XmlElement, where: string): string {
  if (el.children.length > 0)
    bad(
      `${where} must be a leaf, found child element <${el.children[0]!.name}>${
        ['configuration', 'pre-configuration-script', 'post-configuration-script'].includes(el.name)
          ? ' (binary leaves carry base64 text, not embedded XML)'
          : ''
      }`,
    );
  if (Object.keys(el.attributes).length > 0) bad(`${where}: attributes are not allowed`);
  return el.text;
}

function groupChildren(
  el: XmlElement,
  allowed: string[],
  lists: string[],
  where: string,
): Map<string, XmlElement[]> {
  if (el.text.trim() !== '') bad(`${where} must not contain text`);
  const out = new Map<string, XmlElement[]>();
  for (const c of el.children) {
    if (c.ns !== CONVEYED_INFO_NS) bad(`<${c.name}> in ${where} is not in namespace ${CONVEYED_INFO_NS}`);
    if (!allowed.includes(c.name)) bad(`unknown element <${c.name}> in ${where}`);
    const arr = out.get(c.name) ?? [];
    if (arr.length > 0 && !lists.includes(c.name)) bad(`<${c.name}> appears more than once in ${where}`);
    arr.push(c);
    out.set(c.name, arr);
  }
  return out;
}

function identityFromXml(el: XmlElement): string {
  const text = leafText(el, 'hash-algorithm').trim();
  const [prefix, local] = text.includes(':') ? text.split(':', 2) : ['', text];
  // RFC 7950 §9.10.3: an identityref's prefix (or the default namespace) must resolve to the defining module.
  const ns = el.scope.get(prefix!);
  if (ns === undefined) bad(`hash-algorithm '${text}': prefix '${prefix}' is not bound`);
  if (ns !== CONVEYED_INFO_NS) bad(`hash-algorithm '${text}' is not an ${MOD} identity`);
  return local === 'sha-256' ? SHA_256_IDENTITY : `${MOD}:${local}`;
}

function xmlToJson(root: XmlElement): unknown {
  if (root.ns !== CONVEYED_INFO_NS) bad(`root element must be in namespace ${CONVEYED_INFO_NS}`);
  if (root.name === 'onboarding-information') {
    const g = groupChildren(
      root,
      [
        'boot-image',
        'configuration-handling',
        'pre-configuration-script',
        'configuration',
        'post-configuration-script',
      ],
      [],
      'onboarding-information',
    );
    const o: Record<string, unknown> = {};
    for (const [name, [el]] of g) {
      if (name !== 'boot-image') {
        o[name] = leafText(el!, name).trim();
        continue;
      }
      const b = groupChildren(
        el!,
        ['os-name', 'os-version', 'download-uri', 'image-verification'],
        ['download-uri', 'image-verification'],
        'boot-image',
      );
      const bi: Record<string, unknown> = {};
      for (const [bn, els] of b) {
        if (bn === 'download-uri') bi[bn] = els.map((e) => leafText(e, bn).trim());
        else if (bn === 'image-verification')
          bi[bn] = els.map((e) => {
            const iv = groupChildren(e, ['hash-algorithm', 'hash-value'], [], bn);
            const entry: Record<string, unknown> = {};
            const ha = iv.get('hash-algorithm')?.[0];
            const hv = iv.get('hash-value')?.[0];
            if (ha) entry['hash-algorithm'] = identityFromXml(ha);
            if (hv) entry['hash-value'] = leafText(hv, 'hash-value').trim();
            return entry;
          });
        else bi[bn] = leafText(els[0]!, bn);
      }
      o[name] = bi;
    }
    return { [ONBOARDING_KEY]: o };
  }
  if (root.name === 'redirect-information') {
    const g = groupChildren(root, ['bootstrap-server'], ['bootstrap-server'], 'redirect-information');
    const servers = (g.get('bootstrap-server') ?? []).map((s) => {
      const f = groupChildren(s, ['address', 'port', 'trust-anchor'], [], 'bootstrap-server');
      const e: Record<string, unknown> = {};
      for (const [n, [el]] of f) {
        const t = leafText(el!, n).trim();
        if (n === 'port') {
          if (!/^\d{1,5}$/.test(t)) bad(`port '${t}' is not a number`);
          e[n] = Number(t);
        } else e[n] = t;
      }
      return e;
    });
    return { [REDIRECT_KEY]: { 'bootstrap-server': servers } };
  }
  return bad(`unknown root element <${root.name}> (expected onboarding-information or redirect-information)`);
}

function jsonToXml(info: ConveyedInformation): string {
  const el = (name: string, body: string, attrs = '') => `<${name}${attrs}>${body}</${name}>`;
  const leaf = (name: string, v: string | number | undefined) =>
    v === undefined ? '' : el(name, escapeXml(String(v)));
  if (ONBOARDING_KEY in info) {
    const o = info[ONBOARDING_KEY];
    const b = o['boot-image'];
    const boot = b
      ? el(
          'boot-image',
          leaf('os-name', b['os-name']) +
            leaf('os-version', b['os-version']) +
            (b['download-uri'] ?? []).map((u) => leaf('download-uri', u)).join('') +
            (b['image-verification'] ?? [])
              .map((iv) =>
                el(
                  'image-verification',
                  // The identity prefix is bound explicitly: strict validators (libyang) require it.
                  el('hash-algorithm', 'ci:sha-256', ` xmlns:ci="${CONVEYED_INFO_NS}"`) +
                    leaf('hash-value', iv['hash-value']),
                ),
              )
              .join(''),
        )
      : '';
    return el(
      'onboarding-information',
      boot +
        leaf('configuration-handling', o['configuration-handling']) +
        leaf('pre-configuration-script', o['pre-configuration-script']) +
        leaf('configuration', o.configuration) +
        leaf('post-configuration-script', o['post-configuration-script']),
      ` xmlns="${CONVEYED_INFO_NS}"`,
    );
  }
  const r = info[REDIRECT_KEY];
  return el(
    'redirect-information',
    r['bootstrap-server']
      .map((s) =>
        el(
          'bootstrap-server',
          leaf('address', s.address) + leaf('port', s.port) + leaf('trust-anchor', s['trust-anchor']),
        ),
      )
      .join(''),
    ` xmlns="${CONVEYED_INFO_NS}"`,
  );
}

// --- bytes -------------------------------------------------------------

/** Encodes conveyed information as UTF-8 JSON (RFC 7951) or XML (RFC 7950 §7) after validating it. */
export function encodeConveyedInformation(
  info: ConveyedInformation,
  format: ConveyedInformationFormat = 'json',
): Uint8Array {
  const valid = validateConveyedInformation(info);
  const text =
    format === 'xml'
      ? `<?xml version="1.0" encoding="UTF-8"?>\n${jsonToXml(valid)}\n`
      : JSON.stringify(valid);
  return new TextEncoder().encode(text);
}

/**
 * Decodes and validates conveyed information bytes. `format` 'auto' (for
 * id-data content, RFC 8572 §3.1) picks XML when the text starts with '<'.
 * XML decodes to the same JSON shape.
 */
export function decodeConveyedInformation(
  bytes: Uint8Array,
  format: ConveyedInformationFormat | 'auto' = 'auto',
  xmlLimits?: Partial<XmlLimits>,
): ConveyedInformation {
  const text = guard('PKI_ERR_BAD_CONVEYED_INFO', 'conveyed information is not UTF-8', () =>
    new TextDecoder('utf-8', { fatal: true }).decode(bytes),
  );
  const fmt = format === 'auto' ? (/^\s*</.test(text.replace(/^\uFEFF/, '')) ? 'xml' : 'json') : format;
  if (fmt === 'json') {
    const value = guard('PKI_ERR_BAD_CONVEYED_INFO', 'conveyed information is not valid JSON', () =>
      JSON.parse(text),
    );
    return validateConveyedInformation(value);
  }
  let root: XmlElement;
  try {
    root = parseXml(text, xmlLimits);
  } catch (err) {
    if (err instanceof XmlSyntaxError || err instanceof RangeError)
      bad(`conveyed information is not well-formed XML: ${err.message}`);
    throw err;
  }
  return validateConveyedInformation(xmlToJson(root!));
}

/** The CMS content type for a format (RFC 8572 §3.1). */
export function conveyedInformationContentType(format: ConveyedInformationFormat): string {
  return format === 'xml' ? ContentTypeOid.sztpConveyedInfoXml : ContentTypeOid.sztpConveyedInfoJson;
}

/** Unsigned conveyed information: a ContentInfo of id-ct-sztpConveyedInfoJSON/XML (RFC 8572 §3.1). */
export function createUnsignedConveyedInformation(
  info: ConveyedInformation,
  format: ConveyedInformationFormat = 'json',
): Uint8Array {
  return encodeOctetContentInfo(
    conveyedInformationContentType(format),
    encodeConveyedInformation(info, format),
  );
}

/** Options for {@link signConveyedInformation}. */
export interface SignConveyedInformationOptions {
  information: ConveyedInformation;
  format?: ConveyedInformationFormat;
  /** The owner certificate's key; `certificates[0]` must be the owner certificate. */
  signer: Signer;
  /** Adds a signingTime signed attribute. */
  signingTime?: Date;
}

/**
 * Signed conveyed information: a CMS SignedData over the encoded information,
 * eContentType id-ct-sztpConveyedInfoJSON/XML, signed by the owner
 * certificate (RFC 8572 §3.1). The owner certificate itself travels in the
 * separate owner-certificate artifact, so it is not embedded here.
 */
export function signConveyedInformation(opts: SignConveyedInformationOptions): Promise<Uint8Array> {
  const format = opts.format ?? 'json';
  return signCms({
    content: encodeConveyedInformation(opts.information, format),
    contentType: conveyedInformationContentType(format),
    signer: opts.signer,
    includeCertificates: false,
    ...(opts.signingTime ? { signingTime: opts.signingTime } : {}),
  });
}
