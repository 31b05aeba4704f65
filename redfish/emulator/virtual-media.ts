/**
 * Emulated virtual media: InsertMedia/EjectMedia (VirtualMedia v1.6) with the
 * vendor dialects of the personas, and the older PATCH-based insert.
 */
import type { EmulatorContext } from './context.js';
import { fail, REG, type Reply } from './messages.js';
import { type Json, normalisePath } from './resources.js';

/** The virtual media slots of an emulated BMC. */
export class VirtualMedia {
  readonly #staleReads = new Map<string, number>();

  constructor(private readonly ctx: EmulatorContext) {}

  /** Slots usable by a system: its own collection, then its managers' (how sushy/Ironic find them). */
  slotsOf(sysPath: string): Json[] {
    const r = this.ctx.r;
    const sys = r.get(sysPath);
    const colls: string[] = [];
    if (sys?.VirtualMedia?.['@odata.id']) colls.push(sys.VirtualMedia['@odata.id']);
    for (const m of sys?.Links?.ManagedBy ?? []) {
      const mgr = r.get(normalisePath(m['@odata.id']));
      if (mgr?.VirtualMedia?.['@odata.id']) colls.push(mgr.VirtualMedia['@odata.id']);
    }
    const out: Json[] = [];
    for (const c of colls) {
      for (const mem of r.get(normalisePath(c))?.Members ?? []) {
        const s = r.get(normalisePath(mem['@odata.id']));
        if (s && !out.includes(s)) out.push(s);
      }
    }
    return out;
  }

  /**
   * How a GET shows the slot: Dell iDRAC reports Inserted briefly after eject
   * (Ironic story 2008504), so a persona may answer stale reads.
   */
  view(path: string, json: Json): Json {
    const stale = this.#staleReads.get(path) ?? 0;
    if (stale <= 0) return json;
    this.#staleReads.set(path, stale - 1);
    return { ...json, Inserted: true };
  }

