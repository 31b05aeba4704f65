/**
 * A small, strict XML 1.0 reader for the RESTCONF XML encoding of conveyed
 * information (RFC 7950 §7, RFC 8040 §5.3): elements, attributes, namespaces,
 * text, comments, CDATA. No DTDs, entities beyond the five predefined ones and
 * character references, or processing instructions other than the XML
 * declaration — those are rejected, not skipped, so nothing is fetched or expanded.
 */

/** A parsed element. */
export interface XmlElement {
  /** Local name. */
  name: string;
  /** Namespace URI (resolved), or undefined when unqualified. */
  ns: string | undefined;
  /** Attributes other than namespace declarations, by qualified name. */
  attributes: Record<string, string>;
  /** Prefix → namespace URI in scope at this element ('' is the default namespace). */
  scope: Map<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
}

/** Thrown by {@link parseXml}; callers map it to their own coded error. */
export class XmlSyntaxError extends Error {
  constructor(message: string, pos: number) {
    super(`${message} at offset ${pos}`);
    this.name = 'XmlSyntaxError';
  }
}

const NAME = /[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?/y;
const MAX_DEPTH = 64;

/** Per-document caps for untrusted input (each bounds work before any trust decision). */
export interface XmlLimits {
  /** Characters in the document. */
  maxLength?: number;
  /** Elements in the document. */
  maxElements?: number;
  /** Attributes in the document, namespace declarations included. */
  maxAttributes?: number;
  /** `xmlns` / `xmlns:p` declarations in the document. */
  maxNamespaceDeclarations?: number;
}

/** Parses one XML document with a single root element, within `limits` when given. */
export function parseXml(input: string, limits: XmlLimits = {}): XmlElement {
  let pos = 0;
  const fail = (msg: string): never => {
    throw new XmlSyntaxError(msg, pos);
  };
  const count = { elements: 0, attributes: 0, ns: 0 };
  const over = (what: keyof typeof count, max: number | undefined) => {
    if (max !== undefined && ++count[what] > max) fail(`more than ${max} ${what} (limit)`);
  };
  if (limits.maxLength !== undefined && input.length > limits.maxLength)
    fail(`document longer than ${limits.maxLength} characters (limit)`);
  const ws = () => {
    while (pos < input.length && /[ \t\r\n]/.test(input[pos]!)) pos++;
  };
  const name = (): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(input);
    if (!m) fail('expected a name');
    pos += m![0].length;
    return m![0];
  };
  const decodeText = (raw: string): string =>
    raw.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);|&/g, (all, ref: string | undefined) => {
      if (!ref) return fail('bare & in text');
      if (ref[0] === '#') {
        const cp = ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
        if (!(cp > 0 && cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff))
          return fail(`bad character reference ${all}`);
        return String.fromCodePoint(cp);
      }
      const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
      return named[ref] ?? fail(`unknown entity ${all} (no DTDs here)`);
    });
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
  const element = (parentScope: Map<string, string>, depth: number): XmlElement => {
    if (depth > MAX_DEPTH) fail('elements nested too deeply');
    over('elements', limits.maxElements);
    if (input[pos] !== '<') fail('expected <');
    pos++;
    const qname = name();
    const rawAttrs: [string, string][] = [];
    for (;;) {
      const before = pos;
      ws();
      if (input.startsWith('/>', pos) || input[pos] === '>') break;
      if (pos === before) fail('expected whitespace before attribute');
      const an = name();
      over('attributes', limits.maxAttributes);
      if (an === 'xmlns' || an.startsWith('xmlns:')) over('ns', limits.maxNamespaceDeclarations);
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
      if (rawAttrs.some(([n]) => n === an)) fail(`duplicate attribute ${an}`);
      rawAttrs.push([an, decodeText(v)]);
      pos = end + 1;
    }
    const scope = new Map(parentScope);
    const attributes: Record<string, string> = {};
    for (const [an, v] of rawAttrs) {
      if (an === 'xmlns') scope.set('', v);
      else if (an.startsWith('xmlns:')) scope.set(an.slice(6), v);
      else attributes[an] = v;
    }
    const [prefix, local] = qname.includes(':') ? qname.split(':') : ['', qname];
    const ns = scope.get(prefix!);
    if (prefix && ns === undefined) fail(`unbound namespace prefix '${prefix}'`);
    const el: XmlElement = { name: local!, ns: ns || undefined, attributes, scope, children: [], text: '' };
    if (input.startsWith('/>', pos)) {
      pos += 2;
      return el;
    }
    pos++; // '>'
    for (;;) {
      if (pos >= input.length) fail(`unterminated element <${qname}>`);
      if (input.startsWith('</', pos)) {
        pos += 2;
        const closing = name();
        if (closing !== qname) fail(`</${closing}> does not close <${qname}>`);
        ws();
        if (input[pos] !== '>') fail('expected >');
        pos++;
        return el;
      }
      if (input.startsWith('<!--', pos)) skipComment();
      else if (input.startsWith('<![CDATA[', pos)) {
        const end = input.indexOf(']]>', pos);
        if (end < 0) fail('unterminated CDATA');
        el.text += input.slice(pos + 9, end);
        pos = end + 3;
      } else if (input.startsWith('<?', pos) || input.startsWith('<!', pos))
        fail('unexpected markup declaration');
      else if (input[pos] === '<') el.children.push(element(scope, depth + 1));
      else {
        const next = input.indexOf('<', pos);
        const raw = input.slice(pos, next < 0 ? input.length : next);
        if (raw.includes(']]>')) fail(']]> in text');
        el.text += decodeText(raw);
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
  const root = element(new Map(), 0);
  misc();
  if (pos !== input.length) fail('content after the root element');
  return root;
}

/** Escapes text for element content or a double-quoted attribute. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
