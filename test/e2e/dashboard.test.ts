/**
 * The web dashboard in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core), against `dpu-ztp serve` (the built CLI and the built
 * dashboard) with emulated BMCs whose boot hook runs the real agent bundle:
 * a wrong token's message; sign in; the fleet; a provisioning job started from
 * the page; a device reaching `provisioned` without a reload (live events);
 * its step timeline; a failed device's reason with the BMC's own message; its
 * job retried from the page once the fault is cleared; a job cancelled from the
 * page; the BMC check report; a BMC added through the form (the API's refusals
 * shown in the form, then listed and checked); a viewer's pages without write
 * controls and the API's refusal of a write; images and profiles; a held
 * device's IDevID revoked and lifted from its page by an admin (a viewer sees
 * the revocation but no buttons); and the message when the API goes away.
 * Every page gets a screenshot under
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
/** A BMC nobody registered yet: the technician adds it through the form. */
const NEW_BMC = 'bmc-dash-new';
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
let newBmc: BmcEmulator;
let viewerToken: string;
/** Serials whose emulated BMC boots the agent; FAIL joins once its fault is "fixed". */
const bootsAgent = new Set([OK]);
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

/** Screenshot and accessibility scan of the page (the main tab unless told) under `name`. */
async function checkPage(name: string, p: Page = page): Promise<void> {
  await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  expect(await axeScan(p), `axe on ${name}`).toEqual([]);
}

/** Default timeout, and uncaught errors and CSP violations of `p` recorded for afterAll. */
function watch(p: Page): void {
  p.setDefaultTimeout(timeout(20_000));
  p.on('pageerror', (err) => pageErrors.push(err.message));
  p.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
}

