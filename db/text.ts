/**
 * Text the database cannot hold. PostgreSQL (and PGlite) refuse U+0000 in
 * `text` and `jsonb` ("invalid byte sequence", "unsupported Unicode escape
 * sequence"), and a lone UTF-16 surrogate has no UTF-8 encoding at all (Node
 * writes it as U+FFFD, so it would come back changed). Both edges — the device
 * RESTCONF codec and the operator API — refuse such strings up front with a 400,
 * rather than fail (or silently alter the value) at INSERT time.
 */

/** U+0000, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether the database can store `s` unchanged (no U+0000, no lone surrogate). */
export function isStorableText(s: string): boolean {
  return !UNSTORABLE.test(s);
}

/** Why `s` cannot be stored, for an error message; undefined when it can. */
export function unstorableReason(s: string): string | undefined {
  const m = UNSTORABLE.exec(s);
  if (!m) return undefined;
  const c = m[0].charCodeAt(0);
  return c === 0
    ? `contains U+0000 at index ${m.index}`
    : `contains a lone surrogate U+${c.toString(16).toUpperCase()} at index ${m.index}`;
}

/**
 * The first string anywhere in a JSON-like value (member names included) the database
 * cannot store, with its JSON-pointer-like path. Iterative, so a deeply nested body
 * cannot overflow the stack.
 */
export function findUnstorableText(value: unknown): { path: string; reason: string } | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop() as [unknown, string];
    if (typeof v === 'string') {
      const reason = unstorableReason(v);
      if (reason) return { path: path || '/', reason };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}/${i}`]);
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, child] = entries[i] as [string, unknown];
        const kr = unstorableReason(k);
        if (kr) return { path: `${path}/${k.replace(/[^\x20-\x7e]/g, '?')}`, reason: `member name ${kr}` };
        stack.push([child, `${path}/${k}`]);
      }
    }
  }
  return undefined;
}
