/**
 * The RFC 8572 bootstrap server's behaviour behind the two RPCs: who the
 * device is (IDevID and/or HTTP Basic, §5.3), what it gets (conveyed
 * information from its profile, signed by the owner certificate with owner
 * certificate and ownership voucher beside it, §3), and what it reported.
 * Transport-free: the Fastify routes in `device-server.ts` call it.
 */
import { createHash } from 'node:crypto';
import { type Insertable, type Kysely, sql } from 'kysely';
import type { Database, Device } from '../db/index.js';
import { Attr, withSpan } from '../otel/index.js';
import { type ActiveTraceparent, linkToJobTrace } from './job-trace.js';
import {
  type CertificateInfo,
  createOwnerCertificateArtifact,
  createUnsignedConveyedInformation,
  decodeArtifacts,
  isPkiError,
  parseCertificate,
  type Signer,
  signConveyedInformation,
  signVoucher,
  validateCertificatePath,
  verifyPassword,
} from '../pki/index.js';
import { buildConveyedInformation, type ProfileSpec, type ResolvedImage } from './conveyed-builder.js';
import type { DeviceLifecycle } from './device-lifecycle.js';
import { SztpError } from './errors.js';
import { WriteBehind } from './write-behind.js';
import type {
  Encoding,
  GetBootstrappingDataInput,
  GetBootstrappingDataOutput,
  ReportProgressInput,
} from './restconf-codec.js';
import type { ServerPki } from './server-pki.js';

/** What to do with a device that authenticates with a valid IDevID but is not registered. */
export type UnknownDevicePolicy = 'reject' | 'hold';

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

/** Base URLs of the image service as this request reached the server. */
export interface ImageBase {
  https?: string;
  http?: string;
}

/** Options of {@link BootstrapService}. */
export interface BootstrapServiceOptions {
  db: Kysely<Database>;
  /** The device's active provisioning job trace (`traceparent`), filled by the jobs code; see job-trace.ts. */
  activeTraceparent?: ActiveTraceparent;
  pki: ServerPki;
  unknownDevicePolicy?: UnknownDevicePolicy;
  /** SHA-256 fingerprints (colon hex, lowercase) of revoked IDevIDs. */
  revokedFingerprints?: ReadonlySet<string>;
  /** Looks up an image of the image service: its download URIs (HTTPS first) and SHA-256. */
  resolveImage(name: string, base: ImageBase): Promise<ResolvedImage | undefined>;
  /** Told of device contacts and progress reports; owns what they mean for the device's state (`bootstrap/`). */
  lifecycle: DeviceLifecycle;
  /** Clock (tests pass a fixed one). */
  now?: () => Date;
  /** Lifetime of a voucher the lab MASA mints without a nonce (default 30 days) and with one (default 1 day). */
  voucherLifetimeMs?: { plain: number; nonce: number };
  /** Entries kept in each cache (signed responses, vouchers, validated chains; default 10 000). */
  cacheSize?: number;
  /** Told when a batch of request records could not be stored. */
  onEventWriteError?: (err: unknown, rows: number) => void;
  /**
   * How stale a cached device row (with its profile) may get, in ms (default 1000; 0 reads
   * the database on every request). Rows are kept while one query every half of this
   * checks all cached rows against the database (`updated_at` of the device and its
   * profile's version), so a retry storm costs no per-request queries and a change made
   * by any replica reaches devices within this time. Progress reports always read the
   * database.
   */
  deviceCacheMs?: number;
  /** A cached device row no request used for this long is dropped instead of checked (default 60 000 ms). */
  deviceCacheIdleMs?: number;
}

const DAY = 86_400_000;

/**
 * A bounded cache with approximate LRU eviction in two generations: hits in the
 * young map cost one lookup (no delete + re-insert per hit, which showed in the
 * profile of a retry storm); hits in the old one are promoted; when the young map
 * is full it becomes the old one and the previous old one is dropped. Holds
 * between `max` and `2 × max` entries.
 */
