/**
 * Strategy 3, UEFI HTTP boot: `Boot.HttpBootUri` with override target
 * `UefiHttp` once (ComputerSystem v1_9), then reboot.
 */
import { setBootOverride } from './boot.js';
import { runStep, type StrategyContext } from './context.js';
import { rebootAndConfirm } from './power.js';

/** Runs the http-boot strategy. */
export async function runHttpBoot(ctx: StrategyContext): Promise<void> {
  const { client, probe, waits, image } = ctx;
  await runStep(ctx, 'http-boot', 'boot-override', () =>
    setBootOverride(client, probe, 'uefi-http', 'once', { HttpBootUri: image.url }),
  );
  await runStep(ctx, 'http-boot', 'reset', () => rebootAndConfirm(client, probe.system, waits.power));
}
