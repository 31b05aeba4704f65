/**
 * `bmc check`: what a BMC offers and which strategies will work on it, as a
 * plain report (the CLI prints it as text or JSON). Reads only.
 */
import type { RedfishClient } from './client.js';
import { type ProbeOptions, probeBmc } from './probe.js';
import { assessStrategies, type StrategyAssessment } from './strategies/assess.js';
import { bootTargetFor } from './strategies/boot.js';

/** The check report. Plain data (JSON-serialisable). */
export interface BmcCheckReport {
  readonly bmc: string;
  readonly redfishVersion: string;
  readonly manufacturer: string;
  readonly model: string;
  readonly firmwareVersion: string;
  readonly product: string;
  readonly authMode: string | undefined;
  readonly profile: {
    readonly id: string;
    readonly name: string;
    readonly overridden: boolean;
    readonly notes: readonly string[];
  };
  readonly systems: readonly {
    readonly id: string;
    readonly systemType: string;
    readonly serial: string;
    readonly chosen: boolean;
  }[];
  readonly system: {
    readonly id: string;
    readonly path: string;
    readonly powerState: string;
    readonly resetTypes: readonly string[];
    readonly bootTargets: readonly string[];
    readonly cdBootTarget: string;
    readonly bootModes: readonly string[];
    readonly settingsObject: string | undefined;
    readonly httpBoot: boolean;
  };
  readonly virtualMedia: readonly {
    readonly id: string;
    readonly path: string;
    readonly under: 'system' | 'manager';
    readonly mediaTypes: readonly string[];
    readonly insert: string;
    readonly transferProtocols: readonly string[];
    readonly inserted: boolean;
    readonly image: string | null;
  }[];
  readonly simpleUpdate:
    | {
        readonly target: string;
        readonly protocols: readonly string[];
        readonly osTargets: readonly string[];
        readonly inventory: readonly string[];
      }
    | undefined;
  readonly strategies: readonly StrategyAssessment[];
  /** First usable strategy, if any. */
  readonly recommended: string | undefined;
}

/** Options of {@link checkBmc}. */
export interface CheckOptions extends ProbeOptions {
  /** Judge strategies for this image URL too (scheme/protocol limits). */
  readonly imageUrl?: string;
}

/** Probes a BMC and reports what it offers and which strategies will work. */
export async function checkBmc(client: RedfishClient, options: CheckOptions = {}): Promise<BmcCheckReport> {
  const probe = await probeBmc(client, options);
  const strategies = assessStrategies(probe, options.imageUrl);
  const s = probe.system;
  return {
    bmc: probe.origin,
    redfishVersion: probe.redfishVersion,
    manufacturer: probe.identity.manufacturer,
    model: probe.identity.model,
    firmwareVersion: probe.identity.firmwareVersion,
    product: probe.identity.product,
    authMode: client.authMode,
    profile: {
      id: probe.profile.id,
      name: probe.profile.name,
      overridden: probe.profileOverridden,
      notes: probe.profile.notes,
    },
    systems: probe.systems.map((x) => ({
      id: x.id,
      systemType: x.systemType,
      serial: x.serial,
      chosen: x === s,
    })),
    system: {
      id: s.id,
      path: s.path,
      powerState: s.powerState,
      resetTypes: s.resetTypesRaw,
      bootTargets: s.bootTargetsRaw,
      cdBootTarget: bootTargetFor('cd', probe.profile, s.bootTargetsRaw),
      bootModes: s.bootModes,
      settingsObject: s.settingsPath,
      httpBoot: s.httpBootUri,
    },
    virtualMedia: probe.mediaSlots.map((m) => ({
      id: m.id,
      path: m.path,
      under: m.owner,
      mediaTypes: m.kinds,
      insert: m.insert,
      transferProtocols: m.transferProtocols,
      inserted: m.inserted,
      image: m.image,
    })),
    simpleUpdate: probe.update
      ? {
          target: probe.update.simpleUpdateTarget,
          protocols: probe.update.protocolsRaw,
          osTargets: probe.update.osTargets,
          inventory: probe.update.inventory,
        }
      : undefined,
    strategies,
    recommended: strategies.find((x) => x.usable)?.strategy,
  };
}
