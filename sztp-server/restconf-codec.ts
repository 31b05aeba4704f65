/**
 * RESTCONF (RFC 8040) encoding of the two RFC 8572 RPCs in JSON (RFC 7951)
 * and XML (RFC 7950 §7), and of `ietf-restconf:errors`. Input is normalised
 * for agents found in the field (the OPI sztp-agent sends `"nonce": ""` and
 * empty `ssh-host-keys`/`trust-anchor-certs` containers): those are dropped and
 * named in the input's `offSchema`, and the bootstrap service accepts them only
 * from devices on an `opi-agent` profile. Every string leaf is refused when the
 * database could not store it (U+0000, a lone surrogate).
 */
import {
  escapeXml,
  PROGRESS_TYPES,
  type ProgressType,
  parseXml,
  type XmlElement,
  type XmlLimits,
  XmlSyntaxError,
} from '../pki/index.js';
import { unstorableReason } from '../db/index.js';
import { SZTP_ERRORS, SztpError } from './errors.js';

/** The bootstrap-server module's namespace and JSON module name. */
export const SZTP_SERVER_NS = 'urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server';
export const SZTP_SERVER_MOD = 'ietf-sztp-bootstrap-server';
const RESTCONF_NS = 'urn:ietf:params:xml:ns:yang:ietf-restconf';

/** Wire encodings RESTCONF offers here. */
export type Encoding = 'json' | 'xml';
export const MEDIA_TYPE: Record<Encoding, string> = {
  json: 'application/yang-data+json',
  xml: 'application/yang-data+xml',
};

export { PROGRESS_TYPES, type ProgressType } from '../pki/index.js';

/** get-bootstrapping-data input (RFC 8572 §7, all optional). */
export interface GetBootstrappingDataInput {
  signedDataPreferred: boolean;
  hwModel?: string;
  osName?: string;
  osVersion?: string;
  /** 16..32 octets. */
  nonce?: Uint8Array;
  /** Off-schema shapes the OPI sztp-agent sends that were dropped (accepted only for `opi-agent` profiles). */
  offSchema?: string[];
}

/** One SSH host key as reported on bootstrap-complete. */
export interface SshHostKey {
  algorithm: string;
  /** base64 of the RFC 4253 §6.6 key blob. */
  keyData: string;
}

/** report-progress input. */
export interface ReportProgressInput {
  progressType: ProgressType;
  message?: string;
  sshHostKeys?: SshHostKey[];
  /** base64 degenerate SignedData, one chain each. */
  trustAnchorCerts?: string[];
  /** Off-schema shapes the OPI sztp-agent sends that were dropped (accepted only for `opi-agent` profiles). */
  offSchema?: string[];
}

