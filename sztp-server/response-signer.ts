/**
 * Conveyed information as the device receives it: unsigned, or CMS-signed by
 * the owner certificate (RFC 8572 §3), cached by what it depends on (profile,
 * its version, the image and the URLs the device reached us by — never the
 * device) so that one signature serves every device of a profile.
 */
import {
  type ConveyedInformation,
  createOwnerCertificateArtifact,
  createUnsignedConveyedInformation,
  type Signer,
  signConveyedInformation,
} from '../pki/index.js';
import { Lru } from './lru.js';
import type { Encoding } from './restconf-codec.js';

/** Options of {@link ResponseSigner}. */
export interface ResponseSignerOptions {
  owner: Signer | undefined;
  now: () => Date;
  /** Encoded responses kept (default 10 000). */
  cacheSize?: number | undefined;
}

/** Encodes and signs conveyed information, once per cache key. */
export class ResponseSigner {
  readonly #now: () => Date;
  readonly #cache: Lru<string, Uint8Array>;
  #owner: Signer | undefined;
  #ownerArtifact: Uint8Array | undefined;
  /** Signatures made. */
  signatures = 0;

  constructor(options: ResponseSignerOptions) {
    this.#now = options.now;
    this.#cache = new Lru(options.cacheSize ?? 10_000);
    this.#setOwner(options.owner);
  }

  #setOwner(owner: Signer | undefined): void {
    this.#owner = owner;
    this.#ownerArtifact = owner ? createOwnerCertificateArtifact([...owner.certificates]) : undefined;
  }

  /** Swaps in a new owner signer; responses signed by the old one are dropped. */
  replaceOwner(owner: Signer): void {
    this.#setOwner(owner);
    this.#cache.clear();
  }

  /** The owner certificate as the degenerate SignedData RFC 8572 sends beside signed data; undefined without an owner. */
  get ownerArtifact(): Uint8Array | undefined {
    return this.#owner ? this.#ownerArtifact : undefined;
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

  /** Conveyed information signed by the owner (the caller checked {@link ownerArtifact} first). */
  async signed(key: string, info: () => ConveyedInformation, format: Encoding): Promise<Uint8Array> {
    const k = `s|${key}`;
    let ci = this.#cache.get(k);
    if (!ci) {
      this.signatures++;
      ci = await signConveyedInformation({
        information: info(),
        format,
        signer: this.#owner as Signer,
        signingTime: this.#now(),
      });
      this.#cache.set(k, ci);
    }
    return ci;
  }
}
