/** `sztp-client parse-lease` as a user runs it (needs `npm run build` first; `npm test` does it). */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(process.cwd(), 'dist/cli/sztp-client.js');
const fx = (n: string) => join(import.meta.dirname, 'fixtures', n);

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('sztp-client parse-lease', () => {
  it('dist is built', () => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true);
  });

  it('prints the URIs of several files as one JSON array, warnings on stderr', async () => {
    const r = await cli(
      'parse-lease',
      fx('dhclient4-plain-text.leases'),
      fx('dhclient6-string.leases'),
      fx('udhcpc-bound.env'),
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      'https://10.199.8.1:8443/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data',
      'https://sztp1.example.com:8443',
      'https://[2001:db8::1]',
    ]);
    expect(r.stderr).toMatch(/^warning: SZTP_CLIENT_WARN_PLAIN_TEXT_URL: /);
  });

  it('exits 1 with one line naming the code on a malformed option', async () => {
    const r = await cli('parse-lease', fx('dhclient4-string.leases'), fx('dhclient4-truncated.leases'));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: SZTP_CLIENT_ERR_MALFORMED_OPTION: .+\n$/);
  });

  it('exits 1 on a missing file, 2 (usage) without arguments', async () => {
    const missing = await cli('parse-lease', '/nonexistent/dhclient.leases');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: SZTP_CLIENT_ERR_LEASE_UNREADABLE: /);
    const none = await cli('parse-lease');
    expect(none.code).not.toBe(0);
  });
});
