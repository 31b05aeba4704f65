/**
 * The XML reader against hostile shapes at its real limits: every structural cap
 * is accepted exactly at the limit and refused one past it, refusals name the
 * limit, and parse time grows linearly with the input (a test that fails when
 * it grows faster).
 */
import { describe, expect, it } from 'vitest';
import { parseXml, XML_LIMITS, type XmlLimits, XmlSyntaxError } from '../../pki/index.js';
import { RESTCONF_BODY_LIMIT } from '../../sztp-server/restconf-routes.js';
import { RPC_INPUT_XML_LIMITS } from '../../sztp-server/restconf-codec.js';

const NS = 'urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server';

function refusedFor(input: string, limits: Partial<XmlLimits> | undefined, limit: keyof XmlLimits) {
  let err: unknown;
  try {
    parseXml(input, limits);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(XmlSyntaxError);
  expect((err as XmlSyntaxError).limit).toBe(limit);
}

/** A root element with `decls` namespace declarations and `children` empty children. */
function nsBomb(decls: number, children: number): string {
  const attrs = Array.from({ length: decls }, (_, i) => ` xmlns:p${i}="urn:x:${i}"`).join('');
  return `<input xmlns="${NS}"${attrs}>${'<a/>'.repeat(children)}</input>`;
}

function manyAttributes(n: number): string {
  return `<input xmlns="${NS}" ${Array.from({ length: n }, (_, i) => `a${i}="v"`).join(' ')}/>`;
}

function nested(depth: number): string {
  return `${'<a>'.repeat(depth)}${'</a>'.repeat(depth)}`;
}

describe('hostile shapes at the RESTCONF body limit (RPC input limits)', () => {
  const limit = RESTCONF_BODY_LIMIT;
  /** An input element holding as many `child(i)` as fit in the body limit. */
  const fill = (child: (i: number) => string): string => {
    const parts: string[] = [];
    let size = `<input xmlns="${NS}"></input>`.length;
    for (let i = 0; ; i++) {
      const c = child(i);
      if (size + c.length > limit) break;
      parts.push(c);
      size += c.length;
    }
    const doc = `<input xmlns="${NS}">${parts.join('')}</input>`;
    expect(doc.length).toBeGreaterThan(limit - 100);
    expect(doc.length).toBeLessThanOrEqual(limit);
    return doc;
  };

  it('the issue-11 namespace bomb filling the body limit is refused before its children', () => {
    // Thousands of declarations on the root and as many empty children as fit: 235 KB
    // took ~90 s and ended in OOM when every element copied the namespace map.
    let doc = nsBomb(3_000, 0);
    doc = nsBomb(3_000, Math.floor((limit - doc.length) / 4));
    expect(doc.length).toBeLessThanOrEqual(limit);
    expect(doc.length).toBeGreaterThan(limit - 64);
    refusedFor(doc, RPC_INPUT_XML_LIMITS, 'maxAttributesPerElement');
  });

  it('namespace declarations spread one per element are refused on the document total', () => {
    const doc = fill((i) => `<a xmlns:p="urn:x:${i}"/>`);
    refusedFor(doc, RPC_INPUT_XML_LIMITS, 'maxNamespaceDeclarations');
  });

  it('the same bomb without the declarations is refused on its element count', () => {
    const doc = `<input xmlns="${NS}">${'<a/>'.repeat(Math.floor((limit - 80) / 4))}</input>`;
    expect(doc.length).toBeLessThanOrEqual(limit);
    refusedFor(doc, RPC_INPUT_XML_LIMITS, 'maxElements');
  });

  it('attributes filling the body limit on one element are refused', () => {
    let n = Math.floor(limit / 12);
    while (manyAttributes(n + 100).length <= limit) n += 100;
    const doc = manyAttributes(n);
    expect(doc.length).toBeGreaterThan(limit - 1_500);
    refusedFor(doc, RPC_INPUT_XML_LIMITS, 'maxAttributesPerElement');
  });

  it('attributes spread over elements are refused on the document total', () => {
    const per = RPC_INPUT_XML_LIMITS.maxAttributesPerElement as number;
    const el = `<a ${Array.from({ length: per }, (_, i) => `a${i}="v"`).join(' ')}/>`;
    const doc = `<input xmlns="${NS}">${el.repeat(Math.floor((limit - 80) / el.length))}</input>`;
    expect(doc.length).toBeLessThanOrEqual(limit);
    refusedFor(doc, RPC_INPUT_XML_LIMITS, 'maxAttributes');
  });

  it('nesting is refused one level past the limit and accepted at it', () => {
    const max = RPC_INPUT_XML_LIMITS.maxDepth as number;
    expect(() => parseXml(nested(max), RPC_INPUT_XML_LIMITS)).not.toThrow();
    refusedFor(nested(max + 1), RPC_INPUT_XML_LIMITS, 'maxDepth');
    refusedFor(nested(Math.floor(limit / 7)), RPC_INPUT_XML_LIMITS, 'maxDepth');
  });

  it('character references filling the body limit decode in one pass', () => {
    const doc = `<input xmlns="${NS}"><m>${'&#x41;'.repeat(Math.floor((limit - 80) / 6))}</m></input>`;
    const root = parseXml(doc, RPC_INPUT_XML_LIMITS);
    expect(root.children[0]?.text.length).toBe(Math.floor((limit - 80) / 6));
  });
});

describe('default limits (conveyed information, the agent)', () => {
  it('each count is accepted at its limit and refused one past it', () => {
    const L = XML_LIMITS;
    const spread = (n: number) =>
      `<r>${Array.from({ length: n }, (_, i) => `<a xmlns:p${i}="urn:x:${i}"/>`).join('')}</r>`;
    expect(() => parseXml(spread(L.maxNamespaceDeclarations))).not.toThrow();
    refusedFor(spread(L.maxNamespaceDeclarations + 1), undefined, 'maxNamespaceDeclarations');
    expect(() => parseXml(`<r>${'<a/>'.repeat(L.maxElements - 1)}</r>`)).not.toThrow();
    refusedFor(`<r>${'<a/>'.repeat(L.maxElements)}</r>`, undefined, 'maxElements');
    expect(() =>
      parseXml(`<r ${Array.from({ length: L.maxAttributesPerElement }, (_, i) => `a${i}="v"`).join(' ')}/>`),
    ).not.toThrow();
    refusedFor(
      `<r ${Array.from({ length: L.maxAttributesPerElement + 1 }, (_, i) => `a${i}="v"`).join(' ')}/>`,
      undefined,
      'maxAttributesPerElement',
    );
    expect(() => parseXml(nested(L.maxDepth))).not.toThrow();
    refusedFor(nested(L.maxDepth + 1), undefined, 'maxDepth');
    refusedFor(`<r>${'x'.repeat(1024)}</r>`, { maxTextLength: 1023 }, 'maxTextLength');
    refusedFor(`<r a="${'x'.repeat(1024)}"/>`, { maxTextLength: 1023 }, 'maxTextLength');
    refusedFor(`<r>${'x'.repeat(1024)}</r>`, { maxLength: 1000 }, 'maxLength');
  });

  it('a duplicate attribute is still found among many', () => {
    const attrs = Array.from({ length: 20 }, (_, i) => `a${i}="v"`).join(' ');
    expect(() => parseXml(`<r ${attrs} a7="w"/>`)).toThrow(/duplicate attribute a7/);
  });

  it('namespace scopes are shared, and inner declarations shadow outer ones', () => {
    const root = parseXml('<r xmlns="urn:a" xmlns:p="urn:p"><c/><p:d xmlns:p="urn:q"><e/></p:d></r>');
    const [c, d] = root.children;
    expect(c?.scope).toBe(root.scope); // no copy for an element that declares nothing
    expect(c?.ns).toBe('urn:a');
    expect(d?.ns).toBe('urn:q');
    expect(d?.children[0]?.scope.get('p')).toBe('urn:q');
    expect(c?.scope.get('p')).toBe('urn:p');
    expect(root.scope.get('nope')).toBeUndefined();
  });
});

describe('parse time grows linearly', () => {
  // No caps here: the shapes that were quadratic (declarations copied per element,
  // duplicate attributes found by a linear scan) are measured on the algorithm itself.
  const open: Partial<XmlLimits> = {
    maxElements: Number.POSITIVE_INFINITY,
    maxAttributes: Number.POSITIVE_INFINITY,
    maxAttributesPerElement: Number.POSITIVE_INFINITY,
    maxNamespaceDeclarations: Number.POSITIVE_INFINITY,
  };

  /**
   * Least CPU time of several runs. CPU time, not wall time: on a busy machine the
   * wait for a core is not the parser's; and the least, since interference only adds.
   */
  function fastest(f: () => void, runs = 9): number {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < runs; i++) {
      const t = process.cpuUsage();
      f();
      const d = process.cpuUsage(t);
      best = Math.min(best, d.user + d.system);
    }
    return best;
  }

  /**
   * Ratio of parse times at 4n and n. Linear work is ~4 (up to ~8 where garbage
   * collection of the growing tree adds); quadratic is 16 and more — the old parser
   * copied the namespace map per element, 16 M entry copies at n = 4,000.
   */
  function growth(make: (n: number) => string, n: number): number {
    const small = make(n);
    const large = make(4 * n);
    parseXml(small, open); // warm up
    parseXml(large, open);
    // The least of three measurements: noise from other work only ever raises a ratio,
    // while quadratic work keeps every one of them high.
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++)
      best = Math.min(best, fastest(() => parseXml(large, open)) / fastest(() => parseXml(small, open)));
    return best;
  }

  it('namespace declarations × children', () => {
    // Both grow with n: quadratic when scopes were copied per element.
    expect(growth((n) => nsBomb(n, n), 4_000)).toBeLessThan(12);
  });

  it('attributes on one element', () => {
    expect(growth(manyAttributes, 10_000)).toBeLessThan(12);
  });

  it('text split by comments into many runs', () => {
    expect(growth((n) => `<r>${'x<!---->'.repeat(n)}</r>`, 40_000)).toBeLessThan(12);
  });
});
