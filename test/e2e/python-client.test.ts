/**
 * The documented automation flow, proven from outside TypeScript:
 * `examples/provision.py` (Python 3 with only `requests`) against a live
 * `dpu-ztp serve` and an emulated DPU BMC over TLS whose boot hook runs the
 * real agent bundle. The script registers the BMC and the device (with an
 * If-Match guarded update), starts the job under an Idempotency-Key and waits
 * for it. Needs python3 with requests (Debian python3-requests): skipped
 * locally without it, required under CI=true.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAST_EMULATOR } from '../redfish/helpers.js';
import { ProvisionLab } from '../helpers/provision-lab.js';
import { repoRoot, scaledTimeout } from '../helpers/serve.js';
import { inCI } from '../helpers/tools.js';
import { repeatsPgliteRun } from '../helpers/db.js';

function havePythonRequests(): boolean {
  const r = spawnSync('python3', ['-c', 'import requests'], { encoding: 'utf8' });
  if (r.status === 0) return true;
  if (inCI)
    throw new Error('python3 with requests is missing under CI=true: install python3-requests in .ci/run');
  return false;
}

const script = join(repoRoot, 'examples', 'provision.py');

describe.skipIf(repeatsPgliteRun || !havePythonRequests())(
  'examples/provision.py (Python + requests) end to end',
  () => {
    const lab = new ProvisionLab();
    afterAll(() => lab.close());

    it('registers a BMC and a device, provisions it through a job and exits 0; a wrong token exits 2 with the code', {
      timeout: scaledTimeout(300_000),
    }, async () => {
      await lab.prepare([{ serial: 'PY-DPU-1', persona: 'bluefield' }], { tls: true, register: false });
      const serve = await lab.start();
      const emu = lab.emulators.get('PY-DPU-1');
      writeFileSync(join(lab.root, 'bmc.pw'), `${FAST_EMULATOR.password}\n`);
      writeFileSync(join(lab.root, 'bmc-ca.pem'), lab.bmcCa as string);
      const args = (tokenFile: string) => [
        script,
        '--api',
        serve.api,
        '--token-file',
        tokenFile,
        '--serial',
        'PY-DPU-1',
        '--profile',
        'dpu',
        '--bmc-id',
        'bmc-py-1',
        '--bmc-address',
        emu?.url as string,
        '--bmc-username',
        FAST_EMULATOR.username as string,
        '--bmc-password-file',
        join(lab.root, 'bmc.pw'),
        '--bmc-ca',
        join(lab.root, 'bmc-ca.pem'),
        '--label',
        'rack=r1',
        '--timeout',
        '240',
        '--interval',
        '0.5',
      ];
      const py = (tokenFile: string) =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          // Async spawn: the service's agents run in this process's event loop meanwhile.
          const p = spawn('python3', args(tokenFile));
          let out = '';
          p.stdout?.on('data', (c: Buffer) => {
            out += c.toString();
          });
          p.stderr?.on('data', (c: Buffer) => {
            out += c.toString();
          });
          p.on('close', (code) => resolve({ code, out }));
        });

      writeFileSync(join(lab.root, 'bad-token'), 'not-a-token\n');
      const bad = await py(join(lab.root, 'bad-token'));
      expect(bad.code, bad.out).toBe(2);
      expect(bad.out).toMatch(/API_ERR_UNAUTHENTICATED \(401\)/);

      const run = await py(join(lab.dataDir, 'admin-token'));
      const agents = await Promise.all(lab.agents);
      expect(run.code, `${run.out}\n${agents.map((a) => a.out).join('\n')}`).toBe(0);
      expect(run.out).toMatch(/bmc bmc-py-1: https:\/\/127\.0\.0\.1:\d+ \(password set: True\)/);
      expect(run.out).toMatch(/job [0-9a-f-]+: succeeded/);

      // What the script did is what the service holds.
      const device = await lab.api('GET', '/api/v1/devices/PY-DPU-1');
      expect(device.body).toMatchObject({ state: 'provisioned', bmc: 'bmc-py-1', labels: { rack: 'r1' } });
      const bmc = await lab.api('GET', '/api/v1/bmcs/bmc-py-1');
      expect(bmc.body).toMatchObject({ address: emu?.url, passwordSet: true });
      expect(JSON.stringify(bmc.body)).not.toContain(FAST_EMULATOR.password);
      expect(agents.map((a) => a.code)).toEqual([0]);
    });
  },
);