/** Signs in on `p` (a fresh tab: its own session storage) with `token`. */
async function signIn(p: Page, token: string): Promise<void> {
  await p.goto(`${serve?.api}/`);
  await p.getByLabel('API token').fill(token);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('heading', { name: 'Fleet' }).waitFor();
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
      const emu = (serial: string, faults: FaultRule[] = []) =>
        startBmcEmulator({
          ...FAST_EMULATOR,
          persona: 'generic',
          serial,
          faults,
          tls,
          onBoot: (e) => {
            if (bootsAgent.has(serial) && !('error' in e.fetch) && ports.device)
              agents.push(runAgent(serial, ports.device));
          },
        });
      emulators.push(await emu(OK), await emu(FAIL, [RESET_REFUSED]), await emu(HANG));
      newBmc = await emu('DASH-NEW-1');
      emulators.push(newBmc);
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
      const viewer = await apiCall('POST', '/api/v1/tokens', { role: 'viewer', name: 'lab-visitor' });
      expect(viewer.status, JSON.stringify(viewer.body)).toBe(201);
      viewerToken = (viewer.body as { token: string }).token;
      await runAgent(REV, ports.device);
      const held = await apiCall('GET', `/api/v1/devices/${REV}`);
      expect(held.status, JSON.stringify(held.body)).toBe(200);
      expect((held.body as { idevidFingerprint: string | null }).idevidFingerprint).toBe(revFingerprint());
      context = await launchChromium(mkdtempSync(join(root, 'chromium-')));
      page = context.pages()[0] ?? (await context.newPage());
      watch(page);
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

    it("retries a failed job's devices from the page once the cause is fixed", async () => {
      // Still on the failed job's page. The technician clears the fault (the chassis switch) ...
      const failRow = page.locator(`tr[data-serial="${FAIL}"]`);
      expect(await failRow.textContent()).toMatch(/failed.*REDFISH_ERR_\w+/);
      const attempt = failRow.getByTestId('run-attempt');
      expect(await attempt.textContent()).toBe('1');
      (emulators[1] as BmcEmulator).faults.clear();
      bootsAgent.add(FAIL);
      // ... and retries from the page: the same job runs the device again as attempt 2.
      await page.getByRole('button', { name: 'Retry failed devices' }).click();
      await expect.poll(() => attempt.textContent(), { timeout: timeout(20_000) }).toBe('2');
      await expect
        .poll(() => page.getByRole('heading', { name: /^Job / }).textContent(), { timeout: timeout(90_000) })
        .toMatch(/succeeded/);
      await expect
        .poll(() => failRow.getByTestId('run-state').textContent(), { timeout: timeout(20_000) })
        .toBe('succeeded');
      expect(await page.getByTestId('job-failed').count()).toBe(0);
      // The device's own page shows both attempts of the failed step and the device provisioned.
      await page.getByRole('link', { name: FAIL, exact: true }).click();
      await expect
        .poll(() => page.getByTestId('device-state').textContent(), { timeout: timeout(20_000) })
        .toBe('provisioned');
      const steps = page.getByRole('list', { name: `Steps of ${FAIL}` });
      await expect
        .poll(() => steps.textContent(), { timeout: timeout(20_000) })
        .toMatch(/power-cycle\s*failed.*power-cycle #2\s*done/s);
      await checkPage('07b-job-retried');
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

    it("adds a BMC through the form: the API's refusals next to the form, then listed and checked", async () => {
      // Still on the Profiles page.
      await page.getByRole('link', { name: 'BMCs', exact: true }).click();
      const form = page.getByRole('form', { name: 'Add a BMC' });
      const row = page.locator(`tr[data-bmc="${NEW_BMC}"]`);
      await form.getByLabel('Id', { exact: true }).fill(NEW_BMC);
      await form.getByLabel('Username', { exact: true }).fill('admin');
      await form.getByLabel('Password', { exact: true }).fill('secret');
      await form.getByLabel(/Skip TLS verification/).check();
      // The browser lets these through (the fields are only `required`); the API refuses them.
      const refusals: Array<[string, RegExp]> = [
        [
          `${newBmc.url}/redfish/v1`,
          /Could not add the BMC\. API_ERR_BAD_REQUEST: address: only https:\/\/host\[:port\]/,
        ],
        [
          newBmc.url.replace('https:', 'http:'),
          /Could not add the BMC\. API_ERR_VALIDATION: .*address.*https/,
        ],
      ];
      for (const [address, message] of refusals) {
        await form.getByLabel('Address', { exact: true }).fill(address);
        await form.getByRole('button', { name: 'Add BMC' }).click();
        await expect
          .poll(() => form.getByRole('alert').textContent(), { timeout: timeout(20_000) })
          .toMatch(message);
        // What was typed stays, to be corrected; nothing was added.
        expect(await form.getByLabel('Address', { exact: true }).inputValue()).toBe(address);
        expect(await row.count()).toBe(0);
      }
      await checkPage('14-bmc-form-refused');
      // "Add" never replaces: an id that is taken is refused, and that BMC keeps its CA, labels, check.
      const taken = 'bmc-dash-ok-1';
      const before = await apiCall('GET', `/api/v1/bmcs/${taken}`);
      await form.getByLabel('Id', { exact: true }).fill(taken);
      await form.getByLabel('Address', { exact: true }).fill(newBmc.url);
      await form.getByRole('button', { name: 'Add BMC' }).click();
      await expect
        .poll(() => form.getByRole('alert').textContent(), { timeout: timeout(20_000) })
        .toBe(
          `Could not add the BMC: there is already a BMC with id ${taken}. Pick another id (the form never replaces a BMC).`,
        );
      const after = await apiCall('GET', `/api/v1/bmcs/${taken}`);
      expect(after.body).toEqual(before.body);
      expect(after.body).toMatchObject({
        address: (emulators[0] as BmcEmulator).url,
        labels: { rack: 'r1' },
        insecure: false,
      });
      expect((after.body as { lastCheck?: unknown }).lastCheck).toBeDefined();
      await form.getByLabel('Id', { exact: true }).fill(NEW_BMC);
      await form.getByRole('button', { name: 'Add BMC' }).click();
      await row.waitFor();
      expect(await form.getByRole('alert').count()).toBe(0);
      expect(await form.getByLabel('Id', { exact: true }).inputValue()).toBe('');
      expect(await row.textContent()).toContain(newBmc.url);
      await row.getByRole('button', { name: 'Check' }).click();
      await expect
        .poll(() => page.getByTestId(`check-${NEW_BMC}`).textContent(), { timeout: timeout(60_000) })
        .toMatch(/^ok checked .*recommended strategy/);
      // The row shows the stored check result too, as the list reads it back from the API.
      await expect
        .poll(() => row.getByTestId('bmc-last-check').textContent(), { timeout: timeout(20_000) })
        .toMatch(/^ok · /);
      expect(newBmc.requests.length).toBeGreaterThan(0);
      const stored = await apiCall('GET', `/api/v1/bmcs/${NEW_BMC}`);
      expect(stored.body).toMatchObject({ address: newBmc.url, username: 'admin', insecure: true });
      await checkPage('15-bmc-added');
    });

    it('gives a viewer every page but no write controls; the API refuses a write the page offered', async () => {
      const viewer = await context.newPage();
      watch(viewer);
      try {
        await signIn(viewer, viewerToken);
        expect(await viewer.getByRole('banner').textContent()).toContain('lab-visitor (viewer)');
        await expect
          .poll(() => viewer.locator('.vbody tbody tr[data-serial]').count(), { timeout: timeout(20_000) })
          .toBe(10); // the nine registered and the held REV
        expect(await viewer.getByRole('checkbox').count()).toBe(0);
        expect(await viewer.getByRole('button', { name: /Provision/ }).count()).toBe(0);
        await checkPage('16-viewer-fleet', viewer);

        await viewer.getByRole('link', { name: 'Jobs', exact: true }).click();
        await viewer.locator('tbody tr a').first().click();
        await viewer.getByRole('heading', { name: /^Job [0-9a-f]{8} \w+/ }).waitFor();
        await viewer.locator('tbody tr[data-serial]').first().waitFor();
        expect(await viewer.getByRole('button', { name: /Cancel job|Retry failed devices/ }).count()).toBe(0);

        await viewer.getByRole('link', { name: 'BMCs', exact: true }).click();
        await viewer.locator(`tr[data-bmc="${NEW_BMC}"]`).waitFor();
        expect(await viewer.getByRole('button', { name: 'Report' }).count()).toBe(4);
        expect(await viewer.getByRole('button', { name: /Check/ }).count()).toBe(0);
        expect(await viewer.getByRole('form', { name: 'Add a BMC' }).count()).toBe(0);
        expect(await viewer.getByRole('textbox').count()).toBe(0);
        await checkPage('17-viewer-bmcs', viewer);
      } finally {
        await viewer.close();
      }

      // The API checks the role of every write itself: a page that offered the viewer a write
      // (here: told by a rewritten session answer that the token is an operator's) gets a
      // refusal it shows in words, and the viewer stays signed in.
      const fooled = await context.newPage();
      watch(fooled);
      try {
        await fooled.route('**/api/v1/session', async (route) => {
          const r = await route.fetch();
          await route.fulfill({ response: r, json: { ...(await r.json()), role: 'operator' } });
        });
        await signIn(fooled, viewerToken);
        await fooled.getByRole('link', { name: 'BMCs', exact: true }).click();
        await fooled.locator(`tr[data-bmc="${NEW_BMC}"]`).getByRole('button', { name: 'Check' }).click();
        await expect
          .poll(() => fooled.getByRole('alert').first().textContent(), { timeout: timeout(20_000) })
          .toBe(
            `Could not check ${NEW_BMC}. Not allowed: this needs the operator role; the token has viewer`,
          );
        await fooled.getByRole('heading', { name: 'BMCs' }).waitFor();
        await checkPage('18-viewer-refused', fooled);
      } finally {
        await fooled.close();
      }
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
      await checkPage('19-device-idevid-revoked');

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
      await page.screenshot({ path: join(shots, '20-api-gone.png') });
      // The fleet stays on screen (marked stale), never a blank page.
      expect(await page.getByTestId('fleet-summary').textContent()).toMatch(/^10 devices/);
    });
  },
);
