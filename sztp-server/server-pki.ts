/**
 * The keys and certificates the bootstrap server works with, as bytes (the
 * CLI reads them from `--pki-dir`; see DESIGN.md, Trust model).
 */
import type { Signer } from '../pki/index.js';

/** Everything the device side signs with or trusts. */
export interface ServerPki {
  /** TLS server certificate chain and key (PEM). */
  tls: { cert: Buffer | string; key: Buffer | string };
  /** Manufacturer CA certificates (DER) that device IDevIDs must chain to. */
  manufacturerAnchors: Uint8Array[];
  /** Signs conveyed information: the owner certificate's key; `certificates[0]` is the owner certificate. */
  owner?: Signer | undefined;
  /** The certificate vouchers pin (owner CA), DER. */
  pinnedDomainCert?: Uint8Array | undefined;
  /** A lab MASA that mints vouchers on request (nonce-bound ones too); absent in production. */
  masa?: Signer | undefined;
}
