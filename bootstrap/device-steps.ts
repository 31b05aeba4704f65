/**
 * What each step of a device run does. Every step is safe to run again after
 * a crash of the replica that ran it: BMC steps re-read before they act (an
 * eject of an empty slot is a no-op, an insert is confirmed by reading the
 * slot back), and the reset is recorded just before it is sent, so a resumed
 * `power-cycle` only confirms power instead of resetting twice. The waits are
 * decided from the database (progress reports, request records) plus the
 * events of this process, so a resumed wait sees what happened while no
 * replica was watching.
 */
import { sql } from 'kysely';
import type { JobDevice } from '../db/index.js';
import {
  type BmcProbe,
  cdSlots,
  type ImageSpec,
  isStrategyFailure,
  probeBmc,
  type RedfishClient,
  type RedfishClientOptions,
  readPower,
  rebootAndConfirm,
  STRATEGY_PHASES,
  type StepEvent,
  type PhaseCheckpoint,
  type StrategyContext,
  type StrategyName,
  type StrategyWaits,
  strategyCandidates,
  assessStrategies,
  teardown,
  undoAttempt,
  waitForPower,
  RedfishError,
} from '../redfish/index.js';
import { Attr } from '../otel/index.js';
import type { BmcStore, BmcTarget } from './bmc-store.js';
import { JobError } from './job-errors.js';
import type { JobStore } from './job-store.js';
import { deviceRevocation } from './revoked-idevids.js';

/** What a step hands back: a detail line for its record, and what later steps need to know. */
export interface StepResult {
  detail?: string;
  context?: Record<string, unknown>;
}

/** Bounds of a run's waits, in milliseconds. */
export interface JobTimeouts {
  /** await-device: from the reset to the device's first sZTP contact. */
  awaitDeviceMs: number;
  /** await-complete: from the first contact to bootstrap-complete. */
  awaitCompleteMs: number;
  /** The Redfish waits inside BMC steps (power, media, task). */
  redfish: StrategyWaits;
}

