/**
 * Emulated power and boot: ComputerSystem.Reset with power transitions that
 * take time, the one-time boot override (Once → Disabled after the boot), the
 * BlueField Settings object applied at reset, BootProgress.OemLastState, and
 * the boot into an image (virtual media, HTTP boot or a pushed image), which
 * fetches the image like a BMC and reports a {@link BootEvent}.
 */
import type { BootEvent, BootVia, EmulatorContext } from './context.js';
import { fetchImageLikeABmc } from './image-fetch.js';
import { fail, REG, type Reply } from './messages.js';
import { type Json, normalisePath } from './resources.js';
import type { VirtualMedia } from './virtual-media.js';

/** Timing of {@link PowerAndBoot}. */
export interface PowerTiming {
  /** Duration of each power transition. */
  readonly transitionMs: number;
  /** Time from power On to the last BootProgress state. */
  readonly osBootMs: number;
}

/** Power state machine and boot of the emulated systems. */
export class PowerAndBoot {
  readonly #powerTimers = new Map<string, NodeJS.Timeout[]>();
  readonly #progressTimers = new Map<string, NodeJS.Timeout>();
  readonly #pushed = new Map<string, { url: string; fetch: BootEvent['fetch'] }>();

  constructor(
    private readonly ctx: EmulatorContext,
    private readonly media: VirtualMedia,
    private readonly timing: PowerTiming,
  ) {}

  /** An OS image pushed through SimpleUpdate: the system boots it at its next power On. */
  pushImage(sysPath: string, url: string, fetch: BootEvent['fetch']): void {
    this.#pushed.set(sysPath, { url, fetch });
  }

  reset(sysPath: string, b: Json): Reply {
    const act = this.ctx.actionOf(sysPath, 'ComputerSystem.Reset');
    const allowed: string[] = act['ResetType@Redfish.AllowableValues'] ?? [];
    const type = b.ResetType ?? 'ForceRestart';
    if (typeof type !== 'string' || (allowed.length > 0 && !allowed.includes(type)))
      throw fail(
        400,
        `${REG}.ActionParameterNotSupported`,
        `The parameter ResetType for the action ComputerSystem.Reset is not supported on the target resource.`,
        {
          args: [String(type), 'ResetType'],
          related: ['#/ResetType'],
        },
      );
    const sys = this.ctx.r.get(sysPath)!;
    const state = sys.PowerState;
    const T = this.timing.transitionMs;
    this.#cancelPower(sysPath);
    const plan: [string, number][] = [];
    if (
      type === 'ForceOff' ||
      type === 'GracefulShutdown' ||
      (type === 'PushPowerButton' && state === 'On')
    ) {
      if (state !== 'Off') plan.push(['PoweringOff', 0], ['Off', T]);
    } else if (type === 'On' || type === 'ForceOn' || (state === 'Off' && type !== 'Nmi')) {
      if (state !== 'On') plan.push(['PoweringOn', 0], ['On', T]);
    } else if (type !== 'Nmi') {
      plan.push(['PoweringOff', 0], ['PoweringOn', T / 2], ['On', T / 2]);
    }
    if (plan.length > 0) {
      this.#applySettings(sysPath);
      this.#restartBootProgress(sysPath);
    }
    // Fault: the system enters the first transition and stays there (a BMC that never reports On).
    if (this.ctx.faults.stallPower) plan.splice(1);
    // Steps are chained (each schedules the next) rather than scheduled at absolute offsets: under
    // load Node may run two expired timers of different durations out of order, which once left a
    // system "PoweringOn" after it had reached "On".
    const timers: NodeJS.Timeout[] = [];
    const step = (i: number) => {
      const next = plan[i];
      if (!next) return;
      const [s, dt] = next;
      const apply = () => {
        sys.PowerState = s;
        this.ctx.touch(sysPath);
        if (s === 'On') {
          this.#boot(sysPath);
          this.#advanceBootProgress(sysPath, 1);
        }
        step(i + 1);
      };
      if (dt === 0) apply();
      else timers.push(this.ctx.later(dt, apply));
    };
    step(0);
    this.#powerTimers.set(sysPath, timers);
    return { status: 204 };
  }

  #cancelPower(sysPath: string): void {
    for (const t of this.#powerTimers.get(sysPath) ?? []) this.ctx.cancel(t);
    this.#powerTimers.delete(sysPath);
  }

  // --- boot progress (BlueField BootProgress.OemLastState) ------------------------------------------

