/**
 * Sources that are files or records, not servers: a directory of artifacts
 * (removable storage, RFC 8572 §4.1; also the offline test path) and DNS TXT
 * bootstrapping data (§4.2). Both are untrusted: only signed data or unsigned
 * redirect information is acted on, and no progress is reported.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeArtifact, isPkiError } from '../pki/verify.js';
import { AgentError } from './errors.js';
import type { BootstrappingData, Source, SourceReply } from './ports.js';

/**
 * File names looked for in a bootstrap directory. The RFC does not name them
 * (§4.1); these follow the artifact names, with the Cisco IOS XR USB loader's
 * `.vcj` voucher extension accepted too. Each may be DER, PEM or base64.
 */
export const BOOTSTRAP_DIR_FILES = {
  conveyedInformation: ['conveyed-information.cms', 'conveyed-information.der', 'conveyed-information'],
  ownerCertificate: ['owner-certificate.cms', 'owner-certificate.der', 'owner-certificate'],
  ownershipVoucher: ['ownership-voucher.cms', 'ownership-voucher.vcj', 'ownership-voucher'],
} as const;

async function pick(
  dir: string,
  names: readonly string[],
  present: Set<string>,
): Promise<Uint8Array | undefined> {
  for (const n of names) {
    if (!present.has(n)) continue;
    const bytes = new Uint8Array(await readFile(join(dir, n)));
    try {
      return decodeArtifact(bytes);
    } catch (err) {
      if (isPkiError(err))
        throw new AgentError('SZTP_CLIENT_ERR_BAD_RESPONSE', `${join(dir, n)}: ${err.code}: ${err.message}`);
      throw err;
    }
  }
  return undefined;
}

/** Bootstrapping data from a directory (an untrusted source). */
export class DirectorySource implements Source {
  readonly name: string;
  readonly #dir: string;
  constructor(dir: string) {
    this.#dir = dir;
    this.name = `file:${dir}`;
  }

  async fetch(): Promise<SourceReply> {
    let present: Set<string>;
    try {
      present = new Set(await readdir(this.#dir));
    } catch (err) {
      throw new AgentError('SZTP_CLIENT_ERR_CONNECT', `${this.name}: ${(err as Error).message}`);
    }
    const ci = await pick(this.#dir, BOOTSTRAP_DIR_FILES.conveyedInformation, present);
    if (!ci)
      throw new AgentError('SZTP_CLIENT_ERR_BAD_RESPONSE', `${this.name}: no conveyed-information file`);
    const oc = await pick(this.#dir, BOOTSTRAP_DIR_FILES.ownerCertificate, present);
    const ov = await pick(this.#dir, BOOTSTRAP_DIR_FILES.ownershipVoucher, present);
    return {
      data: {
        conveyedInformation: ci,
        ...(oc ? { ownerCertificate: oc } : {}),
        ...(ov ? { ownershipVoucher: ov } : {}),
      },
      serverTrusted: false,
    };
  }
}

/** Bootstrapping data already in hand (a `<serial>._sztp` TXT record); untrusted. */
export class StaticDataSource implements Source {
  readonly name: string;
  readonly #data: BootstrappingData | undefined;
  constructor(name: string, data: Partial<BootstrappingData>) {
    this.name = name;
    this.#data = data.conveyedInformation ? (data as BootstrappingData) : undefined;
  }

  async fetch(): Promise<SourceReply> {
    if (!this.#data)
      throw new AgentError('SZTP_CLIENT_ERR_BAD_RESPONSE', `${this.name}: no conveyed information (ci)`);
    return { data: this.#data, serverTrusted: false };
  }
}