class Lru<K, V> {
  readonly #max: number;
  #young = new Map<K, V>();
  #old = new Map<K, V>();
  constructor(max: number) {
    this.#max = Math.max(1, max);
  }
  get(k: K): V | undefined {
    const v = this.#young.get(k);
    if (v !== undefined) return v;
    const o = this.#old.get(k);
    if (o !== undefined) {
      this.#old.delete(k);
      this.#put(k, o);
    }
    return o;
  }
  set(k: K, v: V): void {
    this.#old.delete(k);
    this.#put(k, v);
  }
  #put(k: K, v: V): void {
    if (!this.#young.has(k) && this.#young.size >= this.#max) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(k, v);
  }
  /** The value without touching recency. */
  peek(k: K): V | undefined {
    return this.#young.get(k) ?? this.#old.get(k);
  }
  get size(): number {
    return this.#young.size + this.#old.size;
  }
  keys(): K[] {
    return [...this.#young.keys(), ...this.#old.keys()];
  }
  clear(): void {
    this.#young.clear();
    this.#old.clear();
  }
  delete(k: K): void {
    this.#young.delete(k);
    this.#old.delete(k);
  }
}

/** A client chain that validated, and the span of time its path is valid. */
interface ValidatedChain {
  certificate: CertificateInfo;
  notBefore: number;
  notAfter: number;
}

/** A device row with its profile's columns (null when it has none). */
type DeviceWithProfile = Device & {
  profile_spec: Record<string, unknown> | null;
  profile_version: number | null;
  profile_updated_at: Date | null;
};

function tlsIdentity(id: DeviceIdentity | undefined): string | null {
  if (id?.certificate) return `${id.certificate.subject} (sha256 ${id.certificate.fingerprintSha256})`;
  return id ? `basic:${id.serial}` : null;
}

/** The device-facing bootstrap logic. */
export class BootstrapService {
  readonly #o: BootstrapServiceOptions;
  readonly #now: () => Date;
  readonly #signed: Lru<string, Uint8Array>;
  readonly #vouchers: Lru<string, { der: Uint8Array; until: number }>;
  /** Validated client certificate chains by SHA-256 of their DER, with the window they are valid in. */
  readonly #chains: Lru<string, ValidatedChain>;
  /** The same, by the identity of the chain array the routes keep per TLS connection. */
  readonly #chainsBySocket = new WeakMap<Uint8Array[], ValidatedChain>();
  /** HTTP Basic passwords already checked against a stored hash: scrypt is too slow to repeat per request. */
  readonly #passwords: Lru<string, string>;
  readonly #events: WriteBehind<Insertable<Database['bootstrap_events']>>;
  readonly #deviceRows: Lru<string, { row: DeviceWithProfile; fetchedAt: number; usedAt: number }>;
  /** Start of the last revalidation of cached rows that succeeded: they were current then. */
  #rowsCheckedAt = 0;
  #revalidateTimer: NodeJS.Timeout | undefined;
  #revalidating = false;
  #ownerArtifact: Uint8Array | undefined;
  #owner: Signer | undefined;
  #pinned: Uint8Array | undefined;
  /** Signatures made (for the cache test and the benchmark). */
  signatures = 0;

