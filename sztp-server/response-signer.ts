/**
 * Conveyed information as the device receives it: unsigned, or CMS-signed by
 * the owner certificate (RFC 8572 §3), cached by what it depends on (profile,
 * its version, the image and the URLs the device reached us by — never the
 * device) so that one signature serves every device of a profile.
 */
import {
  type ConveyedInformation,
  createUnsignedConveyedInformation,
  signConveyedInformation,
} from '../pki/index.js';
import { Lru } from './lru.js';
import type { Encoding } from './restconf-codec.js';
import type { SigningMaterial } from './signing-material.js';

/** Options of {@link ResponseSigner}. */
export interface ResponseSignerOptions {
  now: () => Date;
  /** Encoded responses kept (default 10 000). */
  cacheSize?: number | undefined;
}

/**
 * Encodes and signs conveyed information, once per cache key and signing snapshot.
 * The snapshot is the caller's (one per request), so a rotation between two awaits of
 * one request cannot pair a new signature with an old owner certificate.
 */
export class ResponseSigner {
  readonly #now: () => Date;
  readonly #cache: Lru<string, Uint8Array>;
  /** Signatures made. */
  signatures = 0;

  constructor(options: ResponseSignerOptions) {
    this.#now = options.now;
    this.#cache = new Lru(options.cacheSize ?? 10_000);
  }

  /** Drops every cached response (after a rotation: old signatures are never needed again). */
  clear(): void {
    this.#cache.clear();
  }

  /** Unsigned conveyed information, built by `info` on a cache miss. */
  unsigned(key: string, info: () => ConveyedInformation, format: Encoding): Uint8Array {
    const k = `u|${key}`;
    let ci = this.#cache.get(k);
    if (!ci) {
      ci = createUnsignedConveyedInformation(info(), format);
      this.#cache.set(k, ci);
    }
    return ci;
  }

  /** Conveyed information signed by `material`'s owner (the caller checked it has one). */
  async signed(
    key: string,
    info: () => ConveyedInformation,
    format: Encoding,
    material: SigningMaterial,
  ): Promise<Uint8Array> {
    const owner = material.owner;
    if (!owner) throw new Error('signed conveyed information needs an owner signer');
    const k = `s|${material.id}|${key}`;
    let ci = this.#cache.get(k);
    if (!ci) {
      this.signatures++;
      ci = await signConveyedInformation({
        information: info(),
        format,
        signer: owner,
        signingTime: this.#now(),
      });
      this.#cache.set(k, ci);
    }
    return ci;
  }
}
