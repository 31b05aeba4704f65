/**
 * Strategy 1, virtual media: eject and confirm, insert and confirm, one-time
 * boot override to CD in UEFI mode, reboot, confirm power. Ironic's order
 * (`boot.py:prepare_ramdisk`), with every wait bounded.
 */
import { RedfishError } from '../errors.js';
import { cdSlots } from './assess.js';
import { setBootOverride } from './boot.js';
import { runStep, type StrategyContext } from './context.js';
import { ejectAndConfirm, insertAndConfirm } from './media.js';
import { rebootAndConfirm } from './power.js';

/** Runs the virtual-media strategy. */
export async function runVirtualMedia(ctx: StrategyContext): Promise<void> {
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
  await runStep(ctx, 'virtual-media', 'boot-override', () => setBootOverride(client, probe, 'cd', 'once'));
  await runStep(ctx, 'virtual-media', 'reset', () => rebootAndConfirm(client, probe.system, waits.power));
}
