/**
 * Emulated PATCH: If-Match (412 on a stale ETag, DSP0266 REQ_HEADERS_IF_MATCH),
 * the boot override on a system or its Settings object with the vendor
 * dialects of the personas, virtual media, the BlueField RShim switch and the
 * account password.
 */
import type { EmulatorContext } from './context.js';
import { fail, REG, type Reply } from './messages.js';
import type { Json } from './resources.js';
import type { Sessions } from './sessions.js';
import type { VirtualMedia } from './virtual-media.js';

/** PATCH of emulated resources. */
export class PatchHandler {
  constructor(
    private readonly ctx: EmulatorContext,
    private readonly media: VirtualMedia,
    private readonly sessions: Sessions,
  ) {}

  patch(path: string, body: unknown, ifMatch: string | undefined): Reply {
    const { ctx } = this;
    const res = ctx.r.get(path);
    if (!res)
      throw fail(404, `${REG}.ResourceNotFound`, `The requested resource named '${path}' was not found.`);
    if (ifMatch !== undefined && ifMatch !== ctx.etag(path) && ifMatch !== '*')
      throw fail(
        412,
        `${REG}.PreconditionFailed`,
        'The ETag supplied did not match the ETag required to change this resource.',
        {
          resolution: 'Try the operation again using the appropriate ETag.',
        },
      );
    const b = (body ?? {}) as Json;
    const type = String(res['@odata.type'] ?? '');
    if (/#ComputerSystem\./.test(type)) this.#patchSystem(path, res, b);
    else if (/#VirtualMedia\./.test(type)) this.media.patch(path, res, b);
    else if (path.endsWith('/Oem/Nvidia')) {
      if (b.BmcRShim && typeof b.BmcRShim === 'object') {
        res.BmcRShim = { ...res.BmcRShim, ...b.BmcRShim };
      }
    } else if (path.startsWith('/redfish/v1/AccountService/Accounts/')) {
      // The emulator keeps one account; the new password applies to it.
      if (typeof b.Password === 'string') this.sessions.setPassword(b.Password);
    } else
      throw fail(
        405,
        `${REG}.OperationNotAllowed`,
        'PATCH is not allowed on this URI.',
        {},
        { Allow: ctx.allow.get(path) ?? 'GET' },
      );
    ctx.touch(path);
    return { status: 200, body: res, headers: { ETag: ctx.etag(path) } };
  }

  #patchSystem(path: string, sys: Json, b: Json): void {
    const { ctx } = this;
    const persona = ctx.persona;
    for (const k of Object.keys(b))
      if (k !== 'Boot' && k !== 'AssetTag')
        throw fail(
          400,
          `${REG}.PropertyNotWritable`,
          `The property ${k} is a read only property and cannot be assigned a value.`,
          { related: [`#/${k}`] },
        );
    if (typeof b.AssetTag === 'string') sys.AssetTag = b.AssetTag;
    if (!b.Boot) return;
    if (!sys.Boot)
      throw fail(
        400,
        `${REG}.PropertyUnknown`,
        'The property Boot is not in the list of valid properties for the resource.',
        { related: ['#/Boot'] },
      );
    const settingsPath = sys['@Redfish.Settings']?.SettingsObject?.['@odata.id'];
    if (persona?.bootOnSettings && typeof settingsPath === 'string')
      // BlueField BMC docs: boot configuration is PATCHed to Systems/Bluefield/Settings.
      throw fail(
        400,
        `${REG}.PropertyNotWritable`,
        'The property Boot is a read only property and cannot be assigned a value.',
        {
          related: ['#/Boot'],
          resolution: `Apply boot settings through ${settingsPath}.`,
        },
      );
    const sysPath = path.endsWith('/Settings') ? path.slice(0, -'/Settings'.length) : path;
    if (persona?.rules.rejectBootDuringPost && ctx.r.get(sysPath)?.PowerState === 'PoweringOn')
      // HPE iLO: boot changes during POST are refused (Ironic post_boot_retry_*).
      throw fail(
        400,
        'iLO.2.15.UnableToModifyDuringSystemPOST',
        'The value for the property cannot be changed while the computer system is in POST.',
        {
          resolution: 'Retry the operation when the system is either off or has completed POST.',
        },
      );
    const boot = b.Boot as Json;
    const cur = sys.Boot as Json;
    const targets: string[] =
      ctx.r.get(sysPath)?.Boot?.['BootSourceOverrideTarget@Redfish.AllowableValues'] ?? [];
    for (const k of Object.keys(boot)) {
      if (
        !(k in cur) &&
        !['BootSourceOverrideEnabled', 'BootSourceOverrideTarget', 'BootSourceOverrideMode'].includes(k)
      )
        throw fail(
          400,
          `${REG}.PropertyUnknown`,
          `The property ${k} is not in the list of valid properties for the resource.`,
          { related: [`#/Boot/${k}`] },
        );
    }
    if (
      boot.BootSourceOverrideTarget !== undefined &&
      targets.length &&
      !targets.includes(boot.BootSourceOverrideTarget)
    )
      throw fail(
        400,
        `${REG}.PropertyValueNotInList`,
        `The value '${boot.BootSourceOverrideTarget}' for the property BootSourceOverrideTarget is not in the list of acceptable values.`,
        {
          args: [String(boot.BootSourceOverrideTarget), 'BootSourceOverrideTarget'],
          related: ['#/Boot/BootSourceOverrideTarget'],
        },
      );
    if (
      boot.BootSourceOverrideEnabled !== undefined &&
      !['Disabled', 'Once', 'Continuous'].includes(boot.BootSourceOverrideEnabled)
    )
      throw fail(
        400,
        `${REG}.PropertyValueNotInList`,
        `The value '${boot.BootSourceOverrideEnabled}' for the property BootSourceOverrideEnabled is not in the list of acceptable values.`,
        {
          related: ['#/Boot/BootSourceOverrideEnabled'],
        },
      );
    if (
      boot.BootSourceOverrideMode !== undefined &&
      !['UEFI', 'Legacy'].includes(boot.BootSourceOverrideMode)
    )
      throw fail(
        400,
        `${REG}.PropertyValueNotInList`,
        `The value '${boot.BootSourceOverrideMode}' for the property BootSourceOverrideMode is not in the list of acceptable values.`,
        {
          related: ['#/Boot/BootSourceOverrideMode'],
        },
      );
    // A target with Enabled omitted keeps "Disabled" on many BMCs (Supermicro must get Enabled every time).
    Object.assign(cur, boot);
    if (ctx.faults.keepContinuous && boot.BootSourceOverrideEnabled === 'Once')
      cur.BootSourceOverrideEnabled = 'Continuous';
  }
}
