/**
 * STYLE.md lesson 6: the README's PKI section lists exactly the codes of
 * PKI_ERROR_CATALOGUE, with the same descriptions.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PKI_ERROR_CATALOGUE } from '../../pki/index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('<!-- section:pki -->'), readme.indexOf('<!-- /section:pki -->'));

describe('PKI error catalogue', () => {
  it('the README PKI section names exactly the catalogued codes', () => {
    const documented = new Set(section.match(/PKI_ERR_[A-Z_]+/g) ?? []);
    expect([...documented].sort()).toEqual(Object.keys(PKI_ERROR_CATALOGUE).sort());
  });

  it('each code has a table row with its description', () => {
    for (const [code, text] of Object.entries(PKI_ERROR_CATALOGUE)) {
      const row = section.split('\n').find((l) => l.startsWith(`| \`${code}\``));
      expect(row, code).toBeDefined();
      expect(row!.replace(/\\\|/g, '|')).toContain(text);
    }
  });
});
