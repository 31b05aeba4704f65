/**
 * The web dashboard in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core), against `dpu-ztp serve` (the built CLI and the built
 * dashboard) with emulated BMCs whose boot hook runs the real agent bundle:
 * a wrong token's message; sign in; the fleet; a provisioning job started from
 * the page; a device reaching `provisioned` without a reload (live events);
 * its step timeline; a failed device's reason with the BMC's own message; a
 * job cancelled from the page; the BMC check report; images and profiles; a
 * held device's IDevID revoked and lifted from its page by an admin (a viewer
 * sees the revocation but no buttons); and the message when the API goes away. Every page gets a screenshot under
 * `.tmp/dashboard/` and an axe-core scan with no serious or critical
 * violation; no Content-Security-Policy violation and no uncaught page error.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BmcEmulator, type FaultRule, startBmcEmulator } from '../../redfish/index.js';
import { FAST_EMULATOR } from '../redfish/helpers.js';
import {
  childEnv,
  repoRoot,
  runCli,
  scaledTimeout,
  type ServeProcess,
  seedDataDir,
  startServe,
} from '../helpers/serve.js';
import { type OtlpReceiver, startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { operatorApi } from '../helpers/provision-lab.js';
import { haveTool } from '../helpers/tools.js';
import { launchChromium } from '../../bench/chromium.js';
import { repeatsPgliteRun } from '../helpers/db.js';
import { decodeArtifact, parseCertificate } from '../../pki/index.js';

const hasChromium = haveTool('chromium');
const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-dashboard-'));
const pki = join(root, 'pki');
const dataDir = join(root, 'data');
const shots = join(repoRoot, '.tmp', 'dashboard');
const bundle = join(repoRoot, 'dist', 'sztp-client.mjs');
const OK = 'DASH-OK-1';
const FAIL = 'DASH-FAIL-1';
const HANG = 'DASH-HANG-1';
/** Contacts the server unregistered (held, its IDevID recorded); revoked and lifted from its page. */
const REV = 'DASH-REV-1';
const LAB = Array.from({ length: 6 }, (_, i) => `DASH-LAB-${i}`);
const RESET_REFUSED: FaultRule = {
  method: 'POST',
  path: /ComputerSystem\.Reset$/,
  times: 100,
  status: 400,
  messageId: 'Base.1.8.ActionNotSupported',
  message: 'Reset is locked out by the chassis intrusion switch (lab fault)',
};

let serve: ServeProcess | undefined;
let otlp: OtlpReceiver | undefined;
let context: BrowserContext;
let page: Page;
const emulators: BmcEmulator[] = [];
const agents: Promise<number | null>[] = [];
const pageErrors: string[] = [];
const cspViolations: string[] = [];
const timeout = (ms: number) => scaledTimeout(ms);

/** Runs the agent bundle as the freshly booted installer of `serial` would. */
function runAgent(serial: string, devicePort: number): Promise<number | null> {
  const dir = join(root, 'dev', serial, randomBytes(4).toString('hex'));
  mkdirSync(join(dir, 'etc'), { recursive: true });
  const hook = join(dir, 'install.sh');
  writeFileSync(hook, `#!/bin/sh\ncp "$1" "${dir}/installed.img"\n`, { mode: 0o755 });
  const d = join(pki, 'devices', serial);
  const args = [
    bundle,
    'run',
    '--no-dhcp',
    '--once',
    '--backoff',
    '0.05',
    '--timeout',
    '15',
    '--idevid-cert',
    join(d, 'idevid.crt'),
    '--idevid-key',
    join(d, 'idevid.key'),
    '--manufacturer-trust-anchor',
    join(pki, 'masa-ca.crt'),
    '--trust-anchor',
    join(pki, 'tls-ca.crt'),
    '--bootstrap-url',
    `https://127.0.0.1:${devicePort}`,
    '--install-hook',
    hook,
    '--config-path',
    join(dir, 'etc', 'running.conf'),
    '--state-dir',
    join(dir, 'state'),
  ];
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { env: childEnv(), cwd: dir, stdio: 'ignore' });
    p.on('close', (code) => resolve(code));
  });
}

