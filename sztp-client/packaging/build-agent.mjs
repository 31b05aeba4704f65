/**
 * `npm run build:agent`: bundles the device agent (`cli/sztp-client.ts` and
 * everything it imports) into one ESM file, `dist/sztp-client.mjs`, that runs
 * with plain `node` and no node_modules. Fails if the bundle would pull in a
 * module the agent must not carry (server code, the certificate-issuing side).
 */
import { chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outfile = join(root, 'dist', 'sztp-client.mjs');

const result = await build({
  entryPoints: [join(root, 'cli', 'sztp-client.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // ESM builds first: the OpenTelemetry packages tree-shake only there (their CommonJS builds would
  // drag in the metrics and logs SDKs and all of semantic-conventions: 1 MiB instead of ~0.4 MiB).
  mainFields: ['module', 'main'],
  metafile: true,
  legalComments: 'inline',
  logLevel: 'warning',
  // Bundled CommonJS (commander) calls require() for node builtins; give ESM one.
  banner: {
    js: "import { createRequire as __sztpCreateRequire } from 'node:module'; const require = __sztpCreateRequire(import.meta.url);",
  },
});

// DESIGN.md: the agent imports pki/ (verifying side) and otel/ only — never server code.
const forbidden = [
  /^sztp-server\//,
  /^bootstrap\//,
  /^db\//,
  /^redfish\//,
  /^pki\/(x509-lib|certificate-create|lab-pki)\.ts$/,
  /node_modules\/@peculiar\//,
  /node_modules\/(fastify|kysely|pg|pino|undici)\//,
];
const bad = Object.keys(result.metafile.inputs).filter((f) => forbidden.some((re) => re.test(f)));
if (bad.length > 0) {
  console.error(`build:agent: the agent bundle must not include:\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
await chmod(outfile, 0o755);
const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs)[0]].bytes;
console.log(
  `build:agent: ${outfile} (${(bytes / 1024).toFixed(0)} KiB, ${Object.keys(result.metafile.inputs).length} modules)`,
);
