/**
 * `sztp-client verify`: runs RFC 8572 §5.4 on artifacts from files (DER, PEM
 * or base64 as in RESTCONF JSON) and prints the conveyed information as JSON.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
// The verifying pki modules only (not pki/index.ts): this command ships in the agent bundle.
import {
  verifyBootstrappingData,
  decodeCertificates,
  decodeArtifact,
  decodeBase64,
} from '../../pki/verify.js';
import { CliError, action } from '../exit.js';

interface VerifyOptions {
  conveyedInformation: string;
  ownerCertificate?: string;
  ownershipVoucher?: string;
  manufacturerTrustAnchor?: string;
  serialNumber?: string;
  nonce?: string;
  allowUnsigned?: boolean;
  now?: string;
}

async function read(path: string, flag: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new CliError('CLI_ERR_FILE', `${flag} ${path}: ${(err as Error).message}`);
  }
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Registers `sztp-client verify`. */
export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('verify bootstrapping data (RFC 8572 §5.4) and print the conveyed information as JSON')
    .requiredOption('--conveyed-information <file>', 'conveyed-information artifact (DER, PEM or base64)')
    .option('--owner-certificate <file>', 'owner-certificate artifact (degenerate CMS SignedData)')
    .option('--ownership-voucher <file>', 'ownership-voucher artifact (CMS SignedData)')
    .option('--manufacturer-trust-anchor <file>', 'manufacturer trust anchor certificate(s)')
    .option('--serial-number <sn>', "this device's serial number")
    .option('--nonce <base64>', 'the nonce sent in get-bootstrapping-data')
    .option('--allow-unsigned', 'accept unsigned conveyed information (trusted bootstrap server only)')
    .option('--now <iso8601>', 'validation time (default: the system clock)')
    .action(
      action(async (o: VerifyOptions) => {
        let now = new Date();
        if (o.now !== undefined) {
          now = new Date(o.now);
          if (!ISO_8601.test(o.now) || Number.isNaN(now.getTime()))
            throw new CliError('CLI_ERR_USAGE', `--now '${o.now}' is not an ISO 8601 date-time`);
        }
        let nonce: Uint8Array | undefined;
        if (o.nonce !== undefined) {
          try {
            nonce = decodeBase64(o.nonce, '--nonce');
          } catch {
            throw new CliError('CLI_ERR_USAGE', '--nonce must be base64');
          }
        }
        const conveyedInformation = decodeArtifact(
          await read(o.conveyedInformation, '--conveyed-information'),
        );
        const result = verifyBootstrappingData({
          conveyedInformation,
          now,
          allowUnsigned: o.allowUnsigned === true,
          ...(o.ownerCertificate
            ? { ownerCertificate: decodeArtifact(await read(o.ownerCertificate, '--owner-certificate')) }
            : {}),
          ...(o.ownershipVoucher
            ? { ownershipVoucher: decodeArtifact(await read(o.ownershipVoucher, '--ownership-voucher')) }
            : {}),
          ...(o.manufacturerTrustAnchor
            ? {
                manufacturerTrustAnchors: decodeCertificates(
                  await read(o.manufacturerTrustAnchor, '--manufacturer-trust-anchor'),
                ),
              }
            : {}),
          ...(o.serialNumber ? { serialNumber: o.serialNumber } : {}),
          ...(nonce ? { nonce } : {}),
        });
        process.stdout.write(`${JSON.stringify(result.conveyedInformation, null, 2)}\n`);
      }),
    );
}