/** An axe-core scan of the page as it is: serious and critical violations, as readable lines. */
async function axeScan(p: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, not as an inline <script>: the page's CSP stays on.
  const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await p.evaluate(axeSource);
  const result = await p.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(o: unknown): Promise<any> } }).axe;
    const r = await axe.run({ resultTypes: ['violations'] });
    return r.violations.map((v: any) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n: any) => n.target.join(' ')),
    }));
  });
  return (result as Array<{ id: string; impact: string; help: string; nodes: string[] }>)
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.join(', ')})`);
}

/** Screenshot and accessibility scan of the page under `name`. */
async function checkPage(name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  expect(await axeScan(page), `axe on ${name}`).toEqual([]);
}

const apiCall = (method: string, path: string, body?: Uint8Array | object) =>
  operatorApi(
    serve?.api as string,
    readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(),
    method,
    path,
    body,
  );

/** The SHA-256 fingerprint of REV's IDevID, as the device listener records it. */
const revFingerprint = () =>
  parseCertificate(decodeArtifact(readFileSync(join(pki, 'devices', REV, 'idevid.crt'), 'utf8')))
    .fingerprintSha256;

describe.skipIf(!hasChromium || repeatsPgliteRun)(
  'web dashboard in headless Chromium',
  { timeout: 180_000 },
  () => {
    beforeAll(async () => {
      mkdirSync(shots, { recursive: true });
      const serials = [OK, FAIL, HANG, ...LAB];
      const init = runCli(['pki', 'init', '--out', pki, '--devices', [OK, FAIL, HANG, REV].join(',')]);
      expect(init.code, init.stderr).toBe(0);
      const ports: { device?: number } = {};
      // The emulators speak HTTPS with the lab PKI's server certificate; their BMC records trust its CA.
      const tls = { key: readFileSync(join(pki, 'server.key')), cert: readFileSync(join(pki, 'server.crt')) };
      const emu = (serial: string, agent: boolean, faults: FaultRule[] = []) =>
        startBmcEmulator({
          ...FAST_EMULATOR,
          persona: 'generic',
          serial,
          faults,
          tls,
          onBoot: (e) => {
            if (agent && !('error' in e.fetch) && ports.device) agents.push(runAgent(serial, ports.device));
          },
        });
      emulators.push(await emu(OK, true), await emu(FAIL, false, [RESET_REFUSED]), await emu(HANG, false));
      otlp = await startOtlpReceiver();
      serve = await startServe(
        [
          '--data-dir',
          seedDataDir(dataDir),
          '--pki-dir',
          pki,
          '--job-lease',
          '1',
          '--await-device-timeout',
          '120',
          '--trace-ui-url',
          'https://traces.lab.example/trace/{traceId}',
          // REV calls home unregistered: held as pending, with the fingerprint of the IDevID it presented.
          '--unknown-devices',
          'hold',
        ],
        // Spans go to a real OTLP receiver, so the page's trace link can be checked against them.
        childEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_METRICS_EXPORTER: 'none' }),
        120_000,
      );
      ports.device = Number(new URL(serve.device).port);
      expect(ports.device).toBeTruthy();
      const caCertificate = readFileSync(join(pki, 'tls-ca.crt'), 'utf8');
      for (const [i, serial] of [OK, FAIL, HANG].entries()) {
        const r = await apiCall('PUT', `/api/v1/bmcs/bmc-${serial.toLowerCase()}`, {
          address: (emulators[i] as BmcEmulator).url,
          username: 'admin',
          password: 'secret',
          caCertificate,
          labels: { rack: 'r1' },
        });
        expect(r.status, JSON.stringify(r.body)).toBe(201);
      }
      expect(
        (await apiCall('PUT', '/api/v1/images/os.img', new Uint8Array(randomBytes(50_000)))).status,
      ).toBe(201);
      expect(
        (await apiCall('PUT', '/api/v1/images/installer.iso', new Uint8Array(randomBytes(50_000)))).status,
      ).toBe(201);
      const profile = {
        type: 'onboarding',
        bootImage: { osName: 'testos', osVersion: '2.0', image: 'os.img' },
        configurationHandling: 'replace',
        configuration: 'hostname provisioned\n',
        installerImage: 'installer.iso',
      };
      expect((await apiCall('PUT', '/api/v1/profiles/dpu', profile)).status).toBe(201);
      for (const serial of serials) {
        const bmc = serial.startsWith('DASH-LAB') ? {} : { bmc: `bmc-${serial.toLowerCase()}` };
        const r = await apiCall('PUT', `/api/v1/devices/${serial}`, {
          profile: 'dpu',
          labels: { rack: serial.startsWith('DASH-LAB') ? 'r9' : 'r1' },
          ...bmc,
        });
        expect(r.status, JSON.stringify(r.body)).toBe(201);
      }
      await runAgent(REV, ports.device);
      const held = await apiCall('GET', `/api/v1/devices/${REV}`);
      expect(held.status, JSON.stringify(held.body)).toBe(200);
      expect((held.body as { idevidFingerprint: string | null }).idevidFingerprint).toBe(revFingerprint());
      context = await launchChromium(mkdtempSync(join(root, 'chromium-')));
      page = context.pages()[0] ?? (await context.newPage());
      page.setDefaultTimeout(timeout(20_000));
      page.on('pageerror', (err) => pageErrors.push(err.message));
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
      });
    }, 300_000);

    afterAll(async () => {
      await context?.close();
      await serve?.stop();
      await otlp?.close();
      await Promise.all(agents);
      for (const e of emulators) await e.close();
      rmSync(root, { recursive: true, force: true });
      expect(pageErrors, 'uncaught errors in the page').toEqual([]);
      expect(cspViolations, 'Content-Security-Policy violations').toEqual([]);
    });

    it('refuses a wrong token with a clear message, then signs in and shows the fleet', async () => {
      await page.goto(`${serve?.api}/`);
      await checkPage('01-sign-in');
      await page.getByLabel('API token').fill('not-a-real-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect
        .poll(() => page.getByRole('alert').textContent(), { timeout: timeout(20_000) })
        .toMatch(/token was refused/);
      await page.screenshot({ path: join(shots, '02-wrong-token.png') });

      const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
      await page.getByLabel('API token').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Fleet' }).waitFor();
      await expect
        .poll(() => page.getByTestId('fleet-summary').textContent(), { timeout: timeout(20_000) })
        .toMatch(/^10 devices/);
      // The token lives in this tab's session storage, never in the URL.
      expect(page.url()).not.toContain(token);
      expect(await page.evaluate('sessionStorage.getItem("dpu-ztp.token")')).toBe(token);
      await page.getByText('live', { exact: true }).waitFor();
      // Search narrows the table.
      await page.getByLabel('Search').fill('r9');
      await expect
        .poll(() => page.locator('.vbody tbody tr[data-serial]').count(), { timeout: timeout(20_000) })
        .toBe(LAB.length);
      await page.getByLabel('Search').fill('');
      await checkPage('03-fleet');
    });

    it('starts a provisioning job from the page; a device reaches provisioned without a reload', async () => {
      await page.evaluate('window.noReload = true');
      await page.getByLabel(`Select ${OK}`).check();
      await page.getByLabel(`Select ${FAIL}`).check();
      await page.getByRole('button', { name: /Provision selected \(2\)/ }).click();
      await page.getByRole('heading', { name: /^Job [0-9a-f]{8}/ }).waitFor();
      await page.getByRole('link', { name: 'Fleet', exact: true }).click();
      const okRow = page.locator(`tr[data-serial="${OK}"]`);
      await expect
        .poll(() => okRow.getByTestId('device-state').textContent(), { timeout: timeout(90_000) })
        .toBe('provisioned');
      // The run's live step comes from its state events (each carries the step it moved to).
      await expect
        .poll(() => okRow.locator('.c-step').textContent(), { timeout: timeout(30_000) })
        .toBe('succeeded · done');
      const failRow = page.locator(`tr[data-serial="${FAIL}"]`);
      await expect
        .poll(() => failRow.locator('.c-step').textContent(), { timeout: timeout(60_000) })
        .toMatch(/failed|needs-attention/);
      expect(await page.evaluate('window.noReload')).toBe(true);
      await checkPage('04-fleet-live');
    });

    it("shows a device's step timeline with a trace link, and a failed device's reason from the BMC", async () => {
      await page.getByRole('link', { name: OK, exact: true }).click();
      await page.getByRole('heading', { name: `Device ${OK}` }).waitFor();
      const steps = page.getByRole('list', { name: `Steps of ${OK}` }).getByRole('listitem');
      await expect.poll(() => steps.count(), { timeout: timeout(20_000) }).toBe(7);
      expect(await steps.first().textContent()).toMatch(/^preflight/);
      const href = await page.getByRole('link', { name: /^trace [0-9a-f]{8}/ }).getAttribute('href');
      const traceId = /^https:\/\/traces\.lab\.example\/trace\/([0-9a-f]{32})$/.exec(href ?? '')?.[1];
      expect(traceId, String(href)).toBeDefined();
      // The link names the trace the service really exported for this device's run.
      await expect
        .poll(() => otlp?.spans.some((x) => x.traceId === traceId), { timeout: timeout(30_000) })
        .toBe(true);
      await page.getByRole('cell', { name: 'bootstrap-complete' }).first().waitFor();
      // A registered device's IDevID is recorded on its first mTLS request, and shown not revoked.
      await page.getByTestId('idevid-ok').waitFor();
      expect(await page.getByTestId('idevid').textContent()).toMatch(
        /^SHA-256 [0-9a-f]{2}(:[0-9a-f]{2}){31}/,
      );
      await checkPage('05-device-timeline');

      await page.goto(`${serve?.api}/#/devices/${FAIL}`);
      await page.getByRole('heading', { name: `Device ${FAIL}` }).waitFor();
      const error = page.getByTestId('run-error');
      await expect.poll(() => error.textContent(), { timeout: timeout(20_000) }).toMatch(/REDFISH_ERR_\w+/);
      expect(await error.textContent()).toContain('chassis intrusion switch');
      await checkPage('06-device-failed');

      await page.getByRole('link', { name: /^provision job/ }).click();
      await expect
        .poll(() => page.getByTestId('job-failed').textContent(), { timeout: timeout(20_000) })
        .toMatch(/This job failed.*DASH-FAIL-1/);
      await checkPage('07-job-failed');
    });

    it('cancels a running job from the page', async () => {
      await page.getByRole('link', { name: 'Fleet', exact: true }).click();
      await page.getByLabel(`Select ${HANG}`).check();
      await page.getByRole('button', { name: /Provision selected \(1\)/ }).click();
      await page.getByRole('heading', { name: /^Job [0-9a-f]{8}/ }).waitFor();
      const row = page.locator(`tr[data-serial="${HANG}"]`);
      await expect.poll(() => row.textContent(), { timeout: timeout(60_000) }).toMatch(/await-device/);
      await page.getByRole('button', { name: 'Cancel job' }).click();
      await expect
        .poll(() => page.getByRole('heading', { name: /^Job / }).textContent(), { timeout: timeout(30_000) })
        .toMatch(/cancelled/);
      await checkPage('08-job-cancelled');
    });

    it('checks a BMC and shows its capability report; lists jobs, images and profiles', async () => {
      await page.getByRole('link', { name: 'BMCs', exact: true }).click();
      const row = page.locator('tr[data-bmc="bmc-dash-ok-1"]');
      await row.getByRole('button', { name: 'Check' }).click();
      const report = page.getByTestId('check-bmc-dash-ok-1');
      await expect
        .poll(() => report.textContent(), { timeout: timeout(60_000) })
        .toMatch(/recommended strategy/);
      expect(await report.textContent()).toMatch(/virtual-media: usable/);
      await checkPage('09-bmcs');
      await page.getByRole('link', { name: 'Jobs', exact: true }).click();
      await expect.poll(() => page.locator('tbody tr').count(), { timeout: timeout(20_000) }).toBe(2);
      await checkPage('10-jobs');
      await page.getByRole('link', { name: 'Images', exact: true }).click();
      await page.getByRole('cell', { name: 'installer.iso' }).waitFor();
      await checkPage('11-images');
      await page.getByRole('link', { name: 'Profiles', exact: true }).click();
      await page.getByRole('cell', { name: 'dpu', exact: true }).waitFor();
      await checkPage('12-profiles');
    });

    it("shows a device's revoked IDevID (fingerprint, reason, by, when); an admin revokes and lifts it there, a viewer only sees it", async () => {
      const fingerprint = revFingerprint();
      await page.goto(`${serve?.api}/#/devices/${REV}`);
      await page.getByRole('heading', { name: `Device ${REV}` }).waitFor();
      const panel = page.getByTestId('idevid');
      await expect.poll(() => panel.textContent(), { timeout: timeout(20_000) }).toContain(fingerprint);
      await page.getByTestId('idevid-ok').waitFor();
      await page.getByLabel('Reason').fill('RMA 4711');
      await page.getByRole('button', { name: 'Revoke IDevID' }).click();
      const revoked = page.getByTestId('idevid-revoked');
      await expect
        .poll(() => revoked.textContent().catch(() => ''), { timeout: timeout(20_000) })
        .toMatch(/^Revoked .+ by \S+: RMA 4711\./);
      const stored = await apiCall('GET', `/api/v1/revoked-idevids/${fingerprint}`);
      expect(stored.status).toBe(200);
      expect(stored.body).toMatchObject({ fingerprint, reason: 'RMA 4711' });
      await checkPage('13-device-idevid-revoked');

      // A viewer (its own tab: its own session) sees the revocation, and no button to change it.
      const created = await apiCall('POST', '/api/v1/tokens', { role: 'viewer', name: 'dashboard-viewer' });
      expect(created.status).toBe(201);
      const viewer = await context.newPage();
      try {
        await viewer.goto(`${serve?.api}/`);
        await viewer.getByLabel('API token').fill((created.body as { token: string }).token);
        await viewer.getByRole('button', { name: 'Sign in' }).click();
        await viewer.getByRole('heading', { name: 'Fleet' }).waitFor();
        await viewer.goto(`${serve?.api}/#/devices/${REV}`);
        await expect
          .poll(
            () =>
              viewer
                .getByTestId('idevid-revoked')
                .textContent()
                .catch(() => ''),
            {
              timeout: timeout(20_000),
            },
          )
          .toMatch(/RMA 4711/);
        expect(await viewer.getByRole('button', { name: /Revoke IDevID|Lift revocation/ }).count()).toBe(0);
      } finally {
        await viewer.close();
      }

      await page.getByRole('button', { name: 'Lift revocation' }).click();
      await page.getByTestId('idevid-ok').waitFor();
      expect((await apiCall('GET', `/api/v1/revoked-idevids/${fingerprint}`)).status).toBe(404);
    });

    it('says so in the page when the API goes away', async () => {
      await page.getByRole('link', { name: 'Fleet', exact: true }).click();
      await serve?.stop();
      await expect
        .poll(
          () =>
            page
              .getByTestId('api-down')
              .textContent()
              .catch(() => ''),
          { timeout: timeout(30_000) },
        )
        .toMatch(/The dpu-ztp API is not answering/);
      await page.screenshot({ path: join(shots, '14-api-gone.png') });
      // The fleet stays on screen (marked stale), never a blank page.
      expect(await page.getByTestId('fleet-summary').textContent()).toMatch(/^10 devices/);
    });
  },
);