/** get-bootstrapping-data output; binary members are DER bytes. */
export interface GetBootstrappingDataOutput {
  reportingLevel?: 'minimal' | 'verbose';
  conveyedInformation: Uint8Array;
  ownerCertificate?: Uint8Array;
  ownershipVoucher?: Uint8Array;
  /** Not encoded: the job trace handed to the device in a `traceparent` response header (job-trace.ts). */
  traceparent?: string;
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const invalid = (msg: string, path?: string): never => {
  throw new SztpError('SZTP_ERR_INVALID_VALUE', msg, path);
};

function b64(value: unknown, path: string): string {
  if (typeof value !== 'string') invalid(`${path} must be a base64 string`, path);
  const s = (value as string).replace(/\s+/g, '');
  if (!B64.test(s)) invalid(`${path} is not base64 (RFC 7951 §6.6)`, path);
  return s;
}

function str(value: unknown, path: string, max = 1024): string {
  if (typeof value !== 'string') invalid(`${path} must be a string`, path);
  if ((value as string).length > max) invalid(`${path} is longer than ${max} characters`, path);
  const bad = unstorableReason(value as string);
  if (bad) throw new SztpError('SZTP_ERR_INVALID_TEXT', `${path} ${bad}`, path);
  return value as string;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isEmptyContainer(v: unknown): boolean {
  return v === null || (isObj(v) && Object.keys(v).length === 0) || (Array.isArray(v) && v.length === 0);
}

/** Finds the RPC input object in a JSON body: `{"<module>:input": {...}}`; an empty body means no input. */
function jsonInput(body: unknown, rpc: string): Record<string, unknown> {
  if (body === undefined || body === null || (typeof body === 'string' && body.trim() === '')) return {};
  if (!isObj(body)) return invalid('the body must be a JSON object');
  const keys = Object.keys(body);
  if (keys.length === 0) return {};
  const key = keys.find((k) => k === `${SZTP_SERVER_MOD}:input` || k === 'input');
  if (!key || keys.length !== 1) invalid(`expected {"${SZTP_SERVER_MOD}:input": {…}} for ${rpc}`);
  const input = (body as Record<string, unknown>)[key as string];
  if (!isObj(input)) invalid(`${SZTP_SERVER_MOD}:input must be an object`);
  return input as Record<string, unknown>;
}

/** Strips a `module:` prefix from a JSON member name (RFC 7951 §4: only needed where the namespace changes). */
function local(name: string): string {
  const i = name.indexOf(':');
  return i >= 0 && name.slice(0, i) === SZTP_SERVER_MOD ? name.slice(i + 1) : name;
}

/** Parses get-bootstrapping-data input in JSON. */
export function parseGetBootstrappingDataJson(body: unknown): GetBootstrappingDataInput {
  const input = jsonInput(body, 'get-bootstrapping-data');
  const out: GetBootstrappingDataInput = { signedDataPreferred: false };
  for (const [rawKey, v] of Object.entries(input)) {
    const key = local(rawKey);
    switch (key) {
      case 'signed-data-preferred':
        // RFC 7951 §6.9: an empty leaf is [null].
        if (!(Array.isArray(v) && v.length === 1 && v[0] === null) && v !== null) {
          invalid('signed-data-preferred is an empty leaf: encode it as [null]', 'signed-data-preferred');
        }
        out.signedDataPreferred = true;
        break;
      case 'hw-model':
        out.hwModel = str(v, key);
        break;
      case 'os-name':
        out.osName = str(v, key);
        break;
      case 'os-version':
        out.osVersion = str(v, key);
        break;
      case 'nonce': {
        if (v === '') {
          // OPI sztp-agent sends "nonce": "" — treated as absent, for opi-agent profiles only.
          out.offSchema = [...(out.offSchema ?? []), 'empty nonce'];
          break;
        }
        const n = Buffer.from(b64(v, key), 'base64');
        if (n.length < 16 || n.length > 32) invalid(`nonce must be 16..32 octets, got ${n.length}`, key);
        out.nonce = new Uint8Array(n);
        break;
      }
      default:
        // RFC 9646 csr-support etc. live in other modules; anything else is unknown.
        invalid(`unknown input node ${rawKey}`, rawKey);
    }
  }
  return out;
}

/** How an empty ssh-host-keys/trust-anchor-certs was written: `{}` (a valid empty container) or another form. */
type EmptyForm = 'container' | 'other';

function emptyForm(v: unknown): EmptyForm {
  return isObj(v) && Object.keys(v).length === 0 ? 'container' : 'other';
}

function parseProgressCommon(fields: {
  progressType?: unknown;
  message?: unknown;
  sshHostKeys?: unknown;
  trustAnchorCerts?: unknown;
  emptySshHostKeys?: EmptyForm;
  emptyTrustAnchorCerts?: EmptyForm;
}): ReportProgressInput {
  const pt = fields.progressType;
  if (pt === undefined) return invalid('progress-type is mandatory', 'progress-type');
  if (typeof pt !== 'string' || !(PROGRESS_TYPES as readonly string[]).includes(pt)) {
    return invalid(`progress-type ${JSON.stringify(pt)} is not one of the module's enums`, 'progress-type');
  }
  const out: ReportProgressInput = { progressType: pt as ProgressType };
  if (fields.message !== undefined) out.message = str(fields.message, 'message', 64 * 1024);
  // The OPI sztp-agent always sends both containers, empty on every report but the last
  // (Go's omitempty does not omit a struct); the module allows them only on
  // bootstrap-complete, and never as null, [] or an empty list.
  for (const [form, name] of [
    [fields.emptySshHostKeys, 'ssh-host-keys'],
    [fields.emptyTrustAnchorCerts, 'trust-anchor-certs'],
  ] as const) {
    if (form !== undefined && (pt !== 'bootstrap-complete' || form === 'other'))
      out.offSchema = [...(out.offSchema ?? []), `empty ${name}`];
  }
  if (fields.sshHostKeys !== undefined && !isEmptyContainer(fields.sshHostKeys)) {
    if (pt !== 'bootstrap-complete')
      invalid('ssh-host-keys is only allowed with bootstrap-complete', 'ssh-host-keys');
    out.sshHostKeys = fields.sshHostKeys as SshHostKey[];
  }
  if (fields.trustAnchorCerts !== undefined && !isEmptyContainer(fields.trustAnchorCerts)) {
    if (pt !== 'bootstrap-complete')
      invalid('trust-anchor-certs is only allowed with bootstrap-complete', 'trust-anchor-certs');
    out.trustAnchorCerts = fields.trustAnchorCerts as string[];
  }
  return out;
}

/** Parses report-progress input in JSON. */
export function parseReportProgressJson(body: unknown): ReportProgressInput {
  const input = jsonInput(body, 'report-progress');
  const fields: Record<string, unknown> = {};
  for (const [rawKey, v] of Object.entries(input)) {
    const key = local(rawKey);
    switch (key) {
      case 'progress-type':
        fields.progressType = v;
        break;
      case 'message':
        fields.message = v;
        break;
      case 'ssh-host-keys': {
        if (isEmptyContainer(v)) {
          fields.sshHostKeys = [];
          fields.emptySshHostKeys = emptyForm(v);
          break;
        }
        if (!isObj(v)) invalid('ssh-host-keys must be a container', key);
        const list = (v as Record<string, unknown>)['ssh-host-key'];
        if (list === undefined || isEmptyContainer(list)) {
          fields.sshHostKeys = [];
          fields.emptySshHostKeys = 'other';
          break;
        }
        if (!Array.isArray(list) || list.length > 64)
          invalid('ssh-host-keys/ssh-host-key must be a list', 'ssh-host-keys/ssh-host-key');
        fields.sshHostKeys = (list as unknown[]).map((k, i) => {
          const p = `ssh-host-keys/ssh-host-key[${i}]`;
          if (!isObj(k)) return invalid(`${p} must be an object`, p);
          return {
            algorithm: str(k.algorithm, `${p}/algorithm`, 255),
            keyData: b64(k['key-data'], `${p}/key-data`),
          };
        });
        break;
      }
      case 'trust-anchor-certs': {
        if (isEmptyContainer(v)) {
          fields.trustAnchorCerts = [];
          fields.emptyTrustAnchorCerts = emptyForm(v);
          break;
        }
        if (!isObj(v)) invalid('trust-anchor-certs must be a container', key);
        const list = (v as Record<string, unknown>)['trust-anchor-cert'];
        if (list === undefined || isEmptyContainer(list)) {
          fields.trustAnchorCerts = [];
          fields.emptyTrustAnchorCerts = 'other';
          break;
        }
        if (!Array.isArray(list) || list.length > 64)
          invalid(
            'trust-anchor-certs/trust-anchor-cert must be a list',
            'trust-anchor-certs/trust-anchor-cert',
          );
        fields.trustAnchorCerts = (list as unknown[]).map((c, i) =>
          b64(c, `trust-anchor-certs/trust-anchor-cert[${i}]`),
        );
        break;
      }
      default:
        invalid(`unknown input node ${rawKey}`, rawKey);
    }
  }
  return parseProgressCommon(fields);
}

/**
 * Structural caps for RPC input documents (RFC 8572 §7.1/§7.2 inputs are at most four
 * levels deep with a few dozen leaves; report-progress may list some SSH host keys
 * and trust-anchor bags): a document past them is refused before it costs more.
 */
export const RPC_INPUT_XML_LIMITS: Readonly<Partial<XmlLimits>> = Object.freeze({
  maxDepth: 8,
  maxElements: 2_000,
  maxAttributesPerElement: 16,
  maxAttributes: 512,
  maxNamespaceDeclarations: 64,
});

function xmlInput(text: string, rpc: string): XmlElement {
  let root: XmlElement;
  try {
    root = parseXml(text, RPC_INPUT_XML_LIMITS);
  } catch (err) {
    if (err instanceof XmlSyntaxError && err.limit)
      throw new SztpError('SZTP_ERR_TOO_BIG', `XML body: ${err.message}`);
    throw new SztpError('SZTP_ERR_MALFORMED', `XML body: ${(err as Error).message}`);
  }
  if (root.name !== 'input' || root.ns !== SZTP_SERVER_NS) {
    invalid(`expected <input xmlns="${SZTP_SERVER_NS}"> for ${rpc}`);
  }
  for (const c of root.children) {
    if (c.ns !== SZTP_SERVER_NS)
      invalid(`element ${c.name} is not in the ${SZTP_SERVER_MOD} namespace`, c.name);
  }
  return root;
}

/** Parses get-bootstrapping-data input in XML; an empty body means no input. */
export function parseGetBootstrappingDataXml(text: string): GetBootstrappingDataInput {
  if (text.trim() === '') return { signedDataPreferred: false };
  const root = xmlInput(text, 'get-bootstrapping-data');
  const json: Record<string, unknown> = {};
  for (const c of root.children) {
    if (c.name in json) invalid(`${c.name} appears twice`, c.name);
    json[c.name] = c.name === 'signed-data-preferred' ? [null] : c.text.trim();
  }
  return parseGetBootstrappingDataJson({ [`${SZTP_SERVER_MOD}:input`]: json });
}

/** Parses report-progress input in XML. */
export function parseReportProgressXml(text: string): ReportProgressInput {
  const root = xmlInput(text, 'report-progress');
  const fields: Record<string, unknown> = {};
  for (const c of root.children) {
    switch (c.name) {
      case 'progress-type':
      case 'message':
        fields[c.name === 'progress-type' ? 'progressType' : 'message'] = c.text;
        break;
      case 'ssh-host-keys':
        if (c.children.length === 0) fields.emptySshHostKeys = 'container';
        fields.sshHostKeys = c.children.map((k, i) => {
          const p = `ssh-host-keys/ssh-host-key[${i}]`;
          if (k.name !== 'ssh-host-key') return invalid(`unexpected ${k.name} in ssh-host-keys`, p);
          const alg = k.children.find((x) => x.name === 'algorithm');
          const data = k.children.find((x) => x.name === 'key-data');
          return {
            algorithm: str(alg?.text, `${p}/algorithm`, 255),
            keyData: b64(data?.text, `${p}/key-data`),
          };
        });
        break;
      case 'trust-anchor-certs':
        if (c.children.length === 0) fields.emptyTrustAnchorCerts = 'container';
        fields.trustAnchorCerts = c.children.map((t, i) => {
          if (t.name !== 'trust-anchor-cert') return invalid(`unexpected ${t.name} in trust-anchor-certs`);
          return b64(t.text, `trust-anchor-certs/trust-anchor-cert[${i}]`);
        });
        break;
      default:
        invalid(`unknown input node ${c.name}`, c.name);
    }
  }
  return parseProgressCommon(fields);
}

/** Encodes get-bootstrapping-data output. `fields` limits members (the OPI agent accepts only conveyed-information). */
export function encodeGetBootstrappingDataOutput(
  out: GetBootstrappingDataOutput,
  encoding: Encoding,
): string {
  const members: Array<[string, string]> = [];
  if (out.reportingLevel) members.push(['reporting-level', out.reportingLevel]);
  members.push(['conveyed-information', Buffer.from(out.conveyedInformation).toString('base64')]);
  if (out.ownerCertificate)
    members.push(['owner-certificate', Buffer.from(out.ownerCertificate).toString('base64')]);
  if (out.ownershipVoucher)
    members.push(['ownership-voucher', Buffer.from(out.ownershipVoucher).toString('base64')]);
  if (encoding === 'json') {
    return JSON.stringify({ [`${SZTP_SERVER_MOD}:output`]: Object.fromEntries(members) });
  }
  const inner = members.map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`).join('');
  return `<output xmlns="${SZTP_SERVER_NS}">${inner}</output>`;
}

const NO_MEMBER = {};

/**
 * Remembers encoded get-bootstrapping-data outputs by the identity of their parts.
 * The bootstrap service hands out the same cached conveyed information, owner
 * certificate and voucher objects to a device until one of them changes, so a retry
 * storm encodes (base64 + JSON/XML, ~6 KiB) once per device rather than per request.
 * Held weakly: entries go when the service's caches drop the parts.
 */
export class OutputEncoder {
  readonly #byCi = new WeakMap<object, WeakMap<object, Map<string, { owner: object; body: Buffer }>>>();

  encode(out: GetBootstrappingDataOutput, encoding: Encoding): Buffer {
    let byVoucher = this.#byCi.get(out.conveyedInformation);
    if (!byVoucher) {
      byVoucher = new WeakMap();
      this.#byCi.set(out.conveyedInformation, byVoucher);
    }
    const voucher = out.ownershipVoucher ?? NO_MEMBER;
    let entries = byVoucher.get(voucher);
    if (!entries) {
      entries = new Map();
      byVoucher.set(voucher, entries);
    }
    const key = `${encoding}|${out.reportingLevel ?? ''}`;
    const owner = out.ownerCertificate ?? NO_MEMBER;
    const hit = entries.get(key);
    if (hit && hit.owner === owner) return hit.body;
    const body = Buffer.from(encodeGetBootstrappingDataOutput(out, encoding));
    entries.set(key, { owner, body });
    return body;
  }
}

/** Encodes an error as `ietf-restconf:errors` (RFC 8040 §7.1). */
export function encodeErrors(err: SztpError, encoding: Encoding): string {
  const { type, tag } = SZTP_ERRORS[err.code];
  const entry: Record<string, string> = { 'error-type': type, 'error-tag': tag, 'error-app-tag': err.code };
  // error-path is an instance-identifier of a data node; RPC input nodes have none, so the
  // offending node is named in error-message instead.
  entry['error-message'] = err.message;
  if (encoding === 'json') return JSON.stringify({ 'ietf-restconf:errors': { error: [entry] } });
  const inner = Object.entries(entry)
    .map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`)
    .join('');
  return `<errors xmlns="${RESTCONF_NS}"><error>${inner}</error></errors>`;
}
