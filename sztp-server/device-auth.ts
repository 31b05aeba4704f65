/**
 * Device authentication (RFC 8572 §5.3): the IDevID client certificate chain
 * and/or HTTP Basic; when both are given they must name the same device.
 * Validated chains and checked passwords are remembered (bounded), so a retry
 * storm costs neither a path validation nor an scrypt per request.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Database, unstorableReason } from '../db/index.js';
import {
  type CertificateInfo,
  hashPassword,
  isPkiError,
  parseCertificate,
  validateCertificatePath,
  verifyPassword,
} from '../pki/index.js';
import { AuthThrottle, type AuthThrottleOptions } from './auth-throttle.js';
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

/**
 * The revoked IDevIDs, asked on every request with a client certificate: a plain set, or a
 * live one that follows the database (`RevokedIdevids` in bootstrap/, wired by `serve`).
 */
export interface RevokedFingerprints {
  /** Whether the certificate with this SHA-256 fingerprint (colon hex, lowercase) is revoked. */
  has(fingerprint: string): boolean;
}

/** Options of {@link DeviceAuthenticator}. */
export interface DeviceAuthOptions {
  db: Kysely<Database>;
  /** Manufacturer trust anchors (DER) that IDevIDs chain to. */
  manufacturerAnchors: Uint8Array[];
  /** SHA-256 fingerprints (colon hex, lowercase) of revoked IDevIDs; asked on every request. */
  revokedFingerprints?: RevokedFingerprints | undefined;
  now: () => Date;
  /** Entries kept in each cache (default 10 000). */
  cacheSize?: number | undefined;
  /** Limits on failed HTTP Basic attempts (defaults in {@link AUTH_THROTTLE_DEFAULTS}). */
  basicThrottle?: AuthThrottleOptions | undefined;
}

let dummy: Promise<string> | undefined;
/** A hash of a random password, made once: what a serial without a password is verified against. */
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('base64'));
  return dummy;
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
  readonly #throttle: AuthThrottle;

  constructor(options: DeviceAuthOptions) {
    this.#o = options;
    this.#throttle = new AuthThrottle(options.basicThrottle, options.now);
    void dummyHash(); // made now, so the first unknown serial costs what a known one does
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

  /** The SHA-256 fingerprint of the leaf (colon hex), as `parseCertificate` gives it; undefined with no revocation list. */
  #leafFingerprint(chain: Uint8Array[]): string | undefined {
    if (!this.#o.revokedFingerprints) return undefined;
    const known = this.#chainsBySocket.get(chain);
    if (known) return known.certificate.fingerprintSha256;
    return createHash('sha256')
      .update(chain[0] as Uint8Array)
      .digest('hex')
      .replace(/(..)(?!$)/g, '$1:');
  }

  /** Authenticates a request (RFC 8572 §5.3): IDevID chain and/or HTTP Basic; both must name the same device. */
  async authenticate(cred: RequestCredentials): Promise<DeviceIdentity> {
    let certSerial: string | undefined;
    let certificate: CertificateInfo | undefined;
    if (cred.peerChain.length > 0) {
      // Checked first and on every request (a keep-alive connection included), so a device
      // revoked on any replica is refused on its next request, before a path validation.
      const fingerprint = this.#leafFingerprint(cred.peerChain);
      if (fingerprint !== undefined && this.#o.revokedFingerprints?.has(fingerprint)) {
        throw new SztpError('SZTP_ERR_REVOKED_IDEVID', `client certificate ${fingerprint} is revoked`);
      }
      certificate = this.#validatedChain(cred.peerChain);
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
      const bad = unstorableReason(user);
      if (bad) throw new SztpError('SZTP_ERR_INVALID_TEXT', `HTTP Basic user name ${bad}`);
      // RFC 8572 §5.3: both identities must name the same device; checked before any password work.
      if (certSerial && user !== certSerial) {
        throw new SztpError(
          'SZTP_ERR_IDENTITY_MISMATCH',
          `client certificate names ${certSerial} but HTTP Basic names ${user}`,
        );
      }
      const wait = this.#throttle.retryAfter(user, cred.remoteAddress);
      if (wait > 0) {
        const e = new SztpError(
          'SZTP_ERR_TOO_MANY_ATTEMPTS',
          `too many failed HTTP Basic attempts for this serial or address; retry in ${wait} s`,
        );
        e.retryAfterSeconds = wait;
        throw e;
      }
      const row = await this.#o.db
        .selectFrom('devices')
        .select(['password_hash'])
        .where('serial', '=', user)
        .executeTakeFirst();
      const hash = row?.password_hash ?? undefined;
      if (certSerial && hash === undefined) {
        // A device with a valid IDevID but no password registered: the OPI sztp-agent always
        // sends Basic credentials (`my-secret` by default); the IDevID alone authenticates it.
        basicSerial = undefined;
      } else {
        const memo = `${user}\0${createHash('sha256').update(password).digest('base64')}`;
        const known = hash !== undefined && this.#passwords.get(memo) === hash;
        // Without a stored hash, verify against a fixed one anyway: the answer then costs one
        // scrypt whether or not the serial exists or has a password, so timing tells nothing.
        const ok =
          known || ((await verifyPassword(password, hash ?? (await dummyHash()))) && hash !== undefined);
        if (!ok) {
          this.#throttle.failed(user, cred.remoteAddress);
          throw new SztpError('SZTP_ERR_BAD_PASSWORD', 'HTTP Basic authentication failed');
        }
        this.#passwords.set(memo, hash as string);
        basicSerial = user;
      }
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
