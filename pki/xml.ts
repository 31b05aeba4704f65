/**
 * A small, strict XML 1.0 reader for the RESTCONF XML encoding of conveyed
 * information (RFC 7950 §7, RFC 8040 §5.3): elements, attributes, namespaces,
 * text, comments, CDATA. No DTDs, entities beyond the five predefined ones and
 * character references, or processing instructions other than the XML
 * declaration — those are rejected, not skipped, so nothing is fetched or expanded.
 */

/**
 * Prefix → namespace URI bindings in scope at an element ('' is the default
 * namespace). Scopes are linked, not copied: an element that declares nothing
 * shares its parent's scope, so memory stays linear in the input however many
 * declarations and children a document has.
 */
export class NamespaceScope {
  constructor(
    private readonly parent: NamespaceScope | undefined,
    private readonly own: ReadonlyMap<string, string> | undefined,
  ) {}

  /** The namespace URI bound to `prefix`, or undefined. Walks at most `maxDepth` scopes. */
  get(prefix: string): string | undefined {
    for (let s: NamespaceScope | undefined = this; s; s = s.parent) {
      const v = s.own?.get(prefix);
      if (v !== undefined) return v;
    }
    return undefined;
  }
}

/** A parsed element. */
export interface XmlElement {
  /** Local name. */
  name: string;
  /** Namespace URI (resolved), or undefined when unqualified. */
  ns: string | undefined;
  /** Attributes other than namespace declarations, by qualified name. */
  attributes: Record<string, string>;
  /** Namespace bindings in scope at this element. */
  scope: NamespaceScope;
  children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
}

/**
 * Per-document caps. Every limit is checked while reading, before the work it
 * bounds, so a hostile document costs time and memory linear in its size up to
 * the first limit it crosses.
 */
export interface XmlLimits {
  /** Characters in the whole document. */
  maxLength: number;
  /** Element nesting. */
  maxDepth: number;
  /** Elements in the document. */
  maxElements: number;
  /** Attributes (namespace declarations included) on one element. */
  maxAttributesPerElement: number;
  /** Attributes (namespace declarations included) in the document. */
  maxAttributes: number;
  /** Namespace declarations (`xmlns`, `xmlns:p`) in the document. */
  maxNamespaceDeclarations: number;
  /** Characters of decoded text and attribute values in the document. */
  maxTextLength: number;
}

/**
 * Defaults sized for RFC 8572: RPC inputs carry a handful of leaves (report-progress
 * at most a 64 KiB message, some SSH host keys and trust-anchor bags), and conveyed
 * information a redirect list or onboarding information whose scripts and
 * configuration are base64 leaves. 8 MiB of text covers large configurations; the
 * structural caps are far above any real document and far below what hurts.
 */
export const XML_LIMITS: Readonly<XmlLimits> = Object.freeze({
  maxLength: 16 * 1024 * 1024,
  maxDepth: 32,
  maxElements: 10_000,
  maxAttributesPerElement: 32,
  maxAttributes: 10_000,
  maxNamespaceDeclarations: 256,
  maxTextLength: 12 * 1024 * 1024,
});

/** Thrown by {@link parseXml}; callers map it to their own coded error. */
export class XmlSyntaxError extends Error {
  /** The limit that was crossed, when the document was refused for its shape rather than its syntax. */
  readonly limit: keyof XmlLimits | undefined;

  constructor(message: string, pos: number, limit?: keyof XmlLimits) {
    super(`${message} at offset ${pos}`);
    this.name = 'XmlSyntaxError';
    this.limit = limit;
  }
}

