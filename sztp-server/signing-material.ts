/**
 * The owner and MASA credentials one response is built from, as one immutable
 * object. A rotation (PUT /api/v1/owner on any replica, `pki import --replace`)
 * builds a new object and swaps the reference; a request takes the reference
 * once at its start, so its conveyed-information signature, owner certificate
 * and ownership voucher always come from the same credentials, old or new,
 * never a mix.
 */
import { createOwnerCertificateArtifact, type Signer } from '../pki/index.js';

/** Owner signer, its certificate artifact, the pinned domain certificate and the lab MASA, frozen together. */
export interface SigningMaterial {
  /** Distinguishes snapshots: caches key on it, so a signature made with old credentials is never served with new ones. */
  readonly id: number;
  /** Signs conveyed information; `certificates[0]` is the owner certificate. */
  readonly owner: Signer | undefined;
  /** The owner certificate as the degenerate SignedData RFC 8572 sends beside signed data. */
  readonly ownerArtifact: Uint8Array | undefined;
  /** The certificate minted vouchers pin (owner CA), DER. */
  readonly pinned: Uint8Array | undefined;
  /** A lab MASA that mints vouchers; absent in production. */
  readonly masa: Signer | undefined;
}

let nextId = 1;

/** Builds a frozen snapshot (the owner artifact is made once here, not per request). */
export function signingMaterial(parts: {
  owner?: Signer | undefined;
  pinned?: Uint8Array | undefined;
  masa?: Signer | undefined;
}): SigningMaterial {
  return Object.freeze({
    id: nextId++,
    owner: parts.owner,
    ownerArtifact: parts.owner ? createOwnerCertificateArtifact([...parts.owner.certificates]) : undefined,
    pinned: parts.pinned,
    masa: parts.masa,
  });
}