  insert(slotPath: string, b: Json): Reply {
    this.ctx.actionOf(slotPath, 'VirtualMedia.InsertMedia');
    const slot = this.ctx.r.get(slotPath)!;
    const rules = this.ctx.persona?.rules ?? {};
    if (typeof b.Image !== 'string' || !b.Image)
      throw fail(
        400,
        `${REG}.ActionParameterMissing`,
        'The action VirtualMedia.InsertMedia requires the parameter Image to be present in the request body.',
        {
          args: ['VirtualMedia.InsertMedia', 'Image'],
          related: ['#/Image'],
        },
      );
    if (rules.rejectInsertedProps) {
      // Supermicro X11/X12 (sushy fix-insert-media-payload; ansible community.general#4839).
      for (const prop of ['Inserted', 'WriteProtected'])
        if (prop in b)
          throw fail(
            400,
            `${REG}.PropertyUnknown`,
            `The property ${prop} is not in the list of valid properties for the resource.`,
            {
              args: [prop],
              related: [`#/${prop}`],
            },
          );
    }
    const allowed: string[] =
      slot.Actions?.['#VirtualMedia.InsertMedia']?.['TransferProtocolType@Redfish.AllowableValues'] ?? [];
    if (b.TransferProtocolType !== undefined && allowed.length && !allowed.includes(b.TransferProtocolType))
      throw fail(
        400,
        `${REG}.ActionParameterValueNotInList`,
        `The value '${b.TransferProtocolType}' for the parameter TransferProtocolType in the action VirtualMedia.InsertMedia is not in the list of acceptable values.`,
        {
          related: ['#/TransferProtocolType'],
        },
      );
    if (rules.httpsOnly) {
      // openbmc/bmcweb virtual_media.hpp getTransferProtocolFromParam: only https:// and smb://.
      const scheme = /^([a-z]+):\/\//i.exec(b.Image)?.[1]?.toLowerCase();
      const ok = scheme
        ? scheme === 'https' || scheme === 'smb'
        : b.TransferProtocolType === 'HTTPS' || b.TransferProtocolType === 'CIFS';
      if (!ok)
        throw fail(
          400,
          `${REG}.ResourceAtUriInUnknownFormat`,
          `The resource at the URI '${b.Image}' is in a format not recognized by the service.`,
          {
            args: [b.Image],
            related: ['#/Image'],
          },
        );
    }
    if (rules.requireTransferMethod && b.TransferMethod !== 'Stream')
      throw fail(
        400,
        `${REG}.ActionParameterMissing`,
        'The action VirtualMedia.InsertMedia requires the parameter TransferMethod to be present in the request body.',
        {
          args: ['VirtualMedia.InsertMedia', 'TransferMethod'],
          related: ['#/TransferMethod'],
        },
      );
    if (slot.Inserted === true)
      throw fail(
        409,
        `${REG}.ResourceInUse`,
        'The change to the requested resource failed because the resource is in use or in transition.',
        {
          resolution: 'Eject the media first.',
        },
      );
    this.#mount(
      slotPath,
      b.Image,
      b.Inserted !== false,
      b.WriteProtected ?? true,
      b.TransferProtocolType,
      b.TransferMethod,
    );
    return { status: 204 };
  }

  #mount(
    slotPath: string,
    image: string,
    inserted: boolean,
    wp: boolean,
    proto?: string,
    method?: string,
  ): void {
    const slot = this.ctx.r.get(slotPath)!;
    Object.assign(slot, {
      Image: image,
      ImageName: image.split('/').pop() ?? image,
      Inserted: inserted,
      WriteProtected: wp,
      ConnectedVia: 'URI',
      ...(proto ? { TransferProtocolType: proto } : {}),
      ...(method ? { TransferMethod: method } : {}),
    });
    this.ctx.touch(slotPath);
  }

  #unmount(slotPath: string): void {
    if (this.ctx.faults.stuckMedia) return; // fault: the slot stays inserted
    const slot = this.ctx.r.get(slotPath)!;
    Object.assign(slot, { Image: null, ImageName: null, Inserted: false, ConnectedVia: 'NotConnected' });
    if ('TransferProtocolType' in slot) slot.TransferProtocolType = null;
    this.ctx.touch(slotPath);
    const stale = this.ctx.persona?.rules.staleInsertedReads ?? 0;
    if (stale > 0) this.#staleReads.set(slotPath, stale);
  }

  eject(slotPath: string, text: string): Reply {
    this.ctx.actionOf(slotPath, 'VirtualMedia.EjectMedia');
    if (this.ctx.persona?.rules.ejectNeedsBody && !text.trim())
      // HPE iLO: EjectMedia without a body → 415 (sushy fix-eject-media-empty-dict).
      throw fail(
        415,
        `${REG}.UnsupportedMediaType`,
        'The request specified a Content-Type header that is not supported.',
      );
    this.#unmount(slotPath);
    return { status: 204 };
  }

  /** PATCH-based insert/eject (pre-v1_2 services, early Lenovo XCC). */
  patch(path: string, slot: Json, b: Json): void {
    const allow = this.ctx.allow.get(path);
    if (allow && !/PATCH/.test(allow))
      throw fail(
        405,
        `${REG}.OperationNotAllowed`,
        'PATCH is not allowed on this virtual media resource; use its actions.',
        {},
        { Allow: allow },
      );
    if (this.ctx.persona?.rules.patchNeedsInserted && typeof b.Image === 'string' && b.Inserted === undefined)
      // Lenovo XCC (python-redfish-lenovo#9): PATCH insert needs Inserted.
      throw fail(
        400,
        `${REG}.PropertyMissing`,
        'The property Inserted is a required property and must be included in the request.',
        { related: ['#/Inserted'] },
      );
    if (typeof b.Image === 'string' && b.Image && b.Inserted !== false) {
      this.#mount(path, b.Image, true, b.WriteProtected ?? true, b.TransferProtocolType, b.TransferMethod);
    } else if (b.Image === null || b.Inserted === false) {
      this.#unmount(path);
    } else if ('WriteProtected' in b) slot.WriteProtected = Boolean(b.WriteProtected);
  }
}
