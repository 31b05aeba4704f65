/**
 * README.md stays in step with the code: every error code of the operator
 * API, the device side and the database layer, every configuration flag and
 * variable, and every runtime dependency is documented.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { API_ERRORS } from '../../bootstrap/index.js';
import { SETTINGS } from '../../cli/config.js';
import { DB_ERROR_CODES } from '../../db/index.js';
import { Attr, Metric, MetricAttr, SpanName } from '../../otel/index.js';
import { SZTP_ERRORS } from '../../sztp-server/index.js';
import { repoRoot } from '../helpers/serve.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};

function section(name: string): string {
  const m = new RegExp(`<!-- section:${name} -->([\\s\\S]*?)<!-- /section:${name} -->`).exec(readme);
  if (!m?.[1]) throw new Error(`README has no ${name} section`);
  return m[1];
}

describe('README', () => {
  it('starts with the install-and-run command and the test command', () => {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(firstBlock).toMatch(/^npm install && npm start/m);
    expect(firstBlock).toMatch(/^npm test/m);
  });

  it('lists exactly the operator API, device-side and database error codes', () => {
    const errors = section('errors');
    const listed = new Set([...errors.matchAll(/\| `((?:API|SZTP|DB)_ERR_[A-Z_]+)` \|/g)].map((m) => m[1]));
    const expected = new Set([
      ...Object.keys(API_ERRORS),
      ...Object.keys(SZTP_ERRORS),
      ...Object.keys(DB_ERROR_CODES),
    ]);
    expect([...listed].sort()).toEqual([...expected].sort());
    for (const [code, e] of Object.entries(SZTP_ERRORS))
      expect(errors).toContain(`| \`${code}\` | ${e.status} | \`${e.tag}\` |`);
    for (const [code, e] of Object.entries(API_ERRORS))
      expect(errors).toContain(`| \`${code}\` | ${e.status} |`);
  });

  it('documents every configuration flag and environment variable', () => {
    const svc = section('service');
    for (const s of SETTINGS) {
      expect(svc).toContain(`\`--${s.flag}\``);
      if ('env' in s) expect(svc).toContain(`\`${s.env}\``);
    }
  });

  it('says why each runtime dependency is there', () => {
    const deps = section('dependencies');
    for (const d of Object.keys(pkg.dependencies)) expect(deps, d).toContain(`\`${d}\``);
  });

  it('lists every span attribute name, metric and metric label of otel/conventions.ts', () => {
    const otel = section('otel');
    for (const name of Object.values(Attr)) expect(otel, name).toContain(`\`${name}\``);
    for (const name of Object.values(Metric)) expect(otel, name).toContain(`| \`${name}\` |`);
    for (const label of Object.values(MetricAttr)) expect(otel, label).toContain(`\`${label}\``);
    for (const name of Object.values(SpanName)) {
      const shown = typeof name === 'string' ? name : name(name.name === 'jobStep' ? '<step>' : '<kind>');
      expect(otel, shown).toContain(`\`${shown}\``);
    }
  });
});
