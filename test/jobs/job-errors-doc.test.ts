/**
 * The README's "Provisioning jobs" section lists exactly the job error codes and the
 * step names the code records (fastify's way: the catalogue and the docs cannot drift).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JOB_ERRORS, PROVISION_STEPS } from '../../bootstrap/index.js';
import { repoRoot } from '../helpers/serve.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const jobs = /<!-- section:jobs -->([\s\S]*?)<!-- \/section:jobs -->/.exec(readme)?.[1] ?? '';

describe('README: provisioning jobs', () => {
  it('lists exactly the JOB_ERR_* codes', () => {
    const listed = new Set([...jobs.matchAll(/\| `(JOB_ERR_[A-Z_]+)` \|/g)].map((m) => m[1]));
    expect([...listed].sort()).toEqual(Object.keys(JOB_ERRORS).sort());
  });

  it('names every provisioning step in order', () => {
    const rows = [...jobs.matchAll(/^\| `([a-z-]+)` \| /gm)].map((m) => m[1]);
    expect(rows.filter((r) => (PROVISION_STEPS as readonly string[]).includes(r as string))).toEqual([
      ...PROVISION_STEPS,
    ]);
  });
});
