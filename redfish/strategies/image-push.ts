/**
 * Strategy 2, image push: UpdateService.SimpleUpdate of the OS image to the
 * BMC's OS target (BlueField `FirmwareInventory/DPU_OS` for a BFB), task
 * polling, then reboot and, where the profile asks and the system reports
 * BootProgress, wait for the OS to run — for DPU BMCs without virtual media.
 */
import type { RedfishJson, RedfishResponse } from '../client.js';
import { RedfishError } from '../errors.js';
import { transferProtocolOfUrl, transferProtocolToRedfish } from '../vocabulary.js';
import { type BootProgress, bootProgressOf } from '../probe.js';
import { runStep, type StrategyContext, type StrategyPhases } from './context.js';
import { readBootProgress, waitForOemLastState } from './os-ready.js';
import { rebootAndConfirm } from './power.js';

/** The image-push strategy in phases: SimpleUpdate and its task, no boot override, reset. */
export const imagePushPhases: StrategyPhases = {
  async prepare(ctx) {
    const { client, probe, waits, image } = ctx;
    const u = probe.update;
    const target = u?.osTargets[0];
    if (!u || !target)
      throw new RedfishError('REDFISH_ERR_NO_STRATEGY', 'no SimpleUpdate OS target on this BMC');
    const hook = probe.profile.hooks.beforeImagePush;
    if (hook) await runStep(ctx, 'image-push', 'prepare', () => hook({ client, probe }));
    let accepted: RedfishResponse | undefined;
    const saved = acceptedOf(ctx.checkpoint?.get('simple-update'));
    if (saved) {
      // Asked before a crash: follow that task rather than push the image a second time.
      accepted = saved;
      ctx.onStep?.({
        strategy: 'image-push',
        step: 'simple-update',
        status: 'done',
        detail: `already accepted (${saved.location ?? `status ${saved.status}`}): following its task`,
      });
    } else
      await runStep(ctx, 'image-push', 'simple-update', async () => {
        const path = target.replace(/\/$/, '');
        const body: RedfishJson = {
          ImageURI: image.url,
          Targets: [probe.profile.imagePush.targetsLeadingSlash ? path : path.replace(/^\//, '')],
        };
        // "TransferProtocol is ignored if the URI provided in ImageURI contains a scheme" — but BMCs that list
        // it (BlueField) expect it, so send it when it is offered.
        const proto = transferProtocolOfUrl(image.url);
        if (proto && u.protocols.includes(proto)) body.TransferProtocol = transferProtocolToRedfish(proto);
        if (image.username !== undefined) {
          // SimpleUpdate spells it `Username` (UpdateService v1_4), unlike InsertMedia's `UserName`.
          body.Username = image.username;
          body.Password = image.password ?? '';
        }
        const res = await client.post(u.simpleUpdateTarget, body);
        accepted = res;
        await ctx.checkpoint?.set('simple-update', {
          status: res.status,
          location: res.location ?? null,
          body: res.body ?? {},
        });
        return `POST ${u.simpleUpdateTarget} → ${res.status}${res.location ? ` (monitor ${res.location})` : ''}`;
      });
    const res = accepted;
    if (!res) throw new RedfishError('REDFISH_ERR_BAD_RESPONSE', 'SimpleUpdate returned nothing');
    await runStep(ctx, 'image-push', 'task', async () => {
      const task = await client.waitForTask(res, waits.task);
      return `task ${String(task.Id ?? '')} ${String(task.TaskState ?? 'done')}`;
    });
  },
  async bootOverride() {
    // None: the BMC boots the image it installed (NVIDIA DPF sets no override after a BFB push).
  },
  async reset(ctx, hooks) {
    await runStep(ctx, 'image-push', 'reset', () =>
      rebootAndConfirm(ctx.client, ctx.probe.system, ctx.waits.power, hooks),
    );
  },
};

/** A SimpleUpdate answer as a checkpoint stored it, back in the shape `waitForTask` takes. */
function acceptedOf(v: unknown): RedfishResponse | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const o = v as { status?: unknown; location?: unknown; body?: unknown };
  if (typeof o.status !== 'number') return undefined;
  const body = o.body && typeof o.body === 'object' ? (o.body as RedfishJson) : {};
  return {
    status: o.status,
    headers: {},
    body,
    etag: undefined,
    location: typeof o.location === 'string' ? o.location : undefined,
  };
}

/** Runs the image-push strategy. */
export async function runImagePush(ctx: StrategyContext): Promise<void> {
  const { client, probe, waits } = ctx;
  await imagePushPhases.prepare(ctx);
  const want = probe.profile.imagePush.awaitOemLastState;
  // Read before the reset: a BootProgress still showing the old OS must not count as the new one.
  const before = want ? await readBootProgress(client, probe.system) : undefined;
  // Every read of the system while the reset is confirmed is evidence too: a BootProgress seen
  // leaving `want` there (BootRom right after the reset) proves the Arm restarted, even when it is
  // back at `want` before the first poll of the wait below and the BMC reports no LastStateTime.
  const seen: BootProgress[] = [];
  await imagePushPhases.reset(ctx, {
    onSystem: (body) => {
      const p = bootProgressOf(body);
      if (p) seen.push(p);
    },
  });
  if (!want) return;
  await runStep(ctx, 'image-push', 'os-running', async () =>
    before
      ? waitForOemLastState(client, probe.system, want, before, waits.os, seen)
      : `not waited: ${probe.system.id} reports no BootProgress`,
  );
}
