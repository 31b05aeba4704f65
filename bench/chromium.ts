/**
 * Debian's headless Chromium driven by playwright-core, as the dashboard benchmark and
 * the dashboard's browser test both start it. The flags keep it off the network this
 * machine does not have (background networking, component updates, sync, QUIC), and
 * `--no-sandbox` lets it run as root in a container.
 */
import type { BrowserContext } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser (playwright-core downloads none). */
export const CHROMIUM = '/usr/bin/chromium';

/** A headless Chromium with its own profile in `userDataDir`, at a laptop-sized viewport. */
export async function launchChromium(userDataDir: string): Promise<BrowserContext> {
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1366, height: 768 },
  });
}
