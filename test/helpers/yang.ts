/**
 * yanglint (libyang-tools) validation of what the device side sends, against
 * the IETF modules in ../shared/yang. yanglint cannot validate `rc:yang-data`
 * instances, so those modules go through ../shared/tools/yang-data-shim.sh;
 * ietf-restconf additionally gets `config false` on `errors` (a keyless list)
 * and loses the `restconf` container's mandatory leaf, which the shim turns
 * into top-level data that an error document does not carry.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './serve.js';

/** The shared IETF YANG modules. */
export const yangSrc = join(repoRoot, '..', 'shared', 'yang');
const shim = join(repoRoot, '..', 'shared', 'tools', 'yang-data-shim.sh');

let dir: string | undefined;
function shimDir(): string {
  if (dir) return dir;
  dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-yang-'));
  for (const m of ['ietf-sztp-conveyed-info@2019-04-30', 'ietf-restconf@2017-01-26']) {
    let text = execFileSync('sh', [shim, join(yangSrc, `${m}.yang`)], { encoding: 'utf8' });
    if (m.startsWith('ietf-restconf')) {
      text = text.replace(/^(\s*)container errors \{/m, '$1container errors {\n$1  config false;');
      text = text.replace(/(leaf yang-library-version \{[\s\S]*?)mandatory true;/, '$1');
    }
    writeFileSync(join(dir, `${m}.yang`), text);
  }
  return dir;
}

/** Runs yanglint on one document; returns ok and its messages. */
export function yanglint(
  kind: 'rpc' | 'reply' | 'data',
  module: 'ietf-sztp-bootstrap-server' | 'ietf-sztp-conveyed-info' | 'ietf-restconf',
  doc: string,
  format: 'json' | 'xml',
): { ok: boolean; out: string } {
  const d = shimDir();
  const file = join(d, `doc-${process.pid}-${Math.random().toString(36).slice(2)}.${format}`);
  writeFileSync(file, doc);
  const schema =
    module === 'ietf-sztp-bootstrap-server'
      ? join(yangSrc, 'ietf-sztp-bootstrap-server@2019-04-30.yang')
      : join(d, `${module}@${module === 'ietf-restconf' ? '2017-01-26' : '2019-04-30'}.yang`);
  const r = spawnSync('yanglint', ['-p', d, '-p', yangSrc, '-t', kind, schema, file], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** RESTCONF's `…:output`/`…:input` envelope renamed to the RPC name, as yanglint wants (JSON). */
export function jsonAsRpc(body: string, rpc: string, envelope: 'input' | 'output'): string {
  const obj = JSON.parse(body) as Record<string, unknown>;
  return JSON.stringify({
    [`ietf-sztp-bootstrap-server:${rpc}`]: obj[`ietf-sztp-bootstrap-server:${envelope}`],
  });
}

/** Same for XML. */
export function xmlAsRpc(body: string, rpc: string, envelope: 'input' | 'output'): string {
  return body
    .replace(new RegExp(`<${envelope}( |>)`), `<${rpc}$1`)
    .replace(new RegExp(`</${envelope}>\\s*$`), `</${rpc}>`);
}

/** Reads a fixture of ../shared/fixtures. */
export function fixture(path: string): string {
  return readFileSync(join(repoRoot, '..', 'shared', 'fixtures', path), 'utf8');
}
