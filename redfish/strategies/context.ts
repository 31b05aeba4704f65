/**
 * What every strategy step receives, and `runStep`, which wraps a step in an
 * OTEL span and reports it to the caller (the CLI prints these lines).
 */
import { Attr, withSpan } from '../../otel/index.js';
import type { RedfishClient, RedfishJson } from '../client.js';
import type { BmcProbe } from '../probe.js';
import type { PollOptions } from '../wait.js';

/** A provisioning strategy. */
export type StrategyName = 'virtual-media' | 'image-push' | 'http-boot';

/** All strategies in the order they are recommended (DESIGN.md, Provisioning strategies). */
export const STRATEGY_ORDER: readonly StrategyName[] = Object.freeze([
  'virtual-media',
  'image-push',
  'http-boot',
]);

/** The image to boot, and credentials for the image server if it needs them. */
export interface ImageSpec {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
}

/** Bounds for every wait in a strategy. */
export interface StrategyWaits {
  /** Power state reached after a reset. */
  readonly power: PollOptions;
  /** Media inserted / ejected confirmation. */
  readonly media: PollOptions;
  /** SimpleUpdate task. */
  readonly task: PollOptions;
  /** The OS reported running after an image push (profile `imagePush.awaitOemLastState`). */
  readonly os: PollOptions;
}

/** Defaults: generous for real BMCs (Ironic waits minutes for power and tasks). */
export const DEFAULT_WAITS: StrategyWaits = Object.freeze({
  power: Object.freeze({ timeoutMs: 5 * 60_000, intervalMs: 2_000, maxIntervalMs: 10_000 }),
  media: Object.freeze({ timeoutMs: 60_000, intervalMs: 1_000, maxIntervalMs: 5_000 }),
  task: Object.freeze({ timeoutMs: 45 * 60_000, intervalMs: 2_000, maxIntervalMs: 15_000 }),
  // A BFB install takes minutes (NVIDIA: plus ~3 min for cloud-init); the BlueField BMC refreshes
  // BootProgress every ~30 s, so polling faster than 15 s gains nothing.
  os: Object.freeze({ timeoutMs: 30 * 60_000, intervalMs: 2_000, maxIntervalMs: 15_000 }),
});

/**
 * One step as reported to the caller. `fallback` follows the `failed` step of a strategy that
 * `--strategy auto` gives up on: `error` says why, `next` is the strategy tried next.
 */
export interface StepEvent {
  readonly strategy: StrategyName | 'cleanup';
  readonly step: string;
  readonly status: 'start' | 'done' | 'failed' | 'fallback';
  /** What was done / found (e.g. "InsertMedia on …; BMC asked for TransferMethod: added it"). */
  readonly detail?: string;
  readonly error?: unknown;
  /** With `fallback`: the strategy tried next. */
  readonly next?: StrategyName;
}

/**
 * Durable memory of a phase in progress: what it already asked of the BMC, so
 * that the same phase run again after a crash continues (polls the task it
 * started) instead of asking again (a second SimpleUpdate would restart a
 * 20-minute BFB push). Values are small JSON. A durable caller (a provisioning
 * job) keeps them per attempt; without one a phase always starts afresh.
 */
export interface PhaseCheckpoint {
  get(name: string): unknown;
  set(name: string, value: unknown): Promise<void>;
}

/** What a strategy runs with. */
export interface StrategyContext {
  readonly client: RedfishClient;
  readonly probe: BmcProbe;
  readonly image: ImageSpec;
  readonly waits: StrategyWaits;
  readonly onStep?: (event: StepEvent) => void;
  readonly checkpoint?: PhaseCheckpoint;
}

/**
 * A strategy split at the points a durable caller (a provisioning job) records and resumes: each
 * phase is a unit that is safe to redo after a crash, and the reset is its own phase so it can be
 * sent exactly once per attempt. `bmc provision` runs them back to back (`runStrategy`).
 */
export interface StrategyPhases {
  /** Everything before the boot override: eject and insert media, or push the image and await its task. */
  prepare(ctx: StrategyContext): Promise<void>;
  /** The one-time boot override (none for an image push: the BMC boots what it installed). */
  bootOverride(ctx: StrategyContext): Promise<void>;
  /**
   * Reset into the image and confirm the system is On. `hooks.beforeReset` runs just before the reset
   * is sent (a job records it, so a resumed run never resets twice).
   */
  reset(ctx: StrategyContext, hooks?: ResetHooks): Promise<void>;
}

/** Called around the reset of {@link StrategyPhases.reset}. */
export interface ResetHooks {
  /** Runs just before ComputerSystem.Reset is POSTed; a throw stops the reset. */
  readonly beforeReset?: () => Promise<void>;
  /** Sees each read of the system while the reset is confirmed (e.g. BootProgress moving). */
  readonly onSystem?: (system: RedfishJson) => void;
}

/**
 * Runs one named step in a span (`redfish.step.<name>`) and reports start/done/failed. The step returns
 * a detail line (or nothing).
 */
export async function runStep(
  ctx: Pick<StrategyContext, 'client' | 'probe' | 'onStep'>,
  strategy: StepEvent['strategy'],
  step: string,
  fn: () => Promise<string | undefined>,
): Promise<string | undefined> {
  const report = (e: StepEvent) => {
    try {
      ctx.onStep?.(e);
    } catch {
      // A reporting callback must never change the outcome.
    }
  };
  report({ strategy, step, status: 'start' });
  try {
    const detail = await withSpan(
      `redfish.step.${step}`,
      {
        [Attr.bmcUrl]: ctx.client.origin,
        [Attr.redfishStrategy]: strategy,
        [Attr.redfishStep]: step,
        [Attr.redfishSystem]: ctx.probe.system.id,
        [Attr.bmcVendorProfile]: ctx.probe.profile.id,
      },
      fn,
    );
    report({ strategy, step, status: 'done', ...(detail ? { detail } : {}) });
    return detail;
  } catch (error) {
    report({ strategy, step, status: 'failed', error });
    throw error;
  }
}
