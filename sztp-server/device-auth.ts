/**
 * Device authentication (RFC 8572 §5.3): the IDevID client certificate chain
 * and/or HTTP Basic; when both are given they must name the same device.
 * Validated chains and checked passwords are remembered (bounded), so a retry
 * storm costs neither a path validation nor an scrypt per request.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/index.js';
import {
  type CertificateInfo,
  isPkiError,
  parseCertificate,
  validateCertificatePath,
  verifyPassword,
} from '../pki/index.js';
import { SztpError } from './errors.js';
import { Lru } from './lru.js';

/** An authenticated device. */
export interface DeviceIdentity {
  serial: string;
  via: 'certificate' | 'basic' | 'both';
  certificate?: CertificateInfo;
}

/** What the transport knows about a request. */
export interface RequestCredentials {
  /** The client certificate chain as sent (leaf first), DER; empty when none. */
  peerChain: Uint8Array[];
  /** The Authorization header, if any. */
  authorization?: string | undefined;
  remoteAddress?: string | undefined;
}

/** Options of {@link DeviceAuthenticator}. */
export interface DeviceAuthOptions {
  db: Kysely<Database>;
  /** Manufacturer trust anchors (DER) that IDevIDs chain to. */
  manufacturerAnchors: Uint8Array[];
  /** SHA-256 fingerprints (colon hex, lowercase) of revoked IDevIDs. */
  revokedFingerprints?: ReadonlySet<string> | undefined;
  now: () => Date;
  /** Entries kept in each cache (default 10 000). */
  cacheSize?: number | undefined;
}

/** A client chain that validated, and the span of time its path is valid. */
interface ValidatedChain {
  certificate: CertificateInfo;
  notBefore: number;
  notAfter: number;
}

/** Authenticates device requests. */
export class DeviceAuthenticator {
  readonly #o: DeviceAuthOptions;
  /** Validated client certificate chains by SHA-256 of their DER, with the window they are valid in. */
  readonly #chains: Lru<string, ValidatedChain>;
  /** The same, by the identity of the chain array the routes keep per TLS connection. */
  readonly #chainsBySocket = new WeakMap<Uint8Array[], ValidatedChain>();
  /** HTTP Basic passwords already checked against a stored hash: scrypt is too slow to repeat per request. */
  readonly #passwords: Lru<string, string>;

  constructor(options: DeviceAuthOptions) {
    this.#o = options;
    this.#chains = new Lru(options.cacheSize ?? 10_000);
    this.#passwords = new Lru(options.cacheSize ?? 10_000);
  }

  /** Validates a client chain to the manufacturer anchors, remembering the result until the path's validity ends. */
  #validatedChain(chain: Uint8Array[]): CertificateInfo {
    const now = this.#o.now();
    // The routes hand the same chain array for every request of a TLS connection: a
    // keep-alive connection then skips even the hash below.
    const same = this.#chainsBySocket.get(chain);
    if (same && now.getTime() >= same.notBefore && now.getTime() <= same.notAfter) return same.certificate;
    const h = createHash('sha256');
    for (const c of chain) h.update(c);
    const key = h.digest('base64');
    const hit = this.#chains.get(key);
    if (hit && now.getTime() >= hit.notBefore && now.getTime() <= hit.notAfter) {
      this.#chainsBySocket.set(chain, hit);
      return hit.certificate;
    }
    try {
      const certificate = parseCertificate(chain[0] as Uint8Array);
      const { path } = validateCertificatePath({
        certificate,
        intermediates: chain.slice(1),
        trustAnchors: this.#o.manufacturerAnchors,
        now,
        untrustedCode: 'PKI_ERR_UNTRUSTED_SIGNER',
      });
      const entry = {
        certificate,
        notBefore: Math.max(...path.map((c) => c.notBefore.getTime())),
        notAfter: Math.min(...path.map((c) => c.notAfter.getTime())),
      };
      this.#chains.set(key, entry);
      this.#chainsBySocket.set(chain, entry);
      return certificate;
    } catch (err) {
      const why = isPkiError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
      throw new SztpError('SZTP_ERR_UNTRUSTED_IDEVID', `client certificate rejected (${why})`);
    }
  }

  /** Authenticates a request (RFC 8572 §5.3): IDevID chain and/or HTTP Basic; both must name the same device. */
  async authenticate(cred: RequestCredentials): Promise<DeviceIdentity> {
    let certSerial: string | undefined;
    let certificate: CertificateInfo | undefined;
    if (cred.peerChain.length > 0) {
      certificate = this.#validatedChain(cred.peerChain);
      if (this.#o.revokedFingerprints?.has(certificate.fingerprintSha256)) {
        throw new SztpError(
          'SZTP_ERR_REVOKED_IDEVID',
          `client certificate ${certificate.fingerprintSha256} is revoked`,
        );
      }
      // RFC 8572 §5.3 / IEEE 802.1AR: the serial number is in the subject serialNumber attribute.
      certSerial = certificate.subjectSerialNumber ?? certificate.commonName;
      if (!certSerial)
        throw new SztpError('SZTP_ERR_UNTRUSTED_IDEVID', 'client certificate names no serial number');
    }
    let basicSerial: string | undefined;
    const m = cred.authorization ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(cred.authorization) : null;
    if (cred.authorization && !m)
      throw new SztpError('SZTP_ERR_UNAUTHENTICATED', 'only HTTP Basic authorization is accepted');
    if (m?.[1]) {
      const decoded = Buffer.from(m[1], 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i <= 0) throw new SztpError('SZTP_ERR_BAD_PASSWORD', 'malformed HTTP Basic credentials');
      const user = decoded.slice(0, i);
      const password = decoded.slice(i + 1);
      const row = await this.#o.db
        .selectFrom('devices')
        .select(['password_hash'])
        .where('serial', '=', user)
        .executeTakeFirst();
      const memo = `${user}\0${createHash('sha256').update(password).digest('base64')}`;
      const known =
        row?.password_hash !== undefined &&
        row.password_hash !== null &&
        this.#passwords.get(memo) === row.password_hash;
      if (!known && (!row?.password_hash || !(await verifyPassword(password, row.password_hash)))) {
        throw new SztpError('SZTP_ERR_BAD_PASSWORD', 'HTTP Basic authentication failed');
      }
      this.#passwords.set(memo, row?.password_hash as string);
      basicSerial = user;
    }
    if (certSerial && basicSerial && certSerial !== basicSerial) {
      throw new SztpError(
        'SZTP_ERR_IDENTITY_MISMATCH',
        `client certificate names ${certSerial} but HTTP Basic names ${basicSerial}`,
      );
    }
    const serial = certSerial ?? basicSerial;
    if (!serial)
      throw new SztpError(
        'SZTP_ERR_UNAUTHENTICATED',
        'present an IDevID client certificate or HTTP Basic credentials',
      );
    return {
      serial,
      via: certSerial && basicSerial ? 'both' : certSerial ? 'certificate' : 'basic',
      ...(certificate ? { certificate } : {}),
    };
  }
}
