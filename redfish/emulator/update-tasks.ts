/**
 * Emulated UpdateService.SimpleUpdate with tasks (202 + task monitor, Task
 * resource under TaskService/Tasks): the image is fetched like a BMC would,
 * and an OS image pushed to a DPU target boots at the system's next power On.
 */
import type { BootEvent, EmulatorContext } from './context.js';
import { fetchImageLikeABmc } from './image-fetch.js';
import { fail, message, REG, type Reply } from './messages.js';
import type { PowerAndBoot } from './power-boot.js';
import { type Json, normalisePath } from './resources.js';

const TASKS = '/redfish/v1/TaskService/Tasks';
const MONITORS = '/redfish/v1/TaskService/TaskMonitors';

/** SimpleUpdate and the tasks it creates. */
export class UpdateAndTasks {
  #nextTask = 1;

  constructor(
    private readonly ctx: EmulatorContext,
    private readonly power: PowerAndBoot,
    private readonly taskMs: number,
  ) {}

  /**
   * GET of a task monitor: 202 while the task runs, then the task (OData 4.01
   * async semantics adopted by DSP0266); `undefined` when `path` is no monitor.
   */
  monitor(path: string): Reply | undefined {
    const m = /^\/redfish\/v1\/TaskService\/TaskMonitors\/(\d+)$/.exec(path);
    if (!m) return undefined;
    const task = this.ctx.r.get(`${TASKS}/${m[1]}`);
    if (!task) throw fail(404, `${REG}.ResourceNotFound`, 'The task monitor was not found.');
    if (task.TaskState === 'Running' || task.TaskState === 'New')
      return { status: 202, body: task, headers: { Location: path, 'Retry-After': '1' } };
    return { status: 200, body: task, headers: {} };
  }

  simpleUpdate(b: Json): Reply {
    const { ctx } = this;
    const svc = ctx.r.get('/redfish/v1/UpdateService');
    const act = svc?.Actions?.['#UpdateService.SimpleUpdate'];
    if (!act) throw fail(404, `${REG}.ResourceNotFound`, 'SimpleUpdate is not supported.');
    if (typeof b.ImageURI !== 'string' || !b.ImageURI)
      throw fail(
        400,
        `${REG}.ActionParameterMissing`,
        'The action UpdateService.SimpleUpdate requires the parameter ImageURI to be present in the request body.',
        {
          related: ['#/ImageURI'],
        },
      );
    const protos: string[] = act['TransferProtocol@Redfish.AllowableValues'] ?? [];
    if (b.TransferProtocol !== undefined && protos.length && !protos.includes(b.TransferProtocol))
      throw fail(
        400,
        `${REG}.ActionParameterValueNotInList`,
        `The value '${b.TransferProtocol}' for the parameter TransferProtocol in the action UpdateService.SimpleUpdate is not in the list of acceptable values.`,
        {
          related: ['#/TransferProtocol'],
        },
      );
    const targets: string[] = Array.isArray(b.Targets) ? b.Targets : [];
    for (const t of targets) {
      if (typeof t !== 'string' || !ctx.r.has(normalisePath(t.startsWith('/') ? t : `/${t}`)))
        throw fail(
          400,
          `${REG}.ActionParameterValueNotInList`,
          `The value '${String(t)}' for the parameter Targets in the action UpdateService.SimpleUpdate is not in the list of acceptable values.`,
          {
            related: ['#/Targets'],
          },
        );
    }
    const id = String(this.#nextTask++);
    const taskPath = `${TASKS}/${id}`;
    const monitor = `${MONITORS}/${id}`;
    const task: Json = {
      '@odata.id': taskPath,
      '@odata.type': '#Task.v1_7_4.Task',
      Id: id,
      Name: 'SimpleUpdate',
      TaskState: 'Running',
      TaskStatus: 'OK',
      PercentComplete: 0,
      TaskMonitor: monitor,
      StartTime: new Date().toISOString(),
      // bmcweb (task.hpp, update_service.hpp) appends to Messages as the task runs: TaskStarted when
      // it is made, TaskProgressChanged at each progress, then TaskCompletedOK or TaskAborted.
      Messages: [taskEvent('TaskStarted', `The task with Id '${id}' has started.`, [id], 'OK')],
    };
    ctx.r.set(taskPath, task);
    ctx.syncCollection(TASKS);
    const url = b.ImageURI;
    const osTarget = targets.some((t) => /(^|\/)(DPU_OS|[^/]*OS_Image[^/]*)$/i.test(t));
    const rshim = [...ctx.r.entries()].find(([p]) => p.endsWith('/Oem/Nvidia'))?.[1];
    ctx.track(
      (async () => {
        let fetch: BootEvent['fetch'];
        try {
          fetch = await fetchImageLikeABmc(url, ctx.opts.imageFetch);
        } catch (err) {
          fetch = { error: String((err as Error)?.message ?? err) };
        }
        if (ctx.stopped) return;
        task.PercentComplete = 50;
        task.Messages.push(
          taskEvent(
            'TaskProgressChanged',
            `The task with Id '${id}' has changed to progress 50 percent complete.`,
            [id, '50'],
            'OK',
          ),
        );
        if (ctx.faults.stallTasks) return; // fault: the task never finishes
        await new Promise<void>((r) => ctx.later(this.taskMs, r));
        if (ctx.stopped) return;
        const finish = (state: string, messageId: string, text: string) => {
          Object.assign(task, {
            TaskState: state,
            TaskStatus: state === 'Completed' ? 'OK' : 'Critical',
            PercentComplete: state === 'Completed' ? 100 : task.PercentComplete,
            EndTime: new Date().toISOString(),
            Messages: [
              ...task.Messages,
              message(messageId, text, {
                args: [id],
                severity: state === 'Completed' ? 'OK' : 'Critical',
                resolution: 'None.',
              }),
            ],
          });
          ctx.touch(taskPath);
        };
        if ('error' in fetch)
          return finish(
            'Exception',
            'Update.1.0.TransferFailed',
            `Transfer of image '${url}' failed: ${fetch.error}`,
          );
        if (ctx.faults.failTasks)
          return finish(
            'Exception',
            'TaskEvent.1.0.TaskAborted',
            `The task with Id '${id}' has been aborted: ${ctx.faults.failTasks}`,
          );
        if (osTarget && rshim && rshim.BmcRShim?.BmcRShimEnabled !== true)
          // Emulator model of the BlueField docs: the BFB goes to the DPU through the BMC's RShim.
          return finish(
            'Exception',
            'TaskEvent.1.0.TaskAborted',
            'The BFB could not be pushed: BMC RShim is disabled (enable BmcRShim under Managers/Bluefield_BMC/Oem/Nvidia).',
          );
        if (osTarget) {
          const sys = ctx.systems().find((s) => s.SystemType === 'DPU') ?? ctx.systems()[0];
          if (sys) this.power.pushImage(normalisePath(String(sys['@odata.id'])), url, fetch);
        }
        finish('Completed', 'TaskEvent.1.0.TaskCompletedOK', `The task with Id '${id}' has completed.`);
      })(),
    );
    return { status: 202, body: task, headers: { Location: monitor, 'Retry-After': '1' } };
  }
}

/** A TaskEvent registry message (bmcweb task_messages.cpp: `MessageSeverity`, Resolution "None."). */
function taskEvent(name: string, text: string, args: string[], severity: 'OK' | 'Critical'): Json {
  return message(`TaskEvent.1.0.${name}`, text, { args, severity, resolution: 'None.' });
}
