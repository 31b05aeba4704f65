/**
 * `npm run dashboards`: writes the dashboards of `dashboards.ts` as JSON into
 * `otel/grafana/dashboards/` and the Grafana provisioning file beside them.
 * Run from the repository root (the npm script does); the output is committed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dashboardJson, dashboards, PROVISIONING_YAML } from './dashboards.js';

const dir = join(process.cwd(), 'otel', 'grafana');
mkdirSync(join(dir, 'dashboards'), { recursive: true });
mkdirSync(join(dir, 'provisioning'), { recursive: true });
for (const [name, d] of Object.entries(dashboards())) {
  writeFileSync(join(dir, 'dashboards', `${name}.json`), dashboardJson(d));
  console.log(`otel/grafana/dashboards/${name}.json`);
}
writeFileSync(join(dir, 'provisioning', 'dashboards.yaml'), PROVISIONING_YAML);
console.log('otel/grafana/provisioning/dashboards.yaml');
