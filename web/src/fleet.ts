/**
 * The fleet as the page holds it: every device and, for devices in an
 * unfinished job, that run's state and step. Loaded once, then kept current
 * by live events; subscribers are told once per animation frame however many
 * events arrived, so 100 updates cost one render.
 */
import type { Api, Device } from './api';
import type { LiveEvent } from './events';

/** A device's run in a job, as far as the fleet view needs it. */
export interface RunInfo {
  job: string;
  state: string;
  step: string;
  error?: string;
}

/** Devices by serial plus their current runs. */
export class Fleet {
  devices = new Map<string, Device>();
  runs = new Map<string, RunInfo>();
  /** Sorted serials; rebuilt when devices come or go. */
  serials: string[] = [];
  /** Bumped on every applied change (components compare it). */
  version = 0;
  loaded = false;
  #listeners = new Set<() => void>();
  #scheduled = false;
  #refetch = new Set<string>();
  #fetching = false;

  constructor(private api: Api) {}

  subscribe(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #changed(resort = false): void {
    if (resort) this.serials = [...this.devices.keys()].sort();
    this.version++;
    if (this.#scheduled) return;
    this.#scheduled = true;
    requestAnimationFrame(() => {
      this.#scheduled = false;
      for (const fn of this.#listeners) fn();
    });
  }

  /** Loads every device and the runs of unfinished jobs. */
  async load(): Promise<void> {
    performance.mark('dpu-ztp:fleet-fetch-start');
    const [devices, running, queued] = await Promise.all([
      this.api.devices(),
      this.api.jobs({ state: 'running', limit: 100 }),
      this.api.jobs({ state: 'queued', limit: 100 }),
    ]);
    this.devices = new Map(devices.map((d) => [d.serial, d]));
    this.runs.clear();
    const jobs = await Promise.all([...running.items, ...queued.items].map((j) => this.api.job(j.id)));
    for (const j of jobs)
      for (const r of j.devices) this.runs.set(r.serial, { job: j.id, state: r.state, step: r.step });
    this.loaded = true;
    performance.mark('dpu-ztp:fleet-fetched');
    this.#changed(true);
  }

  /** Applies a batch of live events. */
  apply(events: LiveEvent[]): void {
    let resort = false;
    for (const e of events) {
      const serial = e.serial;
      const d = serial ? this.devices.get(serial) : undefined;
      switch (e.type) {
        case 'device.state':
          if (d) this.devices.set(d.serial, { ...d, state: e.data.to as Device['state'] });
          break;
        case 'device.progress':
          if (d)
            this.devices.set(d.serial, {
              ...d,
              lastProgress: {
                type: String(e.data.progressType),
                message: (e.data.message as string | undefined) ?? null,
                at: e.createdAt,
              },
            });
          break;
        case 'device.updated':
        case 'device.approved':
        // A revocation of the device's IDevID (or its lifting): its page re-reads it.
        case 'idevid.revoked':
        case 'idevid.unrevoked':
          if (serial) this.#refetch.add(serial);
          break;
        case 'device.deleted':
          if (serial && this.devices.delete(serial)) resort = true;
          this.runs.delete(serial ?? '');
          break;
        case 'job.device.state':
          if (serial && e.job) {
            const prev = this.runs.get(serial);
            const err = e.data.error as { code?: string; message?: string } | undefined;
            this.runs.set(serial, {
              job: e.job,
              state: String(e.data.to),
              // The run's state events carry the step it moved to (migration 0080's trigger).
              step: typeof e.data.step === 'string' ? e.data.step : prev?.job === e.job ? prev.step : '',
              ...(err ? { error: `${err.code ?? ''}: ${err.message ?? ''}` } : {}),
            });
          }
          break;
        case 'job.device.step':
          if (serial && e.job) {
            const prev = this.runs.get(serial);
            this.runs.set(serial, {
              job: e.job,
              state: prev?.job === e.job ? prev.state : 'running',
              step: String(e.data.step),
              ...(prev?.error && prev.job === e.job ? { error: prev.error } : {}),
            });
          }
          break;
        default:
          break;
      }
    }
    this.#changed(resort);
    if (this.#refetch.size) void this.#drain();
  }

  /** Re-reads devices whose stored fields changed (a large batch: the whole list). */
  async #drain(): Promise<void> {
    if (this.#fetching) return;
    this.#fetching = true;
    try {
      while (this.#refetch.size) {
        const batch = [...this.#refetch];
        this.#refetch.clear();
        if (batch.length > 50) {
          const all = await this.api.devices();
          this.devices = new Map(all.map((d) => [d.serial, d]));
          this.#changed(true);
          continue;
        }
        const got = await Promise.all(batch.map((s) => this.api.device(s).catch(() => undefined)));
        let resort = false;
        for (const d of got) {
          if (!d) continue;
          if (!this.devices.has(d.serial)) resort = true;
          this.devices.set(d.serial, d);
        }
        this.#changed(resort);
      }
    } finally {
      this.#fetching = false;
    }
  }
}
