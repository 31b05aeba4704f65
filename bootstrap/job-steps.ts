/**
 * The steps of each job kind, in order (issue 13; runs record them under these names).
 * Without imports, so the CLI's progress view can order its table by them cheaply.
 */
import type { JobKind } from '../db/index.js';

/** The steps of a provisioning run, in order (issue 13; recorded under these names). */
export const PROVISION_STEPS = [
  'preflight',
  'prepare',
  'boot-override',
  'power-cycle',
  'await-device',
  'await-complete',
  'finalize',
  'done',
] as const;
/** The steps of a power job. */
export const POWER_STEPS = ['preflight', 'power', 'done'] as const;
/** The steps of a decommission job: eject and clear the override, power off, device back to `registered`. */
export const DECOMMISSION_STEPS = ['preflight', 'finalize', 'power-off', 'done'] as const;

/** The steps of a job kind, in order. */
export function stepsOf(kind: JobKind): readonly string[] {
  return kind === 'provision' ? PROVISION_STEPS : kind === 'power' ? POWER_STEPS : DECOMMISSION_STEPS;
}

/** Every step of every kind, in the order a progress table shows them (`done` last). */
export const STEP_ORDER: readonly string[] = [
  ...new Set([...PROVISION_STEPS, ...POWER_STEPS, ...DECOMMISSION_STEPS].filter((s) => s !== 'done')),
  'done',
];
