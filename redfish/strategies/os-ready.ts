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
 * `want` counts once another state was seen since (in `sinceReset`, the reads made while the reset was
 * confirmed, or in this wait's polls), or `LastStateTime` moved on. Returns a detail line
 * with the states seen; REDFISH_ERR_WAIT_TIMEOUT (with the last state) when `poll` runs out.
 */
export async function waitForOemLastState(
  client: RedfishClient,
  system: SystemInfo,
  want: string,
  before: BootProgress | undefined,
  poll: PollOptions,
  sinceReset: readonly BootProgress[] = [],
): Promise<string> {
  const seen: string[] = [];
  let left = false;
  // What was read between the reset and this wait (while power was confirmed) counts as well: a
  // wait that could only succeed by catching a short-lived state in its own polls would wait out
  // its whole bound for a BMC whose Arm is back at `want` before the first poll.
  for (const p of sinceReset) {
    const state = p.oemLastState ?? '';
    if (state && seen.at(-1) !== state) seen.push(state);
    if (state !== want || (!!p.lastStateTime && p.lastStateTime !== before?.lastStateTime)) left = true;
  }
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
