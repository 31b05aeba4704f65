/**
 * Virtual media: eject and confirm, insert (InsertMedia with the payload the
 * BMC accepts, or PATCH where there is no action) and confirm.
 */
import type { RedfishClient, RedfishJson } from '../client.js';
import { RedfishError } from '../errors.js';
import type { MediaSlotInfo } from '../probe.js';
import type { VendorProfile } from '../profiles/index.js';
import { transferProtocolOfUrl, transferProtocolToRedfish } from '../vocabulary.js';
import { type PollOptions, pollUntil } from '../wait.js';
import type { ImageSpec } from './context.js';

function isEmpty(slot: RedfishJson, profile: VendorProfile): boolean {
  if (slot.Inserted === true) return false;
  // Supermicro leaves ImageName after eject; ConnectedVia NotConnected is the reliable signal.
  if (profile.virtualMedia.emptySignal === 'connected-via' && slot.ConnectedVia !== undefined)
    return slot.ConnectedVia === 'NotConnected';
  return true;
}

/** Ejects a slot if it holds anything, then polls until it reads empty (REDFISH_ERR_MEDIA_STUCK otherwise). */
export async function ejectAndConfirm(
  client: RedfishClient,
  slot: MediaSlotInfo,
  profile: VendorProfile,
  poll: PollOptions,
): Promise<string> {
  const cur = (await client.get(slot.path)).body;
  if (isEmpty(cur, profile) && (cur.Image === null || cur.Image === undefined || cur.Image === ''))
    return `${slot.id} already empty`;
  if (slot.ejectTarget) {
    await client.post(slot.ejectTarget, profile.virtualMedia.ejectBody === 'empty-object' ? {} : undefined);
  } else if (slot.insert === 'patch') {
    await client.patch(slot.path, { Image: null, Inserted: false }, 'fetch');
  } else {
    throw new RedfishError(
      'REDFISH_ERR_UNSUPPORTED',
      `slot ${slot.path} holds media but offers no way to eject it`,
    );
  }
  let last = 'unknown';
  try {
    await pollUntil(
      `${slot.path} to be empty`,
      poll,
      async () => {
        const s = (await client.get(slot.path)).body;
        last = `Inserted=${String(s.Inserted)} Image=${String(s.Image)}`;
        return isEmpty(s, profile) ? true : undefined;
      },
      () => last,
      client.signal,
    );
  } catch (err) {
    if (err instanceof RedfishError && err.code === 'REDFISH_ERR_WAIT_TIMEOUT')
      throw new RedfishError(
        'REDFISH_ERR_MEDIA_STUCK',
        `${slot.path} still reports media after eject (${last})`,
        {
          cause: err,
        },
      );
    throw err;
  }
  return `ejected ${slot.id} (was ${String(cur.Image)})`;
}

/** The dialect adaptations a BMC's 400 asks for (sushy is_transfer_protocol_required & co). */
function adapt(err: RedfishError, body: RedfishJson, image: ImageSpec): string | undefined {
  if (err.status !== 400 && err.status !== 422) return undefined;
  const text = err.bmcText();
  for (const prop of ['Inserted', 'WriteProtected']) {
    if (
      prop in body &&
      (err.hasMessage('PropertyUnknown') || err.hasMessage('ActionParameterUnknown')) &&
      text.includes(prop)
    ) {
      delete body[prop];
      return `BMC rejected ${prop}: removed it`;
    }
  }
  if (!('TransferProtocolType' in body) && /TransferProtocolType/i.test(text)) {
    const p = transferProtocolOfUrl(image.url);
    if (p) {
      body.TransferProtocolType = transferProtocolToRedfish(p);
      return `BMC asked for TransferProtocolType: added ${body.TransferProtocolType}`;
    }
  }
  if (!('TransferMethod' in body) && /TransferMethod/i.test(text)) {
    body.TransferMethod = 'Stream';
    return 'BMC asked for TransferMethod: added Stream';
  }
  if (!('UserName' in body) && /UserName|Password|credential/i.test(text)) {
    // NVIDIA DGX (AMI) requires credentials even for anonymous HTTP (sushy bug 2071945).
    body.UserName = 'none';
    body.Password = 'none';
    return 'BMC asked for credentials: sent placeholders';
  }
  return undefined;
}

/** Inserts `image` into `slot` with the BMC's dialect, then polls until the slot reports it. */
export async function insertAndConfirm(
  client: RedfishClient,
  slot: MediaSlotInfo,
  profile: VendorProfile,
  image: ImageSpec,
  poll: PollOptions,
): Promise<string> {
  const f = profile.virtualMedia.insertFields;
  const body: RedfishJson = { Image: image.url };
  if (f.inserted || slot.insert === 'patch') body.Inserted = true;
  if (f.writeProtected) body.WriteProtected = true;
  const proto = transferProtocolOfUrl(image.url);
  if (f.transferProtocolType && proto) body.TransferProtocolType = transferProtocolToRedfish(proto);
  if (f.transferMethod && slot.insert === 'action') body.TransferMethod = 'Stream';
  if (image.username !== undefined) {
    body.UserName = image.username;
    body.Password = image.password ?? '';
  }
  const notes: string[] = [];
  for (let i = 0; ; i++) {
    try {
      if (slot.insert === 'action') await client.post(slot.insertTarget!, body);
      else await client.patch(slot.path, body, 'fetch');
      break;
    } catch (err) {
      const note = i < 5 && err instanceof RedfishError ? adapt(err, body, image) : undefined;
      if (!note) throw err;
      notes.push(note);
    }
  }
  let last = 'unknown';
  try {
    await pollUntil(
      `${slot.path} to report the image inserted`,
      poll,
      async () => {
        const s = (await client.get(slot.path)).body;
        last = `Inserted=${String(s.Inserted)} Image=${String(s.Image)}`;
        const name = image.url.split('/').pop();
        return s.Inserted === true && (s.Image === image.url || (name !== undefined && s.ImageName === name))
          ? true
          : undefined;
      },
      () => last,
      client.signal,
    );
  } catch (err) {
    if (err instanceof RedfishError && err.code === 'REDFISH_ERR_WAIT_TIMEOUT')
      throw new RedfishError(
        'REDFISH_ERR_MEDIA_NOT_INSERTED',
        `${slot.path} never reported ${image.url} inserted (${last})`,
        {
          cause: err,
        },
      );
    throw err;
  }
  const how = slot.insert === 'action' ? 'InsertMedia' : 'PATCH';
  return `${how} ${slot.path} ${JSON.stringify({ ...body, ...(body.Password ? { Password: '***' } : {}) })}${notes.length ? `; ${notes.join('; ')}` : ''}`;
}
