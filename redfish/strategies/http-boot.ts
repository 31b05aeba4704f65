/**
 * Strategy 3, UEFI HTTP boot: `Boot.HttpBootUri` with override target
 * `UefiHttp` once (ComputerSystem v1_9), then reboot.
 */
import { setBootOverride } from './boot.js';
import { runStep, type StrategyContext, type StrategyPhases } from './context.js';
import { rebootAndConfirm } from './power.js';

/** The http-boot strategy in phases: nothing to prepare, `HttpBootUri` + UefiHttp once, reset. */
export const httpBootPhases: StrategyPhases = {
  async prepare() {
    // The URI travels with the override (one PATCH of Boot), as the single-shot flow always did.
  },
  async bootOverride(ctx) {
    await runStep(ctx, 'http-boot', 'boot-override', () =>
      setBootOverride(ctx.client, ctx.probe, 'uefi-http', 'once', { HttpBootUri: ctx.image.url }),
    );
  },
  async reset(ctx, hooks) {
    await runStep(ctx, 'http-boot', 'reset', () =>
      rebootAndConfirm(ctx.client, ctx.probe.system, ctx.waits.power, hooks),
    );
  },
};

/** Runs the http-boot strategy. */
export async function runHttpBoot(ctx: StrategyContext): Promise<void> {
  await httpBootPhases.prepare(ctx);
  await httpBootPhases.bootOverride(ctx);
  await httpBootPhases.reset(ctx);
}
