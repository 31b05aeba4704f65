/**
 * A bounded cache with approximate LRU eviction in two generations, shared by
 * the bootstrap service's caches (signed responses, vouchers, validated chains,
 * checked passwords, device rows).
 */

/**
 * Hits in the young map cost one lookup (no delete + re-insert per hit, which showed
 * in the profile of a retry storm); hits in the old one are promoted; when the young
 * map is full it becomes the old one and the previous old one is dropped. Holds
 * between `max` and `2 × max` entries.
 */
export class Lru<K, V> {
  readonly #max: number;
  #young = new Map<K, V>();
  #old = new Map<K, V>();
  constructor(max: number) {
    this.#max = Math.max(1, max);
  }
  get(k: K): V | undefined {
    const v = this.#young.get(k);
    if (v !== undefined) return v;
    const o = this.#old.get(k);
    if (o !== undefined) {
      this.#old.delete(k);
      this.#put(k, o);
    }
    return o;
  }
  set(k: K, v: V): void {
    this.#old.delete(k);
    this.#put(k, v);
  }
  #put(k: K, v: V): void {
    if (!this.#young.has(k) && this.#young.size >= this.#max) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(k, v);
  }
  /** The value without touching recency. */
  peek(k: K): V | undefined {
    return this.#young.get(k) ?? this.#old.get(k);
  }
  get size(): number {
    return this.#young.size + this.#old.size;
  }
  keys(): K[] {
    return [...this.#young.keys(), ...this.#old.keys()];
  }
  clear(): void {
    this.#young.clear();
    this.#old.clear();
  }
  delete(k: K): void {
    this.#young.delete(k);
    this.#old.delete(k);
  }
}