const NAME = /[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?/y;
const NAMED_ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const EMPTY_SCOPE = new NamespaceScope(undefined, undefined);

/**
 * Parses one XML document with a single root element. Linear in time and memory:
 * namespace scopes are linked (see {@link NamespaceScope}), duplicate attributes
 * are found with a set, and `limits` (defaults {@link XML_LIMITS}) cap every
 * count a hostile document could inflate.
 */
export function parseXml(input: string, limits: Partial<XmlLimits> = {}): XmlElement {
  const lim: XmlLimits = { ...XML_LIMITS, ...limits };
  let pos = 0;
  let elements = 0;
  let attributeCount = 0;
  let nsDeclarations = 0;
  let textLength = 0;
  const fail = (msg: string): never => {
    throw new XmlSyntaxError(msg, pos);
  };
  const over = (limit: keyof XmlLimits, what: string): never => {
    throw new XmlSyntaxError(`more than ${lim[limit]} ${what} (${limit} limit)`, pos, limit);
  };
  if (input.length > lim.maxLength) over('maxLength', 'characters');
  const addText = (n: number) => {
    textLength += n;
    if (textLength > lim.maxTextLength) over('maxTextLength', 'characters of text');
  };
  const ws = () => {
    for (;;) {
      const c = input.charCodeAt(pos);
      if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) pos++;
      else return;
    }
  };
  const name = (): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(input);
    if (!m) fail('expected a name');
    pos += m![0].length;
    return m![0];
  };
  const decodeText = (raw: string): string => {
    if (!raw.includes('&')) return raw;
    return raw.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]{2,4});|&/g, (all, ref: string | undefined) => {
      if (!ref) return fail('bare & or malformed reference in text');
      if (ref[0] === '#') {
        const cp = ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
        if (!(cp > 0 && cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff))
          return fail(`bad character reference ${all}`);
        return String.fromCodePoint(cp);
      }
      return NAMED_ENTITIES[ref] ?? fail(`unknown entity ${all} (no DTDs here)`);
    });
  };
  const misc = () => {
    for (;;) {
      ws();
      if (input.startsWith('<!--', pos)) skipComment();
      else if (input.startsWith('<?', pos)) fail('processing instructions are not accepted');
      else if (input.startsWith('<!', pos)) fail('DTDs and declarations are not accepted');
      else return;
    }
  };
  const skipComment = () => {
    const end = input.indexOf('-->', pos + 4);
    if (end < 0) fail('unterminated comment');
    pos = end + 3;
  };
  const element = (parentScope: NamespaceScope, depth: number): XmlElement => {
    if (depth >= lim.maxDepth) over('maxDepth', 'levels of nesting');
    if (++elements > lim.maxElements) over('maxElements', 'elements');
    if (input[pos] !== '<') fail('expected <');
    pos++;
    const qname = name();
    let own: Map<string, string> | undefined;
    // No prototype: an attribute named __proto__ is just a name.
    const attributes: Record<string, string> = Object.create(null);
    const seen = new Set<string>();
    for (;;) {
      const before = pos;
      ws();
      if (input.startsWith('/>', pos) || input[pos] === '>') break;
      if (pos === before) fail('expected whitespace before attribute');
      const an = name();
      if (seen.has(an)) fail(`duplicate attribute ${an}`);
      seen.add(an);
      if (seen.size > lim.maxAttributesPerElement)
        over('maxAttributesPerElement', 'attributes on one element');
      if (++attributeCount > lim.maxAttributes) over('maxAttributes', 'attributes');
      ws();
      if (input[pos] !== '=') fail('expected = after attribute name');
      pos++;
      ws();
      const q = input[pos];
      if (q !== '"' && q !== "'") fail('attribute value must be quoted');
      const end = input.indexOf(q!, pos + 1);
      if (end < 0) fail('unterminated attribute value');
      const v = input.slice(pos + 1, end);
      if (v.includes('<')) fail('< in attribute value');
      addText(v.length);
      const value = decodeText(v);
      pos = end + 1;
      if (an === 'xmlns' || an.startsWith('xmlns:')) {
        if (++nsDeclarations > lim.maxNamespaceDeclarations)
          over('maxNamespaceDeclarations', 'namespace declarations');
        own ??= new Map();
        own.set(an === 'xmlns' ? '' : an.slice(6), value);
      } else attributes[an] = value;
    }
    const scope = own ? new NamespaceScope(parentScope, own) : parentScope;
    const colon = qname.indexOf(':');
    const prefix = colon < 0 ? '' : qname.slice(0, colon);
    const local = colon < 0 ? qname : qname.slice(colon + 1);
    const ns = scope.get(prefix);
    if (prefix && ns === undefined) fail(`unbound namespace prefix '${prefix}'`);
    const el: XmlElement = {
      name: local,
      ns: ns || undefined,
      attributes: { ...attributes },
      scope,
      children: [],
      text: '',
    };
    if (input.startsWith('/>', pos)) {
      pos += 2;
      return el;
    }
    pos++; // '>'
    const texts: string[] = [];
    for (;;) {
      if (pos >= input.length) fail(`unterminated element <${qname}>`);
      if (input.startsWith('</', pos)) {
        pos += 2;
        const closing = name();
        if (closing !== qname) fail(`</${closing}> does not close <${qname}>`);
        ws();
        if (input[pos] !== '>') fail('expected >');
        pos++;
        if (texts.length) el.text = texts.length === 1 ? texts[0]! : texts.join('');
        return el;
      }
      if (input.startsWith('<!--', pos)) skipComment();
      else if (input.startsWith('<![CDATA[', pos)) {
        const end = input.indexOf(']]>', pos);
        if (end < 0) fail('unterminated CDATA');
        addText(end - pos - 9);
        texts.push(input.slice(pos + 9, end));
        pos = end + 3;
      } else if (input.startsWith('<?', pos) || input.startsWith('<!', pos))
        fail('unexpected markup declaration');
      else if (input[pos] === '<') el.children.push(element(scope, depth + 1));
      else {
        const next = input.indexOf('<', pos);
        const raw = input.slice(pos, next < 0 ? input.length : next);
        if (raw.includes(']]>')) fail(']]> in text');
        addText(raw.length);
        texts.push(decodeText(raw));
        pos += raw.length;
      }
    }
  };
  if (input.charCodeAt(0) === 0xfeff) pos = 1;
  if (input.startsWith('<?xml', pos)) {
    const end = input.indexOf('?>', pos);
    if (end < 0) fail('unterminated XML declaration');
    pos = end + 2;
  }
  misc();
  const root = element(EMPTY_SCOPE, 0);
  misc();
  if (pos !== input.length) fail('content after the root element');
  return root;
}

/** Escapes text for element content or a double-quoted attribute. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
