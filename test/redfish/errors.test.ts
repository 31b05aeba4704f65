import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REDFISH_ERROR_CODES } from '../../redfish/index.js';
import { repoRoot } from './helpers.js';

describe('error catalogue', () => {
  it('README lists exactly the codes redfish/ can throw', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('<!-- section:redfish -->'),
      readme.indexOf('<!-- /section:redfish -->'),
    );
    const documented = new Set(section.match(/REDFISH_ERR_[A-Z_]+/g) ?? []);
    expect([...documented].sort()).toEqual(Object.keys(REDFISH_ERROR_CODES).sort());
  });

  it('every code in the catalogue is used by the code', () => {
    const src = execFileSync('grep', ['-rhoE', "'REDFISH_ERR_[A-Z_]+'", join(repoRoot, 'redfish')], {
      encoding: 'utf8',
    });
    const used = new Set(
      src
        .split('\n')
        .filter(Boolean)
        .map((s) => s.replaceAll("'", '')),
    );
    for (const code of Object.keys(REDFISH_ERROR_CODES)) expect(used.has(code), code).toBe(true);
  });
});
