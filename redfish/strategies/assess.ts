/**
 * Which strategies will work on a probed BMC, decided from capabilities only
 * (a vendor profile can change how a step is done, never whether the BMC offers it).
 */
import type { BmcProbe, MediaSlotInfo } from '../probe.js';
import { transferProtocolOfUrl } from '../vocabulary.js';
import { bootTargetFor } from './boot.js';
import { STRATEGY_ORDER, type StrategyName } from './context.js';

/** Verdict on one strategy. */
export interface StrategyAssessment {
  readonly strategy: StrategyName;
  readonly usable: boolean;
  /** How it would run (when usable) or why not. */
  readonly reasons: readonly string[];
}

/** CD/DVD slots that can take an image, in the order they will be tried. */
export function cdSlots(probe: BmcProbe): MediaSlotInfo[] {
  return probe.mediaSlots.filter(
    (s) => s.insert !== 'none' && s.kinds.some((k) => k === 'cd' || k === 'dvd'),
  );
}

function schemeOf(url: string): string {
  return /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
}

function assessVirtualMedia(probe: BmcProbe, imageUrl?: string): StrategyAssessment {
  const why: string[] = [];
  const { system, profile } = probe;
  const slots = cdSlots(probe);
  if (slots.length === 0)
    why.push(
      probe.mediaSlots.length === 0
        ? 'no virtual media slots'
        : `no CD/DVD slot that accepts an image (slots: ${probe.mediaSlots.map((s) => `${s.id}[${s.kinds.join('/')};${s.insert}]`).join(', ')})`,
    );
  if (!system.hasBoot) why.push(`system ${system.id} has no Boot object (no one-time boot override)`);
  else {
    const target = bootTargetFor('cd', profile, system.bootTargetsRaw);
    if (system.bootTargetsRaw.length > 0 && !system.bootTargetsRaw.includes(target))
      why.push(`boot target ${target} not offered (${system.bootTargetsRaw.join(', ')})`);
  }
  if (!system.resetTarget) why.push(`system ${system.id} has no Reset action`);
  if (imageUrl) {
    const schemes = profile.virtualMedia.imageSchemes;
    if (schemes && !schemes.includes(schemeOf(imageUrl)))
      why.push(`${profile.name} accepts only ${schemes.join('/')} images, not ${schemeOf(imageUrl)}://`);
    const proto = transferProtocolOfUrl(imageUrl);
    const slot = slots[0];
    if (slot && proto && slot.transferProtocols.length > 0 && !slot.transferProtocols.includes(proto))
      why.push(`slot ${slot.id} accepts ${slot.transferProtocols.join('/')} only, not ${proto}`);
  }
  if (why.length > 0) return { strategy: 'virtual-media', usable: false, reasons: why };
  const slot = slots[0]!;
  return {
    strategy: 'virtual-media',
    usable: true,
    reasons: [
      `${slot.insert === 'action' ? 'InsertMedia' : 'PATCH'} on ${slot.path}`,
      `boot once ${bootTargetFor('cd', profile, system.bootTargetsRaw)}${system.settingsPath ? ` (settings object ${system.settingsPath})` : ''}`,
    ],
  };
}

function assessImagePush(probe: BmcProbe, imageUrl?: string): StrategyAssessment {
  const why: string[] = [];
  const u = probe.update;
  if (!u) why.push(probe.updateMissing ?? 'no UpdateService.SimpleUpdate');
  else if (u.inventoryError) why.push(`no OS image target known: ${u.inventoryError}`);
  else if (u.osTargets.length === 0)
    why.push(
      `no OS image target in FirmwareInventory (${u.inventory.map((p) => p.split('/').pop()).join(', ') || 'empty'})`,
    );
  if (!probe.system.resetTarget) why.push(`system ${probe.system.id} has no Reset action`);
  if (u && imageUrl) {
    const proto = transferProtocolOfUrl(imageUrl);
    if (proto && u.protocols.length > 0 && !u.protocols.includes(proto))
      why.push(`SimpleUpdate accepts ${u.protocolsRaw.join('/')} only, not ${proto}`);
  }
  if (why.length > 0 || !u) return { strategy: 'image-push', usable: false, reasons: why };
  return {
    strategy: 'image-push',
    usable: true,
    reasons: [`SimpleUpdate to ${u.osTargets[0]}`, `protocols ${u.protocolsRaw.join('/') || 'unspecified'}`],
  };
}

function assessHttpBoot(probe: BmcProbe, imageUrl?: string): StrategyAssessment {
  const why: string[] = [];
  const { system } = probe;
  if (!system.hasBoot || !system.httpBootUri) why.push('no Boot.HttpBootUri');
  if (system.bootTargetsRaw.length > 0 && !system.bootTargetsRaw.includes('UefiHttp'))
    why.push('boot target UefiHttp not offered');
  if (system.bootTargetsRaw.length === 0 && system.hasBoot)
    why.push('boot targets unknown (no AllowableValues)');
  if (!system.resetTarget) why.push(`system ${system.id} has no Reset action`);
  if (imageUrl && !/^https?:$/.test(`${schemeOf(imageUrl)}:`))
    why.push('UEFI HTTP boot needs an http(s) URL');
  if (why.length > 0) return { strategy: 'http-boot', usable: false, reasons: why };
  return { strategy: 'http-boot', usable: true, reasons: ['Boot.HttpBootUri + UefiHttp once'] };
}

/** Assesses every strategy; usable ones first, in recommendation order. */
export function assessStrategies(probe: BmcProbe, imageUrl?: string): StrategyAssessment[] {
  const all = STRATEGY_ORDER.map((s) =>
    s === 'virtual-media'
      ? assessVirtualMedia(probe, imageUrl)
      : s === 'image-push'
        ? assessImagePush(probe, imageUrl)
        : assessHttpBoot(probe, imageUrl),
  );
  return [...all.filter((a) => a.usable), ...all.filter((a) => !a.usable)];
}
