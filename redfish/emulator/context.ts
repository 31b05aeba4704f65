/**
 * The state every part of the emulator shares: the resource tree, ETags,
 * timers that stop with the emulator, background work to settle on close, and
 * the boots it reports. The handler modules (sessions, power and boot, virtual
 * media, update and tasks, PATCH) each take this context.
 */
import type { FaultSet } from './faults.js';
import type { ImageFetchOptions, ImageFetchResult } from './image-fetch.js';
import type { EmulatorPersona } from './personas.js';
import { fail, REG } from './messages.js';
import type { Json } from './resources.js';

/** How the emulated system came to boot an image. */
export type BootVia = 'virtual-media' | 'http-boot' | 'image-push';

/** A boot of an emulated system into an image (the stand-in for the installer starting). */
export interface BootEvent {
  readonly systemId: string;
  readonly serial: string;
  readonly imageUrl: string;
  readonly via: BootVia;
  /** What the image fetch saw, or the error when the BMC could not fetch it. */
  readonly fetch: ImageFetchResult | { readonly error: string };
}

/** The options the handler modules read (a subset of `BmcEmulatorOptions`). */
export interface EmulatorContextOptions {
  readonly imageFetch?: ImageFetchOptions;
  readonly onBoot?: (event: BootEvent) => void | Promise<void>;
}

/** Shared emulator state; see the module comment. */
export class EmulatorContext {
  readonly boots: BootEvent[] = [];
  readonly #versions = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #pending = new Set<Promise<unknown>>();
  #stopped = false;

  constructor(
    /** Resources by normalised path. */
    readonly r: Map<string, Json>,
    /** `Allow` per path where the tree restricts methods. */
    readonly allow: Map<string, string>,
    readonly persona: EmulatorPersona | undefined,
    readonly faults: FaultSet,
    readonly opts: EmulatorContextOptions,
  ) {}

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stops all timers; background work checks {@link stopped}. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  /** The resource's strong ETag (changes with every {@link touch}). */
  etag(path: string): string {
    return `"${path.length.toString(16)}-${this.#versions.get(path) ?? 0}"`;
  }

  touch(path: string): void {
    this.#versions.set(path, (this.#versions.get(path) ?? 0) + 1);
  }

  /** A timer that is dropped when the emulator stops. */
  later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#stopped) fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  /** Cancels a timer made by {@link later}. */
  cancel(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.#timers.delete(t);
  }

  /** Background work that `close()` waits for. */
  track(p: Promise<unknown>): void {
    const q = p.catch(() => undefined).finally(() => this.#pending.delete(q));
    this.#pending.add(q);
  }

  /** The ComputerSystem resources (not their Settings objects). */
  systems(): Json[] {
    return [...this.r.values()].filter(
      (j) =>
        /#ComputerSystem\./.test(String(j['@odata.type'])) && !String(j['@odata.id']).endsWith('/Settings'),
    );
  }

  /** The action `#name` of the resource at `owner`, or a 404. */
  actionOf(owner: string, name: string): Json {
    const res = this.r.get(owner);
    const act = res?.Actions?.[`#${name}`];
    if (!res || !act)
      throw fail(
        404,
        `${REG}.ResourceNotFound`,
        `The requested resource of type Action named '${name}' was not found.`,
      );
    return act;
  }

  /** Rebuilds a collection's `Members` from the resources directly below it. */
  syncCollection(collectionPath: string): void {
    const c = this.r.get(collectionPath);
    if (!c) return;
    const prefix = `${collectionPath}/`;
    const members = [...this.r.keys()].filter(
      (k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/'),
    );
    c.Members = members.map((m) => ({ '@odata.id': m }));
    c['Members@odata.count'] = members.length;
    this.touch(collectionPath);
  }

  /** Records a boot and hands it to `onBoot` (errors there are not the emulator's). */
  report(event: BootEvent): void {
    this.boots.push(event);
    const onBoot = this.opts.onBoot;
    if (onBoot) this.track(Promise.resolve().then(() => onBoot(event)));
  }
}
