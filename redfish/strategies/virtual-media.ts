/**
 * Strategy 1, virtual media: eject and confirm, insert and confirm, one-time
 * boot override to CD in UEFI mode, reboot, confirm power. Ironic's order
 * (`boot.py:prepare_ramdisk`), with every wait bounded.
 */
import { RedfishError } from '../errors.js';
import { cdSlots } from './assess.js';
import { setBootOverride } from './boot.js';
import { runStep, type StrategyContext, type StrategyPhases } from './context.js';
import { ejectAndConfirm, insertAndConfirm } from './media.js';
import { rebootAndConfirm } from './power.js';

/** The virtual-media strategy in phases: eject + insert, boot override to CD once, reset. */
export const virtualMediaPhases: StrategyPhases = {
  async prepare(ctx) {
    const { client, probe, waits } = ctx;
    const slots = cdSlots(probe);
    const slot = slots[0];
    if (!slot)
      throw new RedfishError('REDFISH_ERR_NO_MEDIA_SLOT', `no CD/DVD virtual media slot on ${probe.origin}`);
    // Stale media anywhere may be booted instead of ours: eject every CD/DVD slot first (Ironic, bmclib, DPF).
    await runStep(ctx, 'virtual-media', 'eject', async () => {
      const done: string[] = [];
      for (const s of slots) done.push(await ejectAndConfirm(client, s, probe.profile, waits.media));
      return done.join('; ');
    });
    await runStep(ctx, 'virtual-media', 'insert', () =>
      insertAndConfirm(client, slot, probe.profile, ctx.image, waits.media),
    );
  },
  async bootOverride(ctx) {
    await runStep(ctx, 'virtual-media', 'boot-override', () =>
      setBootOverride(ctx.client, ctx.probe, 'cd', 'once'),
    );
  },
  async reset(ctx, hooks) {
    await runStep(ctx, 'virtual-media', 'reset', () =>
      rebootAndConfirm(ctx.client, ctx.probe.system, ctx.waits.power, hooks),
    );
  },
};

/** Runs the virtual-media strategy. */
export async function runVirtualMedia(ctx: StrategyContext): Promise<void> {
  await virtualMediaPhases.prepare(ctx);
  await virtualMediaPhases.bootOverride(ctx);
  await virtualMediaPhases.reset(ctx);
}