/** Retries of a BMC step after a transient failure. */
export interface StepRetry {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** What a step runs with. */
export interface StepContext {
  run: JobDevice;
  /** The job's parameters (strategy, action, installerImage, timeouts). */
  params: Record<string, unknown>;
  owner: string;
  store: JobStore;
  signal: AbortSignal;
  timeouts: JobTimeouts;
  /** The BMC client for this run (made in preflight or on resume). */
  bmc(): Promise<{ client: RedfishClient; target: BmcTarget }>;
  /** The BMC probe for this run (probed once per process per run). */
  probe(): Promise<BmcProbe>;
  /** The installer image's URL on the images listener, or undefined when it is not in the store. */
  installerImageUrl(name: string): Promise<string | undefined>;
  /** Waits (woken by device events) until `check` returns a value or the deadline passes. */
  waitFor<T>(deadline: Date, check: () => Promise<T | undefined>): Promise<T | undefined>;
  /** Records Redfish sub-steps (their BMC messages land in the step's detail). */
  onRedfishStep(e: StepEvent): void;
  /** Persists the reset intent; false when the lease was lost. */
  markReset(): Promise<boolean>;
}

/** Builds the Redfish client options for a BMC record (TLS from its CA or `insecure`). */
export function clientOptionsFor(
  target: BmcTarget,
  base: Partial<RedfishClientOptions> = {},
): RedfishClientOptions {
  return {
    ...base,
    url: target.address,
    username: target.username,
    password: target.password,
    auth: target.auth,
    tls: {
      ...(target.caCertificate ? { ca: target.caCertificate } : {}),
      ...(target.insecure ? { insecure: true } : {}),
    },
  };
}

/** Reads the BMC of a run, failing with JOB_ERR_NO_BMC when there is none. */
export async function bmcTargetOf(bmcs: BmcStore, run: JobDevice): Promise<BmcTarget> {
  if (!run.bmc_id)
    throw new JobError('JOB_ERR_NO_BMC', `device ${run.serial} names no BMC`, { attention: true });
  const t = await bmcs.target(run.bmc_id);
  if (!t)
    throw new JobError(
      'JOB_ERR_NO_BMC',
      `BMC ${run.bmc_id} of device ${run.serial} is not in the inventory`,
      { attention: true },
    );
  return t;
}

/** The installer image a job boots: the job's `installerImage`, else the profile's `spec.installerImage`. */
async function installerImageName(ctx: StepContext): Promise<string> {
  const fromJob = ctx.params.installerImage;
  if (typeof fromJob === 'string' && fromJob) return fromJob;
  const row = await ctx.store.db
    .selectFrom('devices')
    .leftJoin('profiles', 'profiles.name', 'devices.profile')
    .select(['devices.profile', 'profiles.spec'])
    .where('devices.serial', '=', ctx.run.serial)
    .executeTakeFirst();
  const name = profileInstallerImage(row?.spec);
  if (!name)
    throw new JobError(
      'JOB_ERR_NO_INSTALLER_IMAGE',
      row?.profile
        ? `profile ${row.profile} of ${ctx.run.serial} names no installerImage (and the job gives none)`
        : `${ctx.run.serial} has no profile naming an installerImage (and the job gives none)`,
      { attention: true },
    );
  return name;
}

/**
 * `spec.installerImage` of a profile, validated where it is read: an image name (the profile spec's
 * ResourceName rule), else undefined. A stand-in until the one profile schema carries the field.
 */
export function profileInstallerImage(spec: unknown): string | undefined {
  const v = (spec as { installerImage?: unknown } | null | undefined)?.installerImage;
  return typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(v) ? v : undefined;
}

function strategyOf(ctx: StepContext): StrategyName {
  const s = ctx.run.context.strategy;
  if (typeof s !== 'string' || !(s in STRATEGY_PHASES))
    throw new JobError('JOB_ERR_INTERNAL', 'the run has no strategy: preflight did not record one');
  return s as StrategyName;
}

async function strategyContext(ctx: StepContext): Promise<StrategyContext> {
  const { client } = await ctx.bmc();
  const probe = await ctx.probe();
  const url = ctx.run.context.imageUrl;
  const image: ImageSpec = { url: typeof url === 'string' ? url : '' };
  const strategy = ctx.run.context.strategy;
  return {
    // Every Redfish request of the step carries the vendor profile and strategy in its span.
    client: client.withSignal(ctx.signal).withSpanAttributes({
      [Attr.bmcVendorProfile]: probe.profile.id,
      [Attr.redfishStrategy]: typeof strategy === 'string' ? strategy : undefined,
    }),
    probe,
    image,
    waits: ctx.timeouts.redfish,
    onStep: (e) => ctx.onRedfishStep(e),
    checkpoint: checkpointOf(ctx),
  };
}

/**
 * The run's phase checkpoint, kept in its context per attempt and step (a retry of the job is a new
 * attempt and starts afresh; a resumed or retried step of the same attempt continues).
 */
function checkpointOf(ctx: StepContext): PhaseCheckpoint {
  const key = `checkpoint:${ctx.run.attempt}:${ctx.run.step}`;
  const current = () => (ctx.run.context[key] as Record<string, unknown> | undefined) ?? {};
  return {
    get: (name) => current()[name],
    async set(name, value) {
      const next = { ...current(), [name]: value };
      const saved = await ctx.store.saveContext(ctx.run, ctx.owner, { [key]: next });
      if (!saved) throw new Error('lease lost');
      ctx.run.context[key] = next;
    },
  };
}

// --- provision ----------------------------------------------------------------------------------------

/**
 * Stops the run when the IDevID its device last presented is revoked: the bootstrap server refuses
 * that device (`SZTP_ERR_REVOKED_IDEVID`), so a wait for it could only time out. A person must act.
 */
async function failIfRevoked(ctx: StepContext): Promise<void> {
  const r = await deviceRevocation(ctx.store.db, ctx.run.serial);
  if (r)
    throw new JobError(
      'JOB_ERR_IDEVID_REVOKED',
      `the IDevID of ${ctx.run.serial} (${r.fingerprint}) was revoked at ${r.revokedAt.toISOString()} by ${r.revokedBy}${r.reason ? `: ${r.reason}` : ''}`,
      { attention: true },
    );
}

/**
 * preflight: (provision) the device's known IDevID is not revoked — checked first, before the BMC is
 * asked anything; the BMC answers with these credentials, a strategy fits, the installer image is in
 * the store. Power and decommission jobs go ahead for a revoked device (they need no sZTP).
 */
async function preflight(ctx: StepContext): Promise<StepResult> {
  const kind = ctx.params.kind;
  if (kind === 'provision') await failIfRevoked(ctx);
  const { target } = await ctx.bmc();
  const probe = await ctx.probe();
  if (kind !== 'provision')
    return {
      detail: `BMC ${target.id} (${target.address}): system ${probe.system.id}, profile ${probe.profile.id}, power ${probe.system.powerState}`,
      context: { systemId: probe.system.id, vendorProfile: probe.profile.id },
    };
  const name = await installerImageName(ctx);
  const url = await ctx.installerImageUrl(name);
  if (!url)
    throw new JobError('JOB_ERR_NO_INSTALLER_IMAGE', `installer image ${name} is not in the image store`, {
      attention: true,
    });
  const requested = (ctx.params.strategy as StrategyName | 'auto' | undefined) ?? 'auto';
  const assessments = assessStrategies(probe, url);
  const candidates = strategyCandidates(assessments, requested);
  const chosen = candidates[0] as StrategyName;
  const why = assessments.find((a) => a.strategy === chosen)?.reasons.join('; ');
  return {
    detail: `BMC ${target.id} (${target.address}) profile ${probe.profile.id}, system ${probe.system.id}; installer ${name} at ${url}; strategy ${chosen} (${why})${candidates.length > 1 ? `, then ${candidates.slice(1).join(', ')}` : ''}`,
    context: {
      strategy: chosen,
      candidates,
      imageUrl: url,
      image: name,
      systemId: probe.system.id,
      vendorProfile: probe.profile.id,
    },
  };
}

/**
 * prepare: stale media out, then the strategy's own preparation (insert, or push and await the task).
 * With `auto`, a failure of the strategy itself undoes what it left and tries the next candidate.
 */
async function prepare(ctx: StepContext): Promise<StepResult> {
  const sctx = await strategyContext(ctx);
  const candidates = (ctx.run.context.candidates as StrategyName[] | undefined) ?? [strategyOf(ctx)];
  const start = candidates.indexOf(strategyOf(ctx));
  const notes: string[] = [];
  if (sctx.checkpoint?.get('simple-update') !== undefined)
    notes.push('SimpleUpdate already accepted before a takeover: followed its task, no second push');
  for (let i = Math.max(0, start); i < candidates.length; i++) {
    const strategy = candidates[i] as StrategyName;
    const started = new Set<string>();
    const tracked: StrategyContext = {
      ...sctx,
      onStep: (e) => {
        if (e.status === 'start') started.add(e.step);
        sctx.onStep?.(e);
      },
    };
    try {
      if (strategy !== 'virtual-media' && cdSlots(sctx.probe).length > 0)
        // Stale media would win over a pushed image or an HTTP boot on BMCs that boot CD first.
        notes.push(
          ...(
            await teardown(sctx.client, sctx.probe, {
              waits: sctx.waits,
              onStep: tracked.onStep as (e: StepEvent) => void,
            })
          ).slice(0, 1),
        );
      await STRATEGY_PHASES[strategy].prepare(tracked);
      return {
        detail: [...notes, `${strategy} prepared`].join('; '),
        context: { strategy },
      };
    } catch (err) {
      const next = candidates[i + 1];
      if (!next || !isStrategyFailure(err)) throw err;
      notes.push(`${strategy} failed (${err.code}: ${err.message}); falling back to ${next}`);
      await undoAttempt(sctx, strategy, started);
    }
  }
  throw new JobError('JOB_ERR_INTERNAL', 'no strategy was prepared');
}

async function bootOverride(ctx: StepContext): Promise<StepResult> {
  const strategy = strategyOf(ctx);
  const sctx = await strategyContext(ctx);
  const lines: string[] = [];
  await STRATEGY_PHASES[strategy].bootOverride({
    ...sctx,
    onStep: (e) => {
      if (e.status === 'done' && e.detail) lines.push(e.detail);
      sctx.onStep?.(e);
    },
  });
  return {
    detail: lines.join('; ') || `${strategy}: no boot override (the BMC boots the image it installed)`,
  };
}

/** power-cycle: one reset per attempt — a resumed step whose reset was recorded only confirms power. */
async function powerCycle(ctx: StepContext): Promise<StepResult> {
  const sctx = await strategyContext(ctx);
  if (ctx.run.reset_at) {
    await waitForPower(sctx.client, sctx.probe.system, 'on', sctx.waits.power);
    return { detail: `reset already sent at ${ctx.run.reset_at.toISOString()} (resumed): system is On` };
  }
  await STRATEGY_PHASES[strategyOf(ctx)].reset(sctx, {
    beforeReset: async () => {
      if (!(await ctx.markReset())) throw new JobError('JOB_ERR_INTERNAL', 'lease lost before the reset');
    },
  });
  return { detail: 'reset sent; system is On' };
}

/** The device's sZTP records since the reset: request records and progress reports, oldest first. */
async function eventsSinceReset(ctx: StepContext) {
  const since = ctx.run.reset_at ?? ctx.run.step_started_at ?? new Date(0);
  return ctx.store.db
    .selectFrom('bootstrap_events')
    .select(['kind', 'progress_type', 'message', 'created_at'])
    .where('serial', '=', ctx.run.serial)
    .where('created_at', '>=', since)
    .orderBy('id')
    .limit(1000)
    .execute();
}

function failIfError(events: Awaited<ReturnType<typeof eventsSinceReset>>): void {
  const bad = events.find((e) => e.kind === 'progress' && e.progress_type?.endsWith('-error'));
  if (bad)
    throw new JobError(
      'JOB_ERR_DEVICE_REPORTED_ERROR',
      `the device reported ${bad.progress_type}${bad.message ? `: ${bad.message}` : ''}`,
    );
}

/**
 * await-device: the device's first sZTP contact after the reset (proof the installer booted). A
 * revocation of its IDevID stops the wait (the runner wakes waits on every revocation change).
 */
async function awaitDevice(ctx: StepContext, lastContact: () => Date | undefined): Promise<StepResult> {
  const deadline = ctx.run.step_deadline ?? new Date(Date.now() + ctx.timeouts.awaitDeviceMs);
  const since = ctx.run.reset_at ?? ctx.run.step_started_at ?? new Date(0);
  const seen = await ctx.waitFor(deadline, async () => {
    await failIfRevoked(ctx);
    const c = lastContact();
    if (c && c >= since) return `get-bootstrapping-data at ${c.toISOString()}`;
    const events = await eventsSinceReset(ctx);
    failIfError(events);
    const first = events[0];
    return first ? `${first.progress_type ?? first.kind} at ${first.created_at.toISOString()}` : undefined;
  });
  if (!seen)
    throw new JobError(
      'JOB_ERR_DEVICE_TIMEOUT',
      `await-device: no sZTP contact from ${ctx.run.serial} within ${Math.round((deadline.getTime() - since.getTime()) / 1000)} s of the reset`,
    );
  return { detail: `first contact: ${seen}` };
}

/** await-complete: `bootstrap-complete`, or the device's own `*-error` report, or its IDevID revoked. */
async function awaitComplete(ctx: StepContext): Promise<StepResult> {
  const deadline = ctx.run.step_deadline ?? new Date(Date.now() + ctx.timeouts.awaitCompleteMs);
  const seen = await ctx.waitFor(deadline, async () => {
    await failIfRevoked(ctx);
    const events = await eventsSinceReset(ctx);
    failIfError(events);
    const done = events.find((e) => e.kind === 'progress' && e.progress_type === 'bootstrap-complete');
    return done ? `bootstrap-complete at ${done.created_at.toISOString()}` : undefined;
  });
  if (!seen) {
    const last = (await eventsSinceReset(ctx)).filter((e) => e.kind === 'progress').at(-1);
    throw new JobError(
      'JOB_ERR_COMPLETE_TIMEOUT',
      `await-complete: ${ctx.run.serial} did not report bootstrap-complete in time (last progress: ${last?.progress_type ?? 'none'})`,
    );
  }
  return { detail: seen };
}

/** finalize: eject media and clear the boot override (safe to repeat). */
async function finalize(ctx: StepContext): Promise<StepResult> {
  const sctx = await strategyContext(ctx);
  const lines = await teardown(sctx.client, sctx.probe, {
    waits: sctx.waits,
    onStep: sctx.onStep as (e: StepEvent) => void,
  });
  return { detail: lines.join('; ') || 'nothing to eject or clear' };
}

// --- power and decommission ---------------------------------------------------------------------------

async function setPower(ctx: StepContext, want: 'on' | 'off'): Promise<string> {
  const sctx = await strategyContext(ctx);
  const { client, probe } = sctx;
  const now = await readPower(client, probe.system);
  if (now === want) return `already ${want}`;
  if (!probe.system.resetTarget)
    throw new RedfishError(
      'REDFISH_ERR_UNSUPPORTED',
      `system ${probe.system.id} has no ComputerSystem.Reset action`,
    );
  if (!(want === 'on' && now === 'powering-on') && !(want === 'off' && now === 'powering-off')) {
    if (!(await ctx.markReset())) throw new JobError('JOB_ERR_INTERNAL', 'lease lost before the reset');
    await client.post(probe.system.resetTarget, { ResetType: want === 'on' ? 'On' : 'ForceOff' });
  }
  await waitForPower(client, probe.system, want, sctx.waits.power);
  return `${now} → ${want}`;
}

async function power(ctx: StepContext): Promise<StepResult> {
  const action = ctx.params.action;
  if (action === 'on' || action === 'off') return { detail: await setPower(ctx, action) };
  // cycle: one reset per attempt, as in power-cycle.
  const sctx = await strategyContext(ctx);
  if (ctx.run.reset_at) {
    await waitForPower(sctx.client, sctx.probe.system, 'on', sctx.waits.power);
    return { detail: 'reset already sent (resumed): system is On' };
  }
  const detail = await rebootAndConfirm(sctx.client, sctx.probe.system, sctx.waits.power, {
    beforeReset: async () => {
      if (!(await ctx.markReset())) throw new JobError('JOB_ERR_INTERNAL', 'lease lost before the reset');
    },
  });
  return { detail };
}

async function powerOff(ctx: StepContext): Promise<StepResult> {
  return { detail: await setPower(ctx, 'off') };
}

/** The step functions of each job kind. */
export function stepFunctions(
  lastContact: (serial: string) => Date | undefined,
): Record<string, Record<string, (ctx: StepContext) => Promise<StepResult>>> {
  return {
    provision: {
      preflight,
      prepare,
      'boot-override': bootOverride,
      'power-cycle': powerCycle,
      'await-device': (ctx) => awaitDevice(ctx, () => lastContact(ctx.run.serial)),
      'await-complete': awaitComplete,
      finalize,
    },
    power: { preflight, power },
    decommission: { preflight, finalize, 'power-off': powerOff },
  };
}

/** Steps that only talk to the BMC (retried after transient BMC failures). */
export const BMC_STEPS: ReadonlySet<string> = new Set([
  'preflight',
  'prepare',
  'boot-override',
  'power-cycle',
  'finalize',
  'power',
  'power-off',
]);

/** Steps that wait on the device, with the timeout that bounds them. */
export function waitBound(step: string, t: JobTimeouts): number | undefined {
  return step === 'await-device'
    ? t.awaitDeviceMs
    : step === 'await-complete'
      ? t.awaitCompleteMs
      : undefined;
}

/** A new probe of the run's BMC (system and profile as the BMC record says). */
export async function probeFor(client: RedfishClient, target: BmcTarget): Promise<BmcProbe> {
  return probeBmc(client, {
    ...(target.system ? { systemId: target.system } : {}),
    ...(target.profile ? { profileId: target.profile } : {}),
  });
}

/** Marks the device `registered` again (decommission). */
export async function markRegistered(store: JobStore, serial: string): Promise<void> {
  await store.db
    .updateTable('devices')
    .set({ state: 'registered', updated_at: sql<Date>`now()` })
    .where('serial', '=', serial)
    .execute();
}
