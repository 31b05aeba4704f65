/**
 * The BMC's messages of successful work, as a client view with a message log gathers
 * them from the emulator: task Messages (once each, however often the task is
 * polled), Base Success on an action, iLO's success wrapped in `error`, a retried
 * 503 on the way; bounded, and never a password.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BmcMessageLog,
  type BmcEmulator,
  type BmcEmulatorOptions,
  RedfishClient,
  RedfishError,
  startBmcEmulator,
} from '../../redfish/index.js';
import { FAST_EMULATOR, fastClient, type ImageServer, startImageServer } from './helpers.js';

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(() => images.close());

async function withBmc(
  opts: BmcEmulatorOptions,
  fn: (c: RedfishClient, log: BmcMessageLog, emu: BmcEmulator, base: RedfishClient) => Promise<void>,
): Promise<void> {
  const emu = await startBmcEmulator({ ...FAST_EMULATOR, ...opts });
  const base = new RedfishClient(fastClient(emu.url));
  const log = new BmcMessageLog();
  try {
    await fn(base.withMessageLog(log), log, emu, base);
  } finally {
    await base.close();
    await emu.close();
  }
}

const ids = (log: BmcMessageLog) => log.messages.map((m) => m.MessageId);

describe('BMC message log', () => {
  it('BlueField: RShim PATCH and reset answer Base Success; the SimpleUpdate task Messages land once each', async () => {
    await withBmc({ persona: 'bluefield' }, async (c, log) => {
      await c.patch('/redfish/v1/Managers/Bluefield_BMC/Oem/Nvidia', {
        BmcRShim: { BmcRShimEnabled: true },
      });
      const accepted = await c.post('/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate', {
        ImageURI: `${images.url}/os.bfb`,
        TransferProtocol: 'HTTP',
        Targets: ['redfish/v1/UpdateService/FirmwareInventory/DPU_OS'],
      });
      expect(accepted.status).toBe(202);
      const task = await c.waitForTask(accepted);
      expect(task.TaskState).toBe('Completed');
      // The task was read many times (202 body, then polls); its messages count once.
      const reset = await c.post('/redfish/v1/Systems/Bluefield/Actions/ComputerSystem.Reset', {
        ResetType: 'ForceRestart',
      });
      expect(reset.status).toBe(200);
      expect(ids(log)).toEqual([
        'Base.1.16.Success',
        'TaskEvent.1.0.TaskStarted',
        'TaskEvent.1.0.TaskProgressChanged',
        'TaskEvent.1.0.TaskCompletedOK',
        'Base.1.16.Success',
      ]);
      expect(log.messages[3]).toEqual({
        MessageId: 'TaskEvent.1.0.TaskCompletedOK',
        Message: `The task with Id '${String(task.Id)}' has completed.`,
        Severity: 'OK',
        Resolution: 'None.',
      });
      expect(log.messages[0]).toMatchObject({
        Message: 'The request completed successfully.',
        Severity: 'OK',
      });
    });
  });

  it('iLO: a success wrapped in `error` counts its ExtendedInfo, not the wrapper code', async () => {
    await withBmc({ persona: 'ilo' }, async (c, log) => {
      const res = await c.post('/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', {
        ResetType: 'ForceRestart',
      });
      expect(res.status).toBe(200);
      expect(log.messages).toEqual([{ MessageId: 'Base.1.12.Success' }]);
    });
  });

  it('a 503 retried on the way is recorded once, beside the success', async () => {
    await withBmc({ persona: 'idrac' }, async (c, log, emu) => {
      emu.faults.add({
        method: 'PATCH',
        path: /\/Systems\/System\.Embedded\.1$/,
        status: 503,
        times: 2,
        messageId: 'IDRAC.2.8.RAC0218',
        message: 'The maximum number of user sessions is reached.',
      });
      await c.patch('/redfish/v1/Systems/System.Embedded.1', { Boot: { BootSourceOverrideTarget: 'Cd' } });
      // The 503 read as a failure reads it: its ExtendedInfo, then the `error.code` it came under.
      expect(ids(log)).toEqual([
        'IDRAC.2.8.RAC0218',
        'Base.1.16.GeneralError',
        'Base.1.12.Success',
        'IDRAC.2.8.SYS413',
      ]);
      expect(log.messages[3]).toEqual({
        MessageId: 'IDRAC.2.8.SYS413',
        Message: 'The operation successfully completed.',
        Severity: 'Informational',
        Resolution: 'No response action is required.',
      });
    });
  });

  it('the client a logging view came from records nothing; views of the logging view do', async () => {
    await withBmc({ persona: 'generic' }, async (c, log, _emu, base) => {
      const suspend = { ResetType: 'Suspend' };
      await expect(
        base
          .withSignal(new AbortController().signal)
          .post('/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', suspend),
      ).rejects.toBeInstanceOf(RedfishError);
      expect(log.messages).toEqual([]);
      await expect(
        c
          .withSignal(new AbortController().signal)
          .withSpanAttributes({ a: 'b' })
          .post('/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', { ResetType: 'Suspend' }),
      ).rejects.toBeInstanceOf(RedfishError);
      expect(ids(log)).toEqual(['Base.1.16.ActionParameterNotSupported']);
    });
  });

  it('never keeps a password: neither the client’s nor one sent in the body, even when the BMC echoes it', async () => {
    await withBmc({ persona: 'openbmc' }, async (c, log) => {
      // bmcweb refuses http:// images and echoes the URI in its message.
      const err = await c
        .post('/redfish/v1/Managers/bmc/VirtualMedia/Slot_1/Actions/VirtualMedia.InsertMedia', {
          Image: 'http://images/hunter2-pw/secret/dpu.iso',
          TransferMethod: 'Stream',
          UserName: 'lab',
          Password: 'hunter2-pw',
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedfishError);
      const text = JSON.stringify(log.messages);
      expect(text).toContain('ResourceAtUriInUnknownFormat');
      expect(text).toContain('http://images/[redacted]/[redacted]/dpu.iso');
      expect(text).not.toContain('hunter2');
      expect(text).not.toMatch(/\bsecret\b/);
    });
  });

  it('keeps the newest `limit` distinct messages, each cut to `maxChars`', () => {
    const log = new BmcMessageLog({ limit: 3, maxChars: 20 });
    for (let i = 1; i <= 5; i++)
      log.record(`POST /a${i}`, 200, {
        '@Message.ExtendedInfo': [{ MessageId: `X.${i}`, Message: `message number ${i} `.repeat(5) }],
      });
    log.record('POST /a5', 200, { '@Message.ExtendedInfo': [{ MessageId: 'X.5', Message: 'again' }] });
    expect(ids(log)).toEqual(['X.4', 'X.5', 'X.5']);
    expect(log.messages[0]?.Message).toHaveLength(20);
    expect(log.messages[0]?.Message?.endsWith('…')).toBe(true);
    // A secret learned after the message arrived is still kept out of it.
    log.record('GET /c', 200, {
      '@Message.ExtendedInfo': [{ MessageId: 'Z.1', Message: 'user pw=s3cr3t-late' }],
    });
    log.addSecretsOf({ Nested: { Password: 's3cr3t-late' } });
    expect(log.messages.at(-1)?.Message).toBe('user pw=[redacted]');
    // MessageArgs and RelatedProperties are not kept (args may carry values the client sent).
    log.record('GET /b', 200, {
      '@Message.ExtendedInfo': [{ MessageId: 'Y.1', MessageArgs: ['x'], RelatedProperties: ['#/P'] }],
    });
    expect(log.messages.at(-1)).toEqual({ MessageId: 'Y.1' });
  });

  it('carries over what an earlier replica stored as the oldest messages, bounded, and counts revisions', () => {
    const log = new BmcMessageLog({ limit: 3, maxChars: 20 });
    expect(log.revision).toBe(0);
    log.carryOver([
      { MessageId: 'Old.0' },
      'not a message',
      { MessageId: 'Old.1', Message: 'same words', Severity: 'OK', MessageArgs: ['dropped'] },
      { MessageId: 'Old.1', Message: 'same words', Severity: 'OK' },
      { Message: 'no id' },
      { MessageId: 'Old.2', Message: 'x'.repeat(100) },
    ]);
    // Two equal earlier entries (two requests) stay two; the bound keeps the newest three.
    expect(ids(log)).toEqual(['Old.1', 'Old.1', 'Old.2']);
    expect(log.messages[0]).toEqual({ MessageId: 'Old.1', Message: 'same words', Severity: 'OK' });
    expect(log.messages[2]?.Message).toHaveLength(20);
    const before = log.revision;
    expect(before).toBeGreaterThan(0);
    log.record('POST /a', 200, { '@Message.ExtendedInfo': [{ MessageId: 'New.1' }] });
    expect(ids(log)).toEqual(['Old.1', 'Old.2', 'New.1']);
    expect(log.revision).toBe(before + 1);
    // Nothing new kept, no new revision (a poll of the same answer).
    log.record('POST /a', 200, { '@Message.ExtendedInfo': [{ MessageId: 'New.1' }] });
    expect(log.revision).toBe(before + 1);
    // Heard again after the takeover (the task the first replica started, polled by this one):
    // the carried copy stands for it, once per copy.
    log.record('GET /TaskService/Tasks/1', 200, {
      '@Message.ExtendedInfo': [{ MessageId: 'Old.2', Message: 'x'.repeat(100) }],
    });
    expect(ids(log)).toEqual(['Old.1', 'Old.2', 'New.1']);
    log.record('GET /TaskService/Tasks/2', 200, {
      '@Message.ExtendedInfo': [{ MessageId: 'Old.2', Message: 'x'.repeat(100) }],
    });
    expect(ids(log)).toEqual(['Old.2', 'New.1', 'Old.2']);
    const after = log.revision;
    log.carryOver(null);
    log.carryOver({ MessageId: 'not an array' });
    expect(log.revision).toBe(after);
  });
});
