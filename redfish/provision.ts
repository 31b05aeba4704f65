/**
 * Provisioning a BMC end to end: probe, choose a strategy from what the BMC
 * offers (or take the operator's), run it; and the teardown once the device
 * has installed (eject media, clear the override).
 */
import { Attr, withSpan } from '../otel/index.js';
import type { RedfishClient } from './client.js';
import { RedfishError } from './errors.js';
import { type BmcProbe, probeBmc } from './probe.js';
import { assessStrategies, cdSlots, type StrategyAssessment } from './strategies/assess.js';
import { setBootOverride } from './strategies/boot.js';
import {
  DEFAULT_WAITS,
  type ImageSpec,
  runStep,
  type StepEvent,
  type StrategyContext,
  type StrategyName,
  type StrategyWaits,
} from './strategies/context.js';
import { runHttpBoot } from './strategies/http-boot.js';
import { runImagePush } from './strategies/image-push.js';
import { ejectAndConfirm } from './strategies/media.js';
import { runVirtualMedia } from './strategies/virtual-media.js';

/** Options of {@link provisionBmc}. */
export interface ProvisionOptions {
  readonly image: ImageSpec;
  /** `auto` (default) picks the first usable strategy. */
  readonly strategy?: StrategyName | 'auto';
  readonly systemId?: string;
  readonly profileId?: string;
  readonly waits?: Partial<StrategyWaits>;
  /**
   * Bound on the whole run — probe, every step, wait, request and retry delay — in milliseconds. When it
   * passes, the run stops at once with REDFISH_ERR_DEADLINE naming the step it was in. Each wait keeps
   * its own bound (`waits`) too; whichever is nearer applies.
   */
  readonly timeoutMs?: number;
  readonly onStep?: (event: StepEvent) => void;
}

/** What {@link provisionBmc} did. */
export interface ProvisionResult {
  readonly strategy: StrategyName;
  readonly systemId: string;
  readonly serial: string;
  readonly profile: string;
  readonly assessments: readonly StrategyAssessment[];
  readonly probe: BmcProbe;
}

const RUNNERS: Record<StrategyName, (ctx: StrategyContext) => Promise<void>> = {
  'virtual-media': runVirtualMedia,
  'image-push': runImagePush,
  'http-boot': runHttpBoot,
};

/** Picks the strategy: the requested one if usable, else the first usable; REDFISH_ERR_NO_STRATEGY otherwise. */
export function chooseStrategy(
  assessments: readonly StrategyAssessment[],
  requested: StrategyName | 'auto' = 'auto',
): StrategyName {
  const explain = () => assessments.map((a) => `${a.strategy}: ${a.reasons.join('; ')}`).join(' | ');
  if (requested !== 'auto') {
    const a = assessments.find((x) => x.strategy === requested);
    if (!a?.usable)
      throw new RedfishError(
        'REDFISH_ERR_NO_STRATEGY',
        `strategy ${requested} will not work on this BMC: ${explain()}`,
      );
    return requested;
  }
  const first = assessments.find((a) => a.usable);
  if (!first)
    throw new RedfishError(
      'REDFISH_ERR_NO_STRATEGY',
      `no provisioning strategy works on this BMC: ${explain()}`,
    );
  return first.strategy;
}

function mergeWaits(w?: Partial<StrategyWaits>): StrategyWaits {
  return { ...DEFAULT_WAITS, ...w };
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * The overall deadline of one run: a timer that aborts with REDFISH_ERR_DEADLINE naming the step then in
 * progress (`where()`), so every request and wait of the run's client view fails with it.
 */
function startDeadline(
  timeoutMs: number,
  where: () => string,
): { readonly signal: AbortSignal; readonly dispose: () => void } {
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs))
    throw new RedfishError('REDFISH_ERR_CONFIG', `timeoutMs must be a positive number, not ${timeoutMs}`);
  const ac = new AbortController();
  const timer = setTimeout(
    () =>
      ac.abort(
        new RedfishError(
          'REDFISH_ERR_DEADLINE',
          `provisioning did not finish within ${seconds(timeoutMs)}: stopped during ${where()}`,
        ),
      ),
    timeoutMs,
  );
  return { signal: ac.signal, dispose: () => clearTimeout(timer) };
}

/**
 * Provisions one BMC: probes it, chooses a strategy, and runs it until the system was reset into the
 * image and reports On. Every step is a span and an `onStep` event.
 */
export async function provisionBmc(
  client: RedfishClient,
  options: ProvisionOptions,
): Promise<ProvisionResult> {
  let current = 'probe';
  let since = Date.now();
  const deadline =
    options.timeoutMs === undefined
      ? undefined
      : startDeadline(options.timeoutMs, () => `${current} (after ${seconds(Date.now() - since)} in it)`);
  const bmc = deadline ? client.withSignal(deadline.signal) : client;
  const onStep = (e: StepEvent) => {
    if (e.status === 'start') {
      current = `${e.strategy} step ${e.step}`;
      since = Date.now();
    }
    options.onStep?.(e);
  };
  try {
    return await withSpan('redfish.provision', { [Attr.bmcUrl]: client.origin }, async (span) => {
      const probe = await probeBmc(bmc, {
        ...(options.systemId ? { systemId: options.systemId } : {}),
        ...(options.profileId ? { profileId: options.profileId } : {}),
      });
      const assessments = assessStrategies(probe, options.image.url);
      const strategy = chooseStrategy(assessments, options.strategy);
      span.setAttribute(Attr.redfishStrategy, strategy);
      span.setAttribute(Attr.bmcVendorProfile, probe.profile.id);
      const ctx: StrategyContext = {
        client: bmc,
        probe,
        image: options.image,
        waits: mergeWaits(options.waits),
        onStep,
      };
      await RUNNERS[strategy](ctx);
      return {
        strategy,
        systemId: probe.system.id,
        serial: probe.system.serial,
        profile: probe.profile.id,
        assessments,
        probe,
      };
    });
  } finally {
    deadline?.dispose();
  }
}

/** Options of {@link finishProvisioning}. */
export interface FinishOptions {
  readonly systemId?: string;
  readonly profileId?: string;
  readonly waits?: Partial<StrategyWaits>;
  readonly onStep?: (event: StepEvent) => void;
}

/**
 * Teardown after the device installed (DESIGN.md: the job "ejects media, clears boot override"): ejects
 * every CD/DVD slot of the system and sets the boot override to None. Safe to repeat.
 */
export async function finishProvisioning(client: RedfishClient, options: FinishOptions = {}): Promise<void> {
  const probe = await probeBmc(client, {
    ...(options.systemId ? { systemId: options.systemId } : {}),
    ...(options.profileId ? { profileId: options.profileId } : {}),
  });
  const waits = mergeWaits(options.waits);
  const ctx = { client, probe, ...(options.onStep ? { onStep: options.onStep } : {}) };
  const slots = cdSlots(probe);
  if (slots.length > 0)
    await runStep(ctx, 'cleanup', 'eject', async () => {
      const done: string[] = [];
      for (const s of slots) done.push(await ejectAndConfirm(client, s, probe.profile, waits.media));
      return done.join('; ');
    });
  if (probe.system.hasBoot)
    await runStep(ctx, 'cleanup', 'clear-boot-override', () =>
      setBootOverride(client, probe, 'none', 'disabled'),
    );
}