  constructor(options: BootstrapServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    this.#signed = new Lru(options.cacheSize ?? 10_000);
    this.#vouchers = new Lru(options.cacheSize ?? 10_000);
    this.#chains = new Lru(options.cacheSize ?? 10_000);
    this.#passwords = new Lru(options.cacheSize ?? 10_000);
    this.#deviceRows = new Lru(options.cacheSize ?? 10_000);
    // Request records: identical ones in one batch are stored once with `repeats: n`.
    this.#events = new WriteBehind(
      async (batch) => {
        const col = <T>(f: (r: Insertable<Database['bootstrap_events']>, repeats: number) => T) =>
          batch.map(({ item, repeats }) => f(item, repeats));
        // One statement with array parameters per batch (as image fetches): binding stays
        // constant per batch rather than growing with rows × columns on embedded PGlite.
        await sql`insert into bootstrap_events (serial, kind, remote_address, tls_identity, detail)
          select * from unnest(${col((r) => r.serial)}::text[], ${col((r) => r.kind)}::text[],
            ${col((r) => r.remote_address ?? null)}::text[], ${col((r) => r.tls_identity ?? null)}::text[],
            ${col((r, repeats) => (repeats > 1 ? JSON.stringify({ ...JSON.parse(String(r.detail)), repeats }) : r.detail))}::jsonb[])`.execute(
          options.db,
        );
      },
      {
        // Identical requests within a second (a retry storm) share one row.
        flushMs: 1000,
        ...(options.onEventWriteError ? { onDrop: (n, err) => options.onEventWriteError?.(err, n) } : {}),
      },
    );
    this.#owner = options.pki.owner;
    this.#pinned = options.pki.pinnedDomainCert;
    this.#ownerArtifact = this.#owner
      ? createOwnerCertificateArtifact([...this.#owner.certificates])
      : undefined;
  }

  /**
   * Swaps in new owner credentials (PUT /api/v1/owner): later responses are signed with
   * them, and cached signatures and minted vouchers made with the old ones are dropped.
   */
  replaceOwner(owner: Signer, pinnedDomainCert: Uint8Array): void {
    this.#owner = owner;
    this.#pinned = pinnedDomainCert;
    this.#ownerArtifact = createOwnerCertificateArtifact([...owner.certificates]);
    this.#signed.clear();
    this.#vouchers.clear();
  }

  /** Validates a client chain to the manufacturer anchors, remembering the result until the path's validity ends. */
  #validatedChain(chain: Uint8Array[]): CertificateInfo {
    const now = this.#now();
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
        trustAnchors: this.#o.pki.manufacturerAnchors,
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

  /** Writes queued request records now (before closing the database, or before reading them). */
  flush(): Promise<void> {
    return this.#events.flush();
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

  /** Queues a request record (written in batches by the event writer). */
  #record(
    serial: string,
    kind: string,
    cred: RequestCredentials,
    id: DeviceIdentity | undefined,
    detail: Record<string, unknown>,
  ): void {
    const row = {
      serial,
      kind,
      remote_address: cred.remoteAddress ?? null,
      tls_identity: tlsIdentity(id),
      detail: JSON.stringify(detail),
    };
    // Identical requests (same device, address, identity and outcome) in one batch become one row.
    this.#events.add(row, `${serial}\0${kind}\0${row.remote_address}\0${row.tls_identity}\0${row.detail}`);
  }

  /** Loads the device, applying the unknown-device policy; throws for unknown/pending devices. */
  async #device(id: DeviceIdentity, cred: RequestCredentials, rpc: string): Promise<DeviceWithProfile> {
    const db = this.#o.db;
    const ttl = this.#o.deviceCacheMs ?? 1000;
    const cached = ttl > 0 ? this.#deviceRows.get(id.serial) : undefined;
    if (cached) {
      const now = Date.now();
      if (now - Math.max(cached.fetchedAt, this.#rowsCheckedAt) < ttl) {
        cached.usedAt = now;
        return cached.row;
      }
    }
    // One query for the device and its profile: this is the hot path of every request.
    const device = await db
      .selectFrom('devices')
      .leftJoin('profiles', 'profiles.name', 'devices.profile')
      .selectAll('devices')
      .select([
        'profiles.spec as profile_spec',
        'profiles.version as profile_version',
        'profiles.updated_at as profile_updated_at',
      ])
      .where('devices.serial', '=', id.serial)
      .executeTakeFirst();
    if (!device) {
      if ((this.#o.unknownDevicePolicy ?? 'reject') === 'hold' && id.certificate) {
        await db
          .insertInto('devices')
          .values({
            serial: id.serial,
            state: 'pending',
            idevid_issuer: id.certificate.issuer,
            idevid_fingerprint: id.certificate.fingerprintSha256,
            updated_at: new Date(),
          })
          .onConflict((oc) => oc.column('serial').doNothing())
          .execute();
        this.#record(id.serial, 'held', cred, id, { rpc });
        throw new SztpError(
          'SZTP_ERR_DEVICE_PENDING',
          `device ${id.serial} is held until an operator approves it`,
        );
      }
      this.#record(id.serial, 'rejected', cred, id, { rpc, reason: 'unknown device' });
      throw new SztpError('SZTP_ERR_UNKNOWN_DEVICE', `device ${id.serial} is not registered`);
    }
    if (device.state === 'pending') {
      throw new SztpError(
        'SZTP_ERR_DEVICE_PENDING',
        `device ${id.serial} is held until an operator approves it`,
      );
    }
    if (ttl > 0) {
      const now = Date.now();
      this.#deviceRows.set(id.serial, { row: device, fetchedAt: now, usedAt: now });
      this.#revalidateTimer ??= setInterval(() => void this.#revalidateRows(), Math.max(1, ttl / 2)).unref();
    }
    return device;
  }

  /**
   * Checks every cached device row against the database in one query and drops the
   * ones that changed (device `updated_at`, profile version or `updated_at`) or are gone.
   * On failure the whole cache is dropped, so a database that cannot answer never
   * leaves stale rows in use.
   */
  async #revalidateRows(): Promise<void> {
    if (this.#revalidating) return;
    // Rows no request used for a while are dropped rather than checked: the background
    // work follows the devices that are retrying now, not every device seen since start.
    const idleBefore = Date.now() - (this.#o.deviceCacheIdleMs ?? 60_000);
    for (const serial of this.#deviceRows.keys()) {
      const e = this.#deviceRows.peek(serial);
      if (e && e.usedAt < idleBefore) this.#deviceRows.delete(serial);
    }
    const serials = this.#deviceRows.keys();
    if (serials.length === 0) {
      clearInterval(this.#revalidateTimer);
      this.#revalidateTimer = undefined;
      return;
    }
    this.#revalidating = true;
    const start = Date.now();
    try {
      const rows = await this.#o.db
        .selectFrom('devices')
        .leftJoin('profiles', 'profiles.name', 'devices.profile')
        .select([
          'devices.serial',
          'devices.updated_at',
          'profiles.version as profile_version',
          'profiles.updated_at as profile_updated_at',
        ])
        .where(sql<boolean>`devices.serial = any(${serials}::text[])`)
        .execute();
      const current = new Map(rows.map((r) => [r.serial, r]));
      for (const serial of serials) {
        const entry = this.#deviceRows.peek(serial);
        if (!entry || entry.fetchedAt > start) continue; // fetched after this check began
        const now = current.get(serial);
        const same =
          now !== undefined &&
          now.updated_at.getTime() === entry.row.updated_at.getTime() &&
          now.profile_version === entry.row.profile_version &&
          (now.profile_updated_at?.getTime() ?? null) === (entry.row.profile_updated_at?.getTime() ?? null);
        if (!same) this.#deviceRows.delete(serial);
      }
      this.#rowsCheckedAt = start;
    } catch {
      this.#deviceRows.clear();
    } finally {
      this.#revalidating = false;
    }
  }

  #encodeTrustAnchor = (text: string): string => {
    // Given as PEM certificates: wrap them into the degenerate SignedData RFC 8572 wants.
    if (text.includes('-----BEGIN'))
      return Buffer.from(createOwnerCertificateArtifact(decodeArtifacts(text))).toString('base64');
    return text.replace(/\s+/g, '');
  };

  async #voucher(device: Device, nonce: Uint8Array | undefined): Promise<Uint8Array> {
    const masa = this.#o.pki.masa;
    const pinned = this.#pinned;
    if (nonce) {
      if (masa && pinned) return this.#mint(device.serial, pinned, nonce);
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
      const key = device.serial;
      const hit = this.#vouchers.get(key);
      if (hit && hit.until > this.#now().getTime() + DAY) return hit.der;
      const der = await this.#mint(device.serial, pinned, undefined);
      this.#vouchers.set(key, {
        der,
        until: this.#now().getTime() + (this.#o.voucherLifetimeMs?.plain ?? 30 * DAY),
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
  async #mint(serial: string, pinned: Uint8Array, nonce: Uint8Array | undefined): Promise<Uint8Array> {
    const now = this.#now();
    const life = nonce
      ? (this.#o.voucherLifetimeMs?.nonce ?? DAY)
      : (this.#o.voucherLifetimeMs?.plain ?? 30 * DAY);
    this.signatures++;
    return signVoucher(
      {
        createdOn: new Date(now.getTime() - 60_000),
        expiresOn: new Date(now.getTime() + life),
        assertion: 'verified',
        serialNumber: serial,
        pinnedDomainCert: pinned,
        ...(nonce ? { nonce } : {}),
      },
      this.#o.pki.masa as NonNullable<ServerPki['masa']>,
      { signingTime: now },
    );
  }

  /** get-bootstrapping-data (RFC 8572 §7.1). */
  async getBootstrappingData(
    cred: RequestCredentials,
    input: GetBootstrappingDataInput,
    encoding: Encoding,
    base: ImageBase,
  ): Promise<GetBootstrappingDataOutput> {
    return withSpan(
      'sztp.get-bootstrapping-data',
      { [Attr.sztpRpc]: 'get-bootstrapping-data' },
      async (span) => {
        const id = await this.authenticate(cred);
        span.setAttribute(Attr.deviceSerial, id.serial);
        const device = await this.#device(id, cred, 'get-bootstrapping-data');
        try {
          const out = await this.#build(device, input, encoding, base);
          out.traceparent = linkToJobTrace(this.#o.activeTraceparent, id.serial, span);
          this.#o.lifecycle.onBootstrapRequest({
            serial: id.serial,
            at: this.#now(),
            result: 'served',
            remoteAddress: cred.remoteAddress,
          });
          this.#record(id.serial, 'bootstrap-request', cred, id, {
            result: 'served',
            signed: out.ownershipVoucher !== undefined,
            signedDataPreferred: input.signedDataPreferred,
            hwModel: input.hwModel,
            osName: input.osName,
            osVersion: input.osVersion,
            nonce: input.nonce !== undefined,
          });
          return out;
        } catch (err) {
          if (err instanceof SztpError) {
            this.#o.lifecycle.onBootstrapRequest({
              serial: id.serial,
              at: this.#now(),
              result: err.code,
              remoteAddress: cred.remoteAddress,
            });
            this.#record(id.serial, 'bootstrap-request', cred, id, { result: err.code, reason: err.message });
          }
          throw err;
        }
      },
    );
  }

  async #build(
    device: DeviceWithProfile,
    input: GetBootstrappingDataInput,
    encoding: Encoding,
    base: ImageBase,
  ): Promise<GetBootstrappingDataOutput> {
    if (
      !device.profile ||
      !device.profile_spec ||
      device.profile_version === null ||
      !device.profile_updated_at
    ) {
      throw new SztpError('SZTP_ERR_NO_PROFILE', `device ${device.serial} has no profile`);
    }
    const spec = device.profile_spec as unknown as ProfileSpec;
    const opi = spec.responseFormat === 'opi-agent';
    let image: ResolvedImage | undefined;
    if (spec.type === 'onboarding' && spec.bootImage) {
      image = await this.#o.resolveImage(spec.bootImage.image, base);
      if (!image) {
        throw new SztpError(
          'SZTP_ERR_IMAGE_MISSING',
          `image ${spec.bootImage.image} of profile ${device.profile} is not held by the image service`,
        );
      }
    }
    // Conveyed information is encoded like the request (the OPI agent only reads JSON).
    const ciFormat = opi ? 'json' : encoding;
    // RFC 8572 §7.1: with signed-data-preferred, never unsigned onboarding information; an
    // unsigned onboarding profile is then signed anyway. The OPI agent never asks, and cannot
    // take owner-certificate/ownership-voucher members, so its format is always unsigned.
    const wantSigned =
      !opi && (spec.signed !== false || (input.signedDataPreferred && spec.type === 'onboarding'));
    if (opi && input.signedDataPreferred && spec.type === 'onboarding') {
      throw new SztpError(
        'SZTP_ERR_UNSIGNED_REFUSED',
        'the opi-agent response format is unsigned, but the device asked for signed data',
      );
    }
    // Conveyed information depends on the profile, its image and the URLs the device reached us
    // by — not on the device — so one signature serves every device of a profile.
    const key = `${wantSigned ? 's' : 'u'}|${device.profile}|${device.profile_version}|${device.profile_updated_at.getTime()}|${ciFormat}|${image?.sha256 ?? ''}|${image?.downloadUris.join(' ') ?? ''}`;
    const info = () => buildConveyedInformation(spec, image, this.#encodeTrustAnchor, opi);
    if (!wantSigned) {
      let ci = this.#signed.get(key);
      if (!ci) {
        ci = createUnsignedConveyedInformation(info(), ciFormat);
        this.#signed.set(key, ci);
      }
      return { ...(opi ? {} : { reportingLevel: 'verbose' as const }), conveyedInformation: ci };
    }
    const owner = this.#owner;
    if (!owner || !this.#ownerArtifact) {
      if (input.signedDataPreferred && spec.type === 'onboarding') {
        throw new SztpError('SZTP_ERR_UNSIGNED_REFUSED', 'no owner certificate configured to sign with');
      }
      throw new SztpError(
        'SZTP_ERR_NO_VOUCHER',
        'signed data needs an owner certificate and key in the PKI directory',
      );
    }
    const voucher = await this.#voucher(device, input.nonce);
    let ci = this.#signed.get(key);
    if (!ci) {
      this.signatures++;
      ci = await signConveyedInformation({
        information: info(),
        format: ciFormat,
        signer: owner,
        signingTime: this.#now(),
      });
      this.#signed.set(key, ci);
    }
    return {
      reportingLevel: 'verbose',
      conveyedInformation: ci,
      ownerCertificate: this.#ownerArtifact,
      ownershipVoucher: voucher,
    };
  }

  /** report-progress (RFC 8572 §7.2): stored append-only; moves the device's state. */
  async reportProgress(cred: RequestCredentials, input: ReportProgressInput): Promise<void> {
    return withSpan(
      'sztp.report-progress',
      { [Attr.sztpRpc]: 'report-progress', [Attr.sztpProgressType]: input.progressType },
      async (span) => {
        const id = await this.authenticate(cred);
        span.setAttribute(Attr.deviceSerial, id.serial);
        this.#deviceRows.delete(id.serial); // its state is about to change
        await this.#device(id, cred, 'report-progress');
        this.#deviceRows.delete(id.serial);
        // Queued request records go first, so a device's history stays in the order it happened.
        await this.#events.flush();
        await this.#o.lifecycle.onProgress({
          serial: id.serial,
          at: this.#now(),
          progressType: input.progressType,
          message: input.message,
          remoteAddress: cred.remoteAddress,
          tlsIdentity: id.certificate
            ? `${id.certificate.subject} (sha256 ${id.certificate.fingerprintSha256})`
            : `basic:${id.serial}`,
          sshHostKeys: input.sshHostKeys,
          trustAnchorCerts: input.trustAnchorCerts,
        });
      },
    );
  }
}
