/**
 * After an image push and its reset: wait, bounded, until the system reports the OS running through
 * `BootProgress.OemLastState` (the profile names the value; BlueField `OsIsRunning`).
 */
import type { RedfishClient } from '../client.js';
import { type BootProgress, bootProgressOf, type SystemInfo } from '../probe.js';
import { type PollOptions, pollUntil } from '../wait.js';

/** The system's BootProgress now (undefined when it reports none). */
export async function readBootProgress(
  client: RedfishClient,
  system: SystemInfo,
): Promise<BootProgress | undefined> {
  return bootProgressOf((await client.get(system.path)).body);
}

/**
 * Polls until `OemLastState` is `want`, counting only a state reached after the reset: `before` (read
 * just before it) may still say `want` — the BlueField BMC refreshes BootProgress every ~30 s — so
 * `want` counts once another state was seen since, or `LastStateTime` moved on. Returns a detail line
 * with the states seen; REDFISH_ERR_WAIT_TIMEOUT (with the last state) when `poll` runs out.
 */
export async function waitForOemLastState(
  client: RedfishClient,
  system: SystemInfo,
  want: string,
  before: BootProgress | undefined,
  poll: PollOptions,
): Promise<string> {
  const seen: string[] = [];
  let left = false;
  let last: BootProgress | undefined;
  await pollUntil(
    `${system.id} BootProgress.OemLastState ${want}`,
    poll,
    async () => {
      last = await readBootProgress(client, system);
      const state = last?.oemLastState ?? '';
      if (state && seen.at(-1) !== state) seen.push(state);
      if (state !== want) left = true;
      const newer = !!last?.lastStateTime && last.lastStateTime !== before?.lastStateTime;
      return state === want && (left || newer || !before) ? true : undefined;
    },
    () =>
      last
        ? `${last.oemLastState || last.lastState || 'no state'}${!left && last.oemLastState === want ? ' left over from before the reset' : ''}`
        : 'no BootProgress',
    client.signal,
  );
  return `BootProgress.OemLastState ${want} (seen: ${seen.join(' → ')})`;
}