  #setBootProgress(sysPath: string, state: string): void {
    const sys = this.ctx.r.get(sysPath)!;
    const { LastStateTime: _, ...rest } = sys.BootProgress ?? {};
    sys.BootProgress = {
      ...rest,
      LastState: 'OEM',
      OemLastState: state,
      ...(this.ctx.faults.bootProgressWithoutTime ? {} : { LastStateTime: new Date().toISOString() }),
    };
    this.ctx.touch(sysPath);
  }

  /** A reset starts the Arm over: the first state now, the rest once the system is On. */
  #restartBootProgress(sysPath: string): void {
    const states = this.ctx.persona?.bootProgress;
    if (!states?.length || !this.ctx.r.get(sysPath)?.BootProgress) return;
    const t = this.#progressTimers.get(sysPath);
    if (t) this.ctx.cancel(t);
    this.#progressTimers.delete(sysPath);
    if (this.ctx.faults.frozenBootProgress) return; // fault: the BMC did not notice the reboot
    this.#setBootProgress(sysPath, states[0]!);
  }

  #advanceBootProgress(sysPath: string, i: number): void {
    const states = this.ctx.persona?.bootProgress;
    const state = states?.[i];
    if (!states || !state || this.ctx.faults.frozenBootProgress) return;
    const cur = this.ctx.r.get(sysPath)?.BootProgress?.OemLastState;
    if (cur !== states[i - 1] || cur === this.ctx.faults.bootProgressStopsAt) return; // fault: stuck
    const t = this.ctx.later(this.timing.osBootMs / (states.length - 1), () => {
      this.#progressTimers.delete(sysPath);
      this.#setBootProgress(sysPath, state);
      this.#advanceBootProgress(sysPath, i + 1);
    });
    this.#progressTimers.set(sysPath, t);
  }

  /** BlueField: boot settings PATCHed to `{system}/Settings` apply at the next reset. */
  #applySettings(sysPath: string): void {
    const sys = this.ctx.r.get(sysPath)!;
    const settingsPath = sys['@Redfish.Settings']?.SettingsObject?.['@odata.id'];
    const settings =
      typeof settingsPath === 'string' ? this.ctx.r.get(normalisePath(settingsPath)) : undefined;
    if (!settings?.Boot || !sys.Boot) return;
    Object.assign(sys.Boot, settings.Boot);
    this.ctx.touch(sysPath);
  }

  #boot(sysPath: string): void {
    const sys = this.ctx.r.get(sysPath)!;
    const boot = sys.Boot as Json | undefined;
    let via: BootVia | undefined;
    let url: string | undefined;
    if (boot?.BootSourceOverrideEnabled && boot.BootSourceOverrideEnabled !== 'Disabled') {
      const target = boot.BootSourceOverrideTarget;
      const cdTarget = this.ctx.persona?.rules.virtualCdTarget ?? 'Cd';
      if (target === cdTarget) {
        const slot = this.media
          .slotsOf(sysPath)
          .find(
            (s) => s.Inserted === true && (s.MediaTypes ?? []).some((t: string) => t === 'CD' || t === 'DVD'),
          );
        if (slot && typeof slot.Image === 'string') {
          via = 'virtual-media';
          url = slot.Image;
        }
      } else if (target === 'UefiHttp' && typeof boot.HttpBootUri === 'string' && boot.HttpBootUri) {
        via = 'http-boot';
        url = boot.HttpBootUri;
      }
      if (boot.BootSourceOverrideEnabled === 'Once') {
        // DSP2046 ComputerSystem: "If set to Once, the value is reset to Disabled after the
        // BootSourceOverrideTarget actions have completed successfully."
        boot.BootSourceOverrideEnabled = 'Disabled';
        boot.BootSourceOverrideTarget = 'None';
        this.ctx.touch(sysPath);
        const settingsPath = sys['@Redfish.Settings']?.SettingsObject?.['@odata.id'];
        const settings =
          typeof settingsPath === 'string' ? this.ctx.r.get(normalisePath(settingsPath)) : undefined;
        if (settings?.Boot)
          Object.assign(settings.Boot, {
            BootSourceOverrideEnabled: 'Disabled',
            BootSourceOverrideTarget: 'None',
          });
      }
    }
    const pushed = this.#pushed.get(sysPath);
    if (!via && pushed) {
      this.#pushed.delete(sysPath);
      this.ctx.report({
        systemId: String(sys.Id),
        serial: String(sys.SerialNumber ?? ''),
        imageUrl: pushed.url,
        via: 'image-push',
        fetch: pushed.fetch,
      });
      return;
    }
    if (!via || !url) return;
    const imageUrl = url;
    const kind = via;
    this.ctx.track(
      (async () => {
        let fetch: BootEvent['fetch'];
        try {
          fetch = await fetchImageLikeABmc(imageUrl, this.ctx.opts.imageFetch);
        } catch (err) {
          fetch = { error: String((err as Error)?.message ?? err) };
        }
        if (this.ctx.stopped) return;
        this.ctx.report({
          systemId: String(sys.Id),
          serial: String(sys.SerialNumber ?? ''),
          imageUrl,
          via: kind,
          fetch,
        });
      })(),
    );
  }
}
