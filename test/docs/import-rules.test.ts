/**
 * Imports flow down the DESIGN.md table: each top-level folder may import
 * only the folders listed for it, so the agent ships without server code and
 * pki/ stays a leaf. Checked over every source file's relative imports. Across
 * folders only a folder's public face may be imported (STYLE.md lesson 1): an
 * `index` file, or a named entry point such as `pki/verify.ts`, the device side.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/serve.js';

/** DESIGN.md, "Modules (top-level folders) and what each may import". */
const MAY_IMPORT: Record<string, string[]> = {
  pki: [],
  'sztp-server': ['pki', 'db', 'otel'],
  'sztp-client': ['pki', 'otel'],
  redfish: ['otel'],
  bootstrap: ['redfish', 'pki', 'db', 'otel'],
  db: ['migrations'],
  migrations: [],
  otel: [],
  web: [],
};

/** Entry points besides `index` files that other folders may import. */
// pki/verify.ts: the agent's device-side face of pki. otel/sdk.ts: the SDK, kept out of
// otel/index.ts so that code using only @opentelemetry/api never loads it (cli/ starts it).
// bootstrap/job-steps.js: the job kinds' step lists, import-free, so the CLI's progress table
// can use them without loading the whole service.
const ENTRY_FILES = new Set(['pki/verify.js', 'otel/sdk.js', 'otel/agent-sdk.js', 'bootstrap/job-steps.js']);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : sources(p);
    return /\.(ts|tsx|mts|mjs|js)$/.test(name) ? [p] : [];
  });
}

describe('import rules (DESIGN.md module table)', () => {
  for (const [folder, allowed] of Object.entries(MAY_IMPORT)) {
    it(`${folder}/ imports only ${allowed.length ? allowed.join(', ') : 'nothing internal'}`, () => {
      const root = join(repoRoot, folder);
      let files: string[] = [];
      try {
        files = sources(root);
      } catch {
        return; // folder not created yet
      }
      const bad: string[] = [];
      for (const file of files) {
        const text = readFileSync(file, 'utf8');
        for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
          const target = relative(repoRoot, resolve(file, '..', m[1] as string)).split('/')[0] as string;
          if (target !== folder && !allowed.includes(target))
            bad.push(`${relative(repoRoot, file)} -> ${m[1]}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }

  for (const folder of [...Object.keys(MAY_IMPORT), 'cli']) {
    it(`${folder}/ imports other folders only through index or entry files`, () => {
      let files: string[] = [];
      try {
        files = sources(join(repoRoot, folder));
      } catch {
        return; // folder not created yet
      }
      const bad: string[] = [];
      for (const file of files) {
        const text = readFileSync(file, 'utf8');
        for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
          const target = relative(repoRoot, resolve(file, '..', m[1] as string));
          if (target.split('/')[0] === folder) continue;
          if (/(^|\/)index\.js$/.test(target) || ENTRY_FILES.has(target)) continue;
          bad.push(`${relative(repoRoot, file)} -> ${m[1]}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }
});
