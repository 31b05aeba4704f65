/**
 * Fault injection for the emulator: per-request rules (status + Retry-After,
 * connection reset, delay) and state faults (media that will not eject, tasks
 * that end in Exception or never end, power transitions that never finish).
 * Tests drive the controller through these.
 */

/** One injected fault; matches by method and path, fires `times` times (default 1). */
export interface FaultRule {
  readonly method?: string;
  /** Exact path, or a RegExp tested against the normalised path. */
  readonly path?: string | RegExp;
  readonly times?: number;
  /** Answer with this status and a Redfish error body. */
  readonly status?: number;
  readonly retryAfter?: number;
  readonly messageId?: string;
  readonly message?: string;
  /** Destroy the connection without an answer. */
  readonly reset?: boolean;
  /** Wait this long first (longer than the client timeout = a BMC that hangs). */
  readonly delayMs?: number;
}

/** The live fault set of one emulator. */
export class FaultSet {
  readonly #rules: { rule: FaultRule; left: number }[] = [];
  /** EjectMedia/PATCH-eject is accepted but the slot stays inserted. */
  stuckMedia = false;
  /** A boot override PATCHed `Once` is stored as `Continuous` (BlueField: persistent until set to None). */
  keepContinuous = false;
  /** When set, SimpleUpdate tasks end in `Exception` with this text. */
  failTasks: string | undefined;
  /** SimpleUpdate tasks fetch the image and then stay `Running` forever. */
  stallTasks = false;
  /** A reset enters its first transition (PoweringOff / PoweringOn) and never leaves it. */
  stallPower = false;
  /** BootProgress stops at this OemLastState after a reset (an Arm stuck in, say, `UEFI`). */
  bootProgressStopsAt: string | undefined;
  /** BootProgress ignores resets: it keeps its old state and time (a BMC that missed the reboot). */
  frozenBootProgress = false;
  /** BootProgress carries no `LastStateTime` (firmware that reports only the state). */
  bootProgressWithoutTime = false;

  constructor(rules: readonly FaultRule[] = []) {
    for (const r of rules) this.add(r);
  }

  /** Adds a rule. */
  add(rule: FaultRule): void {
    this.#rules.push({ rule, left: rule.times ?? 1 });
  }

  /** Removes every rule and state fault. */
  clear(): void {
    this.#rules.length = 0;
    this.stuckMedia = false;
    this.failTasks = undefined;
    this.stallTasks = false;
    this.stallPower = false;
    this.bootProgressStopsAt = undefined;
    this.frozenBootProgress = false;
    this.bootProgressWithoutTime = false;
  }

  /** The first live rule matching this request (consuming one use), if any. */
  take(method: string, path: string): FaultRule | undefined {
    for (const entry of this.#rules) {
      if (entry.left <= 0) continue;
      const r = entry.rule;
      if (r.method && r.method !== method) continue;
      if (r.path !== undefined && (typeof r.path === 'string' ? r.path !== path : !r.path.test(path)))
        continue;
      entry.left--;
      return r;
    }
    return undefined;
  }
}

/**
 * Named faults that make one emulated BMC fail a provisioning run the same way every time:
 * `bmc emulate --fault NAME` and `dpu-ztp demo --fail-dpu N[:NAME]`.
 */
export const EMULATOR_FAULTS = {
  /** Every `ComputerSystem.Reset` answers 400 with a DMTF error: the job fails in `power-cycle`. */
  'reset-refused': {
    description: 'the BMC refuses every reset (HTTP 400): the run fails in power-cycle',
    apply(f: FaultSet): void {
      f.add({
        method: 'POST',
        path: /\/Actions\/ComputerSystem\.Reset$/,
        times: Number.POSITIVE_INFINITY,
        status: 400,
        messageId: 'Base.1.16.GeneralError',
        message: 'The reset was refused: the system is held in reset by its host (injected fault).',
      });
    },
  },
  /** SimpleUpdate tasks end in `Exception`: an image push fails in `prepare`. */
  'task-exception': {
    description: 'SimpleUpdate tasks end in Exception: an image push fails in prepare',
    apply(f: FaultSet): void {
      f.failTasks = 'Writing the image to the DPU failed (injected fault).';
    },
  },
  /** Media never ejects: the run needs attention with `REDFISH_ERR_MEDIA_STUCK`. */
  'media-stuck': {
    description: 'ejected media stays inserted: virtual media needs attention (REDFISH_ERR_MEDIA_STUCK)',
    apply(f: FaultSet): void {
      f.stuckMedia = true;
    },
  },
} as const satisfies Record<string, { description: string; apply(f: FaultSet): void }>;

/** The name of an {@link EMULATOR_FAULTS} entry. */
export type EmulatorFaultName = keyof typeof EMULATOR_FAULTS;
