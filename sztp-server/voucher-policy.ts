/**
 * Which ownership voucher (RFC 8366) a device gets: the one stored for it, or
 * one the lab MASA mints — with the device's nonce when it sent one (RFC 8572
 * §7.1), else a longer-lived one that is cached per device.
 */
import type { Device } from '../db/index.js';
import { signVoucher } from '../pki/index.js';
import { SztpError } from './errors.js';
import { Lru } from './lru.js';
import type { SigningMaterial } from './signing-material.js';

const DAY = 86_400_000;

/** Options of {@link VoucherPolicy}. */
export interface VoucherPolicyOptions {
  now: () => Date;
  /** Lifetime of a minted voucher without a nonce (default 30 days) and with one (default 1 day). */
  lifetimeMs?: { plain: number; nonce: number } | undefined;
  /** Minted vouchers kept (default 10 000). */
  cacheSize?: number | undefined;
}

/** Picks or mints a device's ownership voucher. */
export class VoucherPolicy {
  readonly #o: VoucherPolicyOptions;
  readonly #vouchers: Lru<string, { der: Uint8Array; until: number }>;
  /** Vouchers minted (signatures made). */
  minted = 0;

  constructor(options: VoucherPolicyOptions) {
    this.#o = options;
    this.#vouchers = new Lru(options.cacheSize ?? 10_000);
  }

  /** Forgets minted vouchers (the owner certificate they pin changed). */
  clear(): void {
    this.#vouchers.clear();
  }

  /**
   * The voucher for `device`; a minted one is signed by `material`'s MASA and pins its
   * domain certificate (one snapshot per request: never an old pin with a new owner).
   */
  async voucher(
    device: Device,
    nonce: Uint8Array | undefined,
    material: SigningMaterial,
  ): Promise<Uint8Array> {
    const { masa, pinned } = material;
    if (nonce) {
      if (masa && pinned) return this.#mint(device.serial, pinned, nonce, masa);
      if (device.ownership_voucher) {
        throw new SztpError(
          'SZTP_ERR_NONCE_UNSATISFIABLE',
          'the device sent a nonce, but only a stored voucher without it exists and no MASA is configured; retry without a nonce',
        );
      }
      throw new SztpError(
        'SZTP_ERR_NO_VOUCHER',
        `no ownership voucher for ${device.serial} and no MASA configured`,
      );
    }
    if (device.ownership_voucher) return device.ownership_voucher;
    if (masa && pinned) {
      const key = `${material.id}|${device.serial}`;
      const hit = this.#vouchers.get(key);
      if (hit && hit.until > this.#o.now().getTime() + DAY) return hit.der;
      const der = await this.#mint(device.serial, pinned, undefined, masa);
      this.#vouchers.set(key, {
        der,
        until: this.#o.now().getTime() + (this.#o.lifetimeMs?.plain ?? 30 * DAY),
      });
      return der;
    }
    throw new SztpError(
      'SZTP_ERR_NO_VOUCHER',
      `no ownership voucher for ${device.serial}: upload one or configure a lab MASA`,
    );
  }

  /**
   * Mints a voucher as the lab MASA. `idevid-issuer` is left out (optional in RFC 8366 §5.3):
   * a verifier that is not told its IDevID issuer must reject a voucher that pins one.
   */
  async #mint(
    serial: string,
    pinned: Uint8Array,
    nonce: Uint8Array | undefined,
    masa: NonNullable<SigningMaterial['masa']>,
  ): Promise<Uint8Array> {
    const now = this.#o.now();
    const life = nonce ? (this.#o.lifetimeMs?.nonce ?? DAY) : (this.#o.lifetimeMs?.plain ?? 30 * DAY);
    this.minted++;
    return signVoucher(
      {
        createdOn: new Date(now.getTime() - 60_000),
        expiresOn: new Date(now.getTime() + life),
        assertion: 'verified',
        serialNumber: serial,
        pinnedDomainCert: pinned,
        ...(nonce ? { nonce } : {}),
      },
      masa,
      { signingTime: now },
    );
  }
}
