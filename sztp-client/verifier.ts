/**
 * The verifier port over `pki/` (RFC 8572 §5.4). It imports pki's device-side entry
 * `pki/verify.ts` rather than `pki/index.ts`, so the agent bundle never pulls
 * in the certificate-issuing side (and its ASN.1 object library).
 */
import { isPkiError, verifyBootstrappingData, type XmlLimits } from '../pki/verify.js';
import { AgentError } from './errors.js';
import type { BootstrappingData, VerifiedData, Verifier } from './ports.js';

/** Settings of {@link PkiVerifier}. */
export interface PkiVerifierOptions {
  /** Manufacturer trust anchors (DER) for ownership vouchers (RFC 8572 §5.1). */
  manufacturerTrustAnchors: readonly Uint8Array[];
  /** This device's serial number (voucher serial-number, §5.4 step 4). */
  serialNumber: string;
  /** The device clock; `undefined` skips nothing — pki always checks dates against it. */
  now: () => Date;
  /** `--voucher-signer-eku`: an extKeyUsage OID the voucher signer must carry. */
  voucherSignerPurpose?: string;
  /** Caps for XML conveyed information (default {@link AGENT_XML_LIMITS}). */
  xmlLimits?: Partial<XmlLimits>;
}

/**
 * Caps for XML conveyed information. Unsigned data from an untrusted server is parsed before
 * anything decides whether to trust it (RFC 8572 §5.3: it may be an unsigned redirect), so the
 * parser's work is bounded here: real conveyed information is a few dozen elements, with
 * scripts and configuration as base64 text, never thousands of elements or namespaces.
 */
export const AGENT_XML_LIMITS: Readonly<Partial<XmlLimits>> = Object.freeze({
  maxLength: 16 * 1024 * 1024,
  maxElements: 10_000,
  maxAttributes: 10_000,
  maxNamespaceDeclarations: 256,
});

/** RFC 8572 §5.4 with the device's anchors, serial and clock. */
export class PkiVerifier implements Verifier {
  readonly #o: PkiVerifierOptions;
  constructor(options: PkiVerifierOptions) {
    this.#o = options;
  }

  /**
   * Verifies signed data fully; unsigned data is only decoded (whether it may be
   * acted on depends on the trust state, which the procedure decides).
   *
   * @throws AgentError `SZTP_CLIENT_ERR_VERIFICATION` with the PKI code in the message
   */
  verify(data: BootstrappingData, context: { nonce?: Uint8Array }): VerifiedData {
    try {
      const r = verifyBootstrappingData({
        conveyedInformation: data.conveyedInformation,
        ...(data.ownerCertificate ? { ownerCertificate: data.ownerCertificate } : {}),
        ...(data.ownershipVoucher ? { ownershipVoucher: data.ownershipVoucher } : {}),
        manufacturerTrustAnchors: this.#o.manufacturerTrustAnchors,
        serialNumber: this.#o.serialNumber,
        // RFC 8572 App. B / RFC 8366: a voucher minted for our nonce must carry it.
        ...(context.nonce && data.ownershipVoucher ? { nonce: context.nonce } : {}),
        now: this.#o.now(),
        allowUnsigned: true,
        xmlLimits: this.#o.xmlLimits ?? AGENT_XML_LIMITS,
        ...(this.#o.voucherSignerPurpose ? { voucherSignerPurpose: this.#o.voucherSignerPurpose } : {}),
      });
      const summary = r.signed
        ? `signed by ${r.ownerCertificate?.subject ?? 'owner'}; voucher for ${r.voucher?.serialNumber ?? '?'} (${r.voucher?.assertion ?? '?'}) by ${r.voucherSigner?.subject ?? 'MASA'}`
        : 'unsigned';
      return { conveyedInformation: r.conveyedInformation, signed: r.signed, summary };
    } catch (err) {
      if (isPkiError(err))
        throw new AgentError('SZTP_CLIENT_ERR_VERIFICATION', `${err.code}: ${err.message}`, { cause: err });
      throw err;
    }
  }
}
