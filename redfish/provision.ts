/**
 * Provisioning a BMC end to end: probe, choose a strategy from what the BMC
 * offers (or take the operator's), run it; and the teardown once the device
 * has installed (eject media, clear the override).
 */
import { Attr, withSpan } from '../otel/index.js';
import type { RedfishClient } from './client.js';
import { RedfishError, type RedfishErrorCode } from './errors.js';
import { type BmcProbe, probeBmc } from './probe.js';
import { assessStrategies, cdSlots, type StrategyAssessment } from './strategies/assess.js';
import { setBootOverride } from './strategies/boot.js';
import {
  DEFAULT_WAITS,
  type ImageSpec,
  runStep,
  STRATEGY_ORDER,
  type StepEvent,
  type StrategyContext,
  type StrategyName,
  type StrategyWaits,
} from './strategies/context.js';
import type { StrategyPhases } from './strategies/context.js';
import { httpBootPhases, runHttpBoot } from './strategies/http-boot.js';
import { imagePushPhases, runImagePush } from './strategies/image-push.js';
import { ejectAndConfirm } from './strategies/media.js';
import { runVirtualMedia, virtualMediaPhases } from './strategies/virtual-media.js';

/** Options of {@link provisionBmc}. */
export interface ProvisionOptions {
  readonly image: ImageSpec;
  /**
   * `auto` (default) runs the first usable strategy and, when it fails partway for a reason of its own,
   * the next usable one (in STRATEGY_ORDER); a named strategy runs alone.
   */
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

/** One strategy run by {@link provisionBmc}: the step it failed in and why, or neither when it worked. */
export interface StrategyAttempt {
  readonly strategy: StrategyName;
  readonly failedStep?: string;
  readonly error?: RedfishError;
}

/** What {@link provisionBmc} did. */
export interface ProvisionResult {
  /** The strategy that reset the system into the image. */
  readonly strategy: StrategyName;
  /** Every strategy run, in order; the last one worked (earlier ones failed and were fallen back from). */
  readonly attempts: readonly StrategyAttempt[];
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

/**
 * Each strategy in resumable phases (prepare, boot override, reset): a provisioning job records and
 * resumes between them; {@link provisionBmc} runs them back to back through the same code.
 */
export const STRATEGY_PHASES: Readonly<Record<StrategyName, StrategyPhases>> = Object.freeze({
  'virtual-media': virtualMediaPhases,
  'image-push': imagePushPhases,
  'http-boot': httpBootPhases,
});

/**
 * The strategies to run, in order: the requested one alone if usable; with `auto` every usable one in
 * STRATEGY_ORDER. REDFISH_ERR_NO_STRATEGY when there is none.
 */
export function strategyCandidates(
  assessments: readonly StrategyAssessment[],
  requested: StrategyName | 'auto' = 'auto',
): StrategyName[] {
  const explain = () => assessments.map((a) => `${a.strategy}: ${a.reasons.join('; ')}`).join(' | ');
  const usable = (s: StrategyName) => assessments.some((a) => a.strategy === s && a.usable);
  if (requested !== 'auto') {
    if (!usable(requested))
      throw new RedfishError(
        'REDFISH_ERR_NO_STRATEGY',
        `strategy ${requested} will not work on this BMC: ${explain()}`,
      );
    return [requested];
  }
  const all = STRATEGY_ORDER.filter(usable);
  if (all.length === 0)
    throw new RedfishError(
      'REDFISH_ERR_NO_STRATEGY',
      `no provisioning strategy works on this BMC: ${explain()}`,
    );
  return all;
}

/** Picks the strategy: the requested one if usable, else the first usable; REDFISH_ERR_NO_STRATEGY otherwise. */
export function chooseStrategy(
  assessments: readonly StrategyAssessment[],
  requested: StrategyName | 'auto' = 'auto',
): StrategyName {
  return strategyCandidates(assessments, requested)[0]!;
}

/**
 * Failures of a strategy itself — the BMC refused one of its steps, or a task ended in Exception —
 * after which another strategy may still work (bmclib-style: record what was tried, try the next).
 * Not among them: auth, TLS, an unreachable or silent BMC, the run's deadline and bad options, which
 * fail every strategy alike; nor REDFISH_ERR_WAIT_TIMEOUT, whose outcome is unknown — the BMC may
 * still be pushing the image or the system still booting it, and another strategy would reset it
 * mid-install.
 */
const STRATEGY_FAILURES: ReadonlySet<RedfishErrorCode> = new Set<RedfishErrorCode>([
  'REDFISH_ERR_HTTP',
  'REDFISH_ERR_PRECONDITION',
  'REDFISH_ERR_NO_MEDIA_SLOT',
  'REDFISH_ERR_MEDIA_NOT_INSERTED',
  'REDFISH_ERR_MEDIA_STUCK',
  'REDFISH_ERR_UNSUPPORTED',
  'REDFISH_ERR_TASK_FAILED',
  'REDFISH_ERR_NO_STRATEGY',
]);

/** True for a failure of the strategy itself, after which `auto` may fall back to the next one. */
export function isStrategyFailure(err: unknown): err is RedfishError {
  // A 403 that is not PasswordChangeRequired is a privilege problem (auth), not the strategy's.
  return err instanceof RedfishError && STRATEGY_FAILURES.has(err.code) && err.status !== 403;
}

function describeAttempt(a: StrategyAttempt): string {
  return `${a.strategy} failed at ${a.failedStep ?? '?'} (${a.error?.code}: ${a.error?.message})`;
}

/**
 * Before falling back, undo what a failed strategy left that would make the next one boot the wrong
 * thing: a pending one-time boot override (to CD or UefiHttp) and media it may have inserted. Best
 * effort: a failure here is reported, and the next strategy still runs.
 */
export async function undoAttempt(
  ctx: StrategyContext,
  strategy: StrategyName,
  started: ReadonlySet<string>,
): Promise<void> {
  const { client, probe } = ctx;
  const slots = started.has('insert') ? cdSlots(probe) : [];
  if (slots.length === 0 && !started.has('boot-override')) return;
  await runStep(ctx, strategy, 'undo', async () => {
    const done: string[] = [];
    for (const s of slots) done.push(await ejectAndConfirm(client, s, probe.profile, ctx.waits.media));
    if (started.has('boot-override') && probe.system.hasBoot)
      done.push(await setBootOverride(client, probe, 'none', 'disabled'));
    return done.join('; ');
  }).catch(() => undefined);
}

/** The waits with defaults filled in. */
export function mergeWaits(w?: Partial<StrategyWaits>): StrategyWaits {
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
  const attempts: StrategyAttempt[] = [];
  const deadline =
    options.timeoutMs === undefined
      ? undefined
      : startDeadline(options.timeoutMs, () => {
          const earlier = attempts.length ? `; earlier: ${attempts.map(describeAttempt).join('; ')}` : '';
          return `${current} (after ${seconds(Date.now() - since)} in it)${earlier}`;
        });
  const bmc = deadline ? client.withSignal(deadline.signal) : client;
  let started = new Set<string>();
  let failedStep: string | undefined;
  const onStep = (e: StepEvent) => {
    if (e.status === 'start') {
      current = `${e.strategy} step ${e.step}`;
      since = Date.now();
      started.add(e.step);
    } else if (e.status === 'failed') failedStep ??= e.step;
    options.onStep?.(e);
  };
  try {
    return await withSpan('redfish.provision', { [Attr.bmcUrl]: client.origin }, async (span) => {
      const probe = await probeBmc(bmc, {
        ...(options.systemId ? { systemId: options.systemId } : {}),
        ...(options.profileId ? { profileId: options.profileId } : {}),
      });
      span.setAttribute(Attr.bmcVendorProfile, probe.profile.id);
      const assessments = assessStrategies(probe, options.image.url);
      const candidates = strategyCandidates(assessments, options.strategy);
      const ctx: StrategyContext = {
        client: bmc,
        probe,
        image: options.image,
        waits: mergeWaits(options.waits),
        onStep,
      };
      for (const [i, strategy] of candidates.entries()) {
        span.setAttribute(Attr.redfishStrategy, strategy);
        started = new Set();
        failedStep = undefined;
        try {
          await RUNNERS[strategy](ctx);
        } catch (err) {
          const next = candidates[i + 1];
          if (!isStrategyFailure(err)) throw err;
          attempts.push({ strategy, failedStep: failedStep ?? 'start', error: err });
          if (!next) {
            if (attempts.length === 1) throw err;
            throw new RedfishError(
              'REDFISH_ERR_ALL_STRATEGIES_FAILED',
              `every usable strategy failed: ${attempts.map(describeAttempt).join('; ')}`,
              {
                messages: attempts.flatMap((a) => a.error?.messages ?? []),
                cause: new AggregateError(
                  attempts.map((a) => a.error),
                  'strategy attempts',
                ),
              },
            );
          }
          options.onStep?.({
            strategy,
            step: failedStep ?? 'start',
            status: 'fallback',
            error: err,
            next,
            detail: `${err.code}: ${err.message}`,
          });
          await undoAttempt(ctx, strategy, started);
          continue;
        }
        attempts.push({ strategy });
        return {
          strategy,
          attempts,
          systemId: probe.system.id,
          serial: probe.system.serial,
          profile: probe.profile.id,
          assessments,
          probe,
        };
      }
      // Unreachable: strategyCandidates returns at least one and every iteration returns or throws.
      throw new RedfishError('REDFISH_ERR_NO_STRATEGY', 'no provisioning strategy was run');
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
  await teardown(client, probe, options);
}

/**
 * The teardown of {@link finishProvisioning} on an already probed BMC: ejects every CD/DVD slot and
 * sets the boot override to None. Returns the detail lines. Safe to repeat.
 */
export async function teardown(
  client: RedfishClient,
  probe: BmcProbe,
  options: Pick<FinishOptions, 'waits' | 'onStep'> = {},
): Promise<string[]> {
  const waits = mergeWaits(options.waits);
  const ctx = { client, probe, ...(options.onStep ? { onStep: options.onStep } : {}) };
  const slots = cdSlots(probe);
  const out: string[] = [];
  if (slots.length > 0) {
    const d = await runStep(ctx, 'cleanup', 'eject', async () => {
      const done: string[] = [];
      for (const s of slots) done.push(await ejectAndConfirm(client, s, probe.profile, waits.media));
      return done.join('; ');
    });
    if (d) out.push(d);
  }
  if (probe.system.hasBoot) {
    const d = await runStep(ctx, 'cleanup', 'clear-boot-override', () =>
      setBootOverride(client, probe, 'none', 'disabled'),
    );
    if (d) out.push(d);
  }
  return out;
}
