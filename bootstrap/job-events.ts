/**
 * Provisioning jobs' changes into the append-only event log (and so to SSE
 * streams and webhooks): the JobRunner's `JobEvents` port, implemented on
 * `EventLog`. Appends run after the job's own write; a failed append is
 * reported, never thrown into the job.
 */
import { appendJobEvent, type EventLog } from './events.js';
import type { DeviceRunChange, JobChange, JobEvents } from './job-runner.js';

/** `JobEvents` that append `job.created`, `job.state` and `job.device.state` events to `log`. */
export function jobEventsToLog(log: EventLog, onError: (err: unknown) => void): JobEvents {
  return {
    jobChanged(c: JobChange) {
      const event = c.created
        ? ({ type: 'job.created', job: c.jobId, data: { kind: c.kind, devices: c.created.devices } } as const)
        : ({ type: 'job.state', job: c.jobId, data: { to: c.state, kind: c.kind } } as const);
      appendJobEvent(log, event).catch(onError);
    },
    deviceChanged(c: DeviceRunChange) {
      appendJobEvent(log, {
        type: 'job.device.state',
        job: c.jobId,
        serial: c.serial,
        data: {
          to: c.state,
          step: c.step,
          attempt: c.attempt,
          ...(c.error ? { error: { code: c.error.code, message: c.error.message } } : {}),
        },
      }).catch(onError);
    },
  };
}
