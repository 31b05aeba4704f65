/**
 * Checks an ownership voucher an operator uploads for a device, so that a
 * wrong or damaged file is refused at upload rather than discovered by the
 * device: a CMS SignedData whose signature verifies with its embedded MASA
 * certificate, holding an RFC 8366 voucher for this serial number. Whether the
 * MASA chains to the manufacturer is for the device to decide (RFC 8572 §5.4);
 * a signer that is a device identity is refused here too, as the device would.
 */
import {
  ContentTypeOid,
  decodeVoucher,
  isPkiError,
  verifySignedData,
  voucherSignerProblem,
} from '../pki/index.js';

/** Returns why the voucher is unusable for `serial`, or undefined when it is fine. */
export function voucherUploadProblem(der: Uint8Array, serial: string, now: Date): string | undefined {
  try {
    const sd = verifySignedData(der, {
      contentTypes: [ContentTypeOid.animaJsonVoucher, ContentTypeOid.data],
    });
    const notSigner = voucherSignerProblem(sd.signer);
    if (notSigner) return `PKI_ERR_NOT_A_VOUCHER_SIGNER: ${notSigner}`;
    const v = decodeVoucher(sd.content);
    if (v.serialNumber !== serial) return `it is for serial number ${v.serialNumber}, not ${serial}`;
    if (v.expiresOn && v.expiresOn.getTime() <= now.getTime())
      return `it expired on ${v.expiresOn.toISOString()}`;
    if (v.nonce) return 'it is bound to a nonce, so it fits only the one request that sent it';
    return undefined;
  } catch (err) {
    return isPkiError(err) ? `${err.code}: ${err.message}` : 'not a CMS SignedData voucher';
  }
}
