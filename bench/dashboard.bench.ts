/**
 * `BENCH=dashboard npm run bench`: the dashboard's fleet page with 1,000
 * devices in headless Chromium (Debian's `/usr/bin/chromium`, driven by
 * playwright-core) against `dpu-ztp serve` on PGlite. Measures the time from
 * navigation to the fleet table rendered (devices fetched, live stream open),
 * how long a search keystroke takes to filter 1,000 rows, and the time from
 * the first of 100 device changes (PUT, each a live `device.updated` event) to
 * the page showing all 100, with the longest main-thread task in each phase
 * (a task over 50 ms is what a person feels as a freeze). Goal: interactive
 * under 1 s. Prints the load average beside the numbers: the machine is shared.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Report } from './run.js';
import { CHROMIUM, launchChromium } from './chromium.js';
import { spawnServe } from './serve-process.js';

export default async function bench(report: Report): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    report({ name: 'dashboard_fleet', skipped: `no ${CHROMIUM} (apt-get install chromium)` });
    return;
  }
  const n = Number(process.env.BENCH_DASHBOARD_DEVICES ?? 1000);
  const env = { ...process.env };
  delete env.DATABASE_URL;
  const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-bench-dashboard-'));
  const serve = await spawnServe(['--data-dir', dir], env, { timeoutMs: 180_000, stderr: 'collect' });
  const context = await launchChromium(mkdtempSync(join(dir, 'chromium-')));
  try {
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const auth = { authorization: `Bearer ${token}` };
    const serials = Array.from({ length: n }, (_, i) => `BENCH-${String(i).padStart(5, '0')}`);
    const ndjson = serials
      .map((s, i) => JSON.stringify({ serial: s, labels: { rack: `r${i % 40}` }, hwModel: 'bench-dpu' }))
      .join('\n');
    const imp = await fetch(`${serve.api}/api/v1/devices:import?atomic=true`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/x-ndjson' },
      body: ndjson,
    });
    if (!imp.ok) throw new Error(`import: ${imp.status} ${await imp.text()}`);

    const page = context.pages()[0] ?? (await context.newPage());
    // The signed-in state, as the sign-in form leaves it (session storage, never the URL).
    // Page-side code is passed as text: this file is compiled without the DOM types.
    await context.addInitScript(`
      sessionStorage.setItem('dpu-ztp.token', ${JSON.stringify(token)});
      globalThis.__longest = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) globalThis.__longest = Math.max(globalThis.__longest, e.duration);
      }).observe({ type: 'longtask', buffered: true });
    `);
    const longest = async () =>
      Math.round(
        Number(
          await page.evaluate(
            '(() => { const v = globalThis.__longest; globalThis.__longest = 0; return v; })()',
          ),
        ),
      );
    // Locator waits run in Playwright's own world: string predicates would be eval, which the CSP forbids.
    const shown = (k: number) =>
      page
        .locator('.toolbar .muted')
        .filter({ hasText: new RegExp(`^${k} shown$`) })
        .waitFor({ timeout: 120_000 });

    await page.goto(`${serve.api}/`);
    await page
      .getByTestId('fleet-summary')
      .filter({ hasText: new RegExp(`^${n} devices`) })
      .waitFor({ timeout: 120_000 });
    const mark = async (name: string) =>
      Math.round(
        Number(await page.evaluate(`performance.getEntriesByName('dpu-ztp:${name}')[0]?.startTime ?? -1`)),
      );
    const firstRender = await mark('fleet-rendered');
    const fetchStart = await mark('fleet-fetch-start');
    const fetched = await mark('fleet-fetched');
    const rowsInDom = await page.locator('tbody tr[data-serial]').count();
    const loadLongest = await longest();
    await page.getByText('live', { exact: true }).waitFor({ timeout: 60_000 });

    // A keystroke in the search box over every device.
    const search = page.getByLabel('Search');
    const t0 = performance.now();
    await search.fill('r7');
    await shown(serials.filter((_, i) => i % 40 === 7).length);
    const searchMs = performance.now() - t0;

    // 100 live updates: each PUT is a device.updated event the page applies without reloading.
    await search.fill('upd=');
    await shown(0);
    await longest();
    const u0 = performance.now();
    const changed = serials.slice(0, 100);
    await Promise.all(
      changed.map((s, i) =>
        fetch(`${serve.api}/api/v1/devices/${s}`, {
          method: 'PUT',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ labels: { rack: `r${i % 40}`, upd: String(i) } }),
        }).then((r) => r.text()),
      ),
    );
    const putsMs = performance.now() - u0;
    await shown(changed.length);
    const updatesMs = performance.now() - u0;
    const updateLongest = await longest();
    await page.screenshot({ path: join(dir, 'fleet.png') });
    report({
      name: 'dashboard_fleet',
      devices: n,
      first_render_ms: firstRender,
      of_which_before_fetch_ms: fetchStart,
      of_which_api_fetch_ms: fetched - fetchStart,
      of_which_render_ms: firstRender - fetched,
      rows_in_dom: rowsInDom,
      longest_task_during_load_ms: loadLongest,
      search_keystroke_ms: Math.round(searchMs),
      live_updates: changed.length,
      live_updates_visible_ms: Math.round(updatesMs),
      of_which_server_puts_ms: Math.round(putsMs),
      longest_task_during_updates_ms: updateLongest,
      goal: 'fleet page interactive under 1 s',
      loadavg_1m: +(loadavg()[0] ?? 0).toFixed(2),
    });
  } finally {
    await context.close();
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
