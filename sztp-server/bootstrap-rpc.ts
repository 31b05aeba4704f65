/**
 * The RFC 8572 bootstrap server's behaviour behind the two RPCs: who the
 * device is (IDevID and/or HTTP Basic, §5.3 — `device-auth.ts`), what it gets
 * (conveyed information from its profile, signed by the owner certificate with
 * owner certificate and ownership voucher beside it, §3 — `response-signer.ts`,
 * `voucher-policy.ts`), and what it reported (the lifecycle port). Device rows
 * are cached in `device-rows.ts`; requests are logged by `request-log.ts`.
 * Transport-free: the Fastify routes in `restconf-routes.ts` call it. Every
 * part takes the one injected clock.
 */
import type { Kysely } from 'kysely';
import { type Database, type ProfileSpecResult, parseProfileSpec } from '../db/index.js';
import { Attr, SpanName, withSpan } from '../otel/index.js';
import { createOwnerCertificateArtifact, decodeArtifacts, type Signer } from '../pki/index.js';
import type { AuthThrottleOptions } from './auth-throttle.js';
import { type ActiveTraceparent, linkToJobTrace, rpcTraceParent } from './job-trace.js';
import { buildConveyedInformation, type ProfileSpec, type ResolvedImage } from './conveyed-builder.js';
import {
  DeviceAuthenticator,
  type DeviceIdentity,
  type RequestCredentials,
  type RevokedFingerprints,
} from './device-auth.js';
import type { DeviceLifecycle } from './device-lifecycle.js';
import { DeviceRowCache, type DeviceWithProfile } from './device-rows.js';
import { SztpError } from './errors.js';
import { RequestLog, tlsIdentity } from './request-log.js';
import { ResponseSigner } from './response-signer.js';
import type {
  Encoding,
  GetBootstrappingDataInput,
  GetBootstrappingDataOutput,
  ReportProgressInput,
} from './restconf-codec.js';
import type { ServerPki } from './server-pki.js';
import { type SigningMaterial, signingMaterial } from './signing-material.js';
import { VoucherPolicy } from './voucher-policy.js';

export type { DeviceIdentity, RequestCredentials, RevokedFingerprints } from './device-auth.js';

/** What to do with a device that authenticates with a valid IDevID but is not registered. */
export type UnknownDevicePolicy = 'reject' | 'hold';

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
  /** SHA-256 fingerprints (colon hex, lowercase) of revoked IDevIDs, asked on every request. */
  revokedFingerprints?: RevokedFingerprints | undefined;
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
  /**
   * The device-row cache itself, when the caller builds it (tests drive its checks with
   * their own clock); `deviceCacheMs` and `deviceCacheIdleMs` are then ignored.
   */
  deviceRows?: DeviceRowCache;
  /** Limits on failed HTTP Basic attempts per serial and per address (defaults in `AUTH_THROTTLE_DEFAULTS`). */
  basicThrottle?: AuthThrottleOptions;
}

/**
 * The OPI sztp-agent's off-schema inputs (an empty nonce, empty key containers) are
 * accepted only from devices whose profile answers in its format; any other device
 * gets the error the module's rules give.
 */
function offSchemaOnlyForOpi(device: DeviceWithProfile, offSchema: string[] | undefined): void {
  if (!offSchema || offSchema.length === 0) return;
  if ((device.profile_spec as { responseFormat?: string } | null)?.responseFormat === 'opi-agent') return;
  throw new SztpError(
    'SZTP_ERR_INVALID_VALUE',
    `${offSchema.join(', ')}: not valid for the module; accepted only from devices on an opi-agent profile`,
  );
}

/** The device-facing bootstrap logic. */
export class BootstrapService {
  readonly #o: BootstrapServiceOptions;
  readonly #now: () => Date;
  readonly #auth: DeviceAuthenticator;
  readonly #rows: DeviceRowCache;
  readonly #vouchers: VoucherPolicy;
  readonly #signer: ResponseSigner;
  readonly #log: RequestLog;
  /** Owner, pinned domain certificate and MASA as one immutable snapshot, swapped whole on rotation. */
  #material: SigningMaterial;
  /** Validated specs by the identity of the stored spec object (a cached row keeps it). */
  readonly #specs = new WeakMap<object, ProfileSpecResult>();

  constructor(options: BootstrapServiceOptions) {
    this.#o = options;
    const now = options.now ?? (() => new Date());
    this.#now = now;
    const cacheSize = options.cacheSize ?? 10_000;
    this.#auth = new DeviceAuthenticator({
      db: options.db,
      manufacturerAnchors: options.pki.manufacturerAnchors,
      revokedFingerprints: options.revokedFingerprints,
      now,
      cacheSize,
      basicThrottle: options.basicThrottle,
    });
    this.#rows =
      options.deviceRows ??
      new DeviceRowCache({
        db: options.db,
        ttlMs: options.deviceCacheMs ?? 1000,
        idleMs: options.deviceCacheIdleMs,
        size: cacheSize,
        now,
      });
    this.#vouchers = new VoucherPolicy({
      now,
      lifetimeMs: options.voucherLifetimeMs,
      cacheSize,
    });
    this.#signer = new ResponseSigner({ now, cacheSize });
    this.#log = new RequestLog(options.db, options.onEventWriteError);
    this.#material = signingMaterial({
      owner: options.pki.owner,
      pinned: options.pki.pinnedDomainCert,
      masa: options.pki.masa,
    });
  }

  /** Signatures made: conveyed information and minted vouchers (for the cache test and the benchmark). */
  get signatures(): number {
    return this.#signer.signatures + this.#vouchers.minted;
  }

  /**
   * Swaps in new owner credentials (PUT /api/v1/owner): later responses are signed with
   * them, and cached signatures and minted vouchers made with the old ones are dropped.
   */
  replaceOwner(owner: Signer, pinnedDomainCert: Uint8Array): void {
    this.replaceSigning({ owner, pinned: pinnedDomainCert, masa: this.#material.masa });
  }

  /**
   * Swaps in a whole new signing snapshot (owner, pinned domain certificate, MASA) in one
   * assignment: a request already under way finishes with the snapshot it took at its start,
   * later ones use the new one. Caches made with the old snapshot are dropped.
   */
  replaceSigning(parts: {
    owner?: Signer | undefined;
    pinned?: Uint8Array | undefined;
    masa?: Signer | undefined;
  }): void {
    this.#material = signingMaterial(parts);
    this.#signer.clear();
    this.#vouchers.clear();
  }

  /** The signing snapshot new requests use (tests compare it across a rotation). */
  get signing(): SigningMaterial {
    return this.#material;
  }

  /** Writes queued request records now (before closing the database, or before reading them). */
  flush(): Promise<void> {
    return this.#log.flush();
  }

  /** Authenticates a request (RFC 8572 §5.3): IDevID chain and/or HTTP Basic; both must name the same device. */
  authenticate(cred: RequestCredentials): Promise<DeviceIdentity> {
    return this.#auth.authenticate(cred);
  }

  /** Loads the device, applying the unknown-device policy; throws for unknown/pending devices. */
  async #device(id: DeviceIdentity, cred: RequestCredentials, rpc: string): Promise<DeviceWithProfile> {
    const device = await this.#rows.get(id.serial);
    if (!device) {
      if ((this.#o.unknownDevicePolicy ?? 'reject') === 'hold' && id.certificate) {
        await this.#o.db
          .insertInto('devices')
          .values({
            serial: id.serial,
            state: 'pending',
            idevid_issuer: id.certificate.issuer,
            idevid_fingerprint: id.certificate.fingerprintSha256,
            updated_at: this.#now(),
          })
          .onConflict((oc) => oc.column('serial').doNothing())
          .execute();
        this.#log.record(id.serial, 'held', cred, id, { rpc });
        throw new SztpError(
          'SZTP_ERR_DEVICE_PENDING',
          `device ${id.serial} is held until an operator approves it`,
        );
      }
      this.#log.record(id.serial, 'rejected', cred, id, { rpc, reason: 'unknown device' });
      throw new SztpError('SZTP_ERR_UNKNOWN_DEVICE', `device ${id.serial} is not registered`);
    }
    if (device.state === 'pending') {
      throw new SztpError(
        'SZTP_ERR_DEVICE_PENDING',
        `device ${id.serial} is held until an operator approves it`,
      );
    }
    const cert = id.certificate;
    if (cert && device.idevid_fingerprint !== cert.fingerprintSha256) {
      // The IDevID a registered device presents, recorded once (again only when it changes): provisioning
      // jobs and the dashboard check it against the revoked identities. Not `updated_at`, which marks
      // operator changes (the row cache revalidates on it); the cached row is patched in place instead.
      await this.#o.db
        .updateTable('devices')
        .set({ idevid_fingerprint: cert.fingerprintSha256, idevid_issuer: cert.issuer })
        .where('serial', '=', id.serial)
        .execute();
      device.idevid_fingerprint = cert.fingerprintSha256;
      device.idevid_issuer = cert.issuer;
    }
    return device;
  }

  /** The device's profile spec, validated against the one schema where it is read (once per cached row). */
  #spec(device: DeviceWithProfile): ProfileSpec {
    const raw = device.profile_spec as object;
    let r = this.#specs.get(raw);
    if (!r) {
      r = parseProfileSpec(raw);
      this.#specs.set(raw, r);
    }
    if (!r.ok)
      throw new SztpError('SZTP_ERR_PROFILE_INVALID', `profile ${device.profile} is not valid: ${r.error}`);
    return r.spec;
  }

  #encodeTrustAnchor = (text: string): string => {
    // Given as PEM certificates: wrap them into the degenerate SignedData RFC 8572 wants.
    if (text.includes('-----BEGIN'))
      return Buffer.from(createOwnerCertificateArtifact(decodeArtifacts(text))).toString('base64');
    return text.replace(/\s+/g, '');
  };

  /**
   * get-bootstrapping-data (RFC 8572 §7.1). `authenticated` is the identity the caller
   * already established with {@link authenticate} for these credentials (the routes
   * authenticate before they parse the body); without it the request is authenticated here.
   */
  async getBootstrappingData(
    cred: RequestCredentials,
    input: GetBootstrappingDataInput,
    encoding: Encoding,
    base: ImageBase,
    authenticated?: DeviceIdentity,
    traceparent?: string | string[],
  ): Promise<GetBootstrappingDataOutput> {
    // The routes authenticate first, so the span can start in the device's job trace.
    const rt = authenticated
      ? rpcTraceParent(this.#o.activeTraceparent, authenticated.serial, traceparent)
      : undefined;
    return withSpan(
      SpanName.getBootstrappingData,
      { [Attr.sztpRpc]: 'get-bootstrapping-data', ...(rt ? { [Attr.sztpJoined]: rt.joined } : {}) },
      async (span) => {
        const id = authenticated ?? (await this.authenticate(cred));
        span.setAttribute(Attr.deviceSerial, id.serial);
        const device = await this.#device(id, cred, 'get-bootstrapping-data');
        try {
          offSchemaOnlyForOpi(device, input.offSchema);
          const out = await this.#build(device, input, encoding, base);
          out.traceparent = rt ? rt.handOver : linkToJobTrace(this.#o.activeTraceparent, id.serial, span);
          this.#o.lifecycle.onBootstrapRequest({
            serial: id.serial,
            at: this.#now(),
            result: 'served',
            remoteAddress: cred.remoteAddress,
          });
          this.#log.record(id.serial, 'bootstrap-request', cred, id, {
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
            this.#log.record(id.serial, 'bootstrap-request', cred, id, {
              result: err.code,
              reason: err.message,
            });
          }
          throw err;
        }
      },
      rt ? { parent: rt.parent, links: rt.links } : {},
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
    // One snapshot for the whole response: signature, owner certificate and voucher agree.
    const material = this.#material;
    const spec = this.#spec(device);
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
    const key = `${device.profile}|${device.profile_version}|${device.profile_updated_at.getTime()}|${ciFormat}|${image?.sha256 ?? ''}|${image?.downloadUris.join(' ') ?? ''}`;
    const info = () => {
      try {
        return buildConveyedInformation(spec, image, this.#encodeTrustAnchor, opi);
      } catch (err) {
        // Checked at PUT; a row that slipped past (written before the check, or edited in the
        // database) is a coded refusal, not a 500.
        throw new SztpError(
          'SZTP_ERR_PROFILE_INVALID',
          `profile ${device.profile} cannot be turned into conveyed information: ${(err as Error).message}`,
        );
      }
    };
    if (!wantSigned) {
      const ci = this.#signer.unsigned(key, info, ciFormat);
      return { ...(opi ? {} : { reportingLevel: 'verbose' as const }), conveyedInformation: ci };
    }
    const ownerCertificate = material.ownerArtifact;
    if (!ownerCertificate) {
      if (input.signedDataPreferred && spec.type === 'onboarding') {
        throw new SztpError('SZTP_ERR_UNSIGNED_REFUSED', 'no owner certificate configured to sign with');
      }
      throw new SztpError(
        'SZTP_ERR_NO_VOUCHER',
        'signed data needs an owner certificate and key in the PKI directory',
      );
    }
    const voucher = await this.#vouchers.voucher(device, input.nonce, material);
    const ci = await this.#signer.signed(key, info, ciFormat, material);
    return {
      reportingLevel: 'verbose',
      conveyedInformation: ci,
      ownerCertificate,
      ownershipVoucher: voucher,
    };
  }

  /** report-progress (RFC 8572 §7.2): stored append-only; moves the device's state. `authenticated` as for get-bootstrapping-data. */
  async reportProgress(
    cred: RequestCredentials,
    input: ReportProgressInput,
    authenticated?: DeviceIdentity,
    traceparent?: string | string[],
  ): Promise<string | undefined> {
    const rt = authenticated
      ? rpcTraceParent(this.#o.activeTraceparent, authenticated.serial, traceparent)
      : undefined;
    return withSpan(
      SpanName.reportProgress,
      {
        [Attr.sztpRpc]: 'report-progress',
        [Attr.sztpProgressType]: input.progressType,
        ...(rt ? { [Attr.sztpJoined]: rt.joined } : {}),
      },
      async (span) => {
        const id = authenticated ?? (await this.authenticate(cred));
        span.setAttribute(Attr.deviceSerial, id.serial);
        // The progress type as an event: a trace view shows the device's reports on the job's timeline.
        span.addEvent(input.progressType);
        this.#rows.delete(id.serial); // its state is about to change
        const device = await this.#device(id, cred, 'report-progress');
        this.#rows.delete(id.serial);
        offSchemaOnlyForOpi(device, input.offSchema);
        // Queued request records go first, so a device's history stays in the order it happened.
        await this.#log.flush();
        await this.#o.lifecycle.onProgress({
          serial: id.serial,
          at: this.#now(),
          progressType: input.progressType,
          message: input.message,
          remoteAddress: cred.remoteAddress,
          tlsIdentity: tlsIdentity(id) as string,
          sshHostKeys: input.sshHostKeys,
          trustAnchorCerts: input.trustAnchorCerts,
        });
        // The job's trace, handed over here too: an agent that missed it on get-bootstrapping-data
        // (another replica had not heard of the run yet) joins from its next report on.
        return rt?.handOver;
      },
      rt ? { parent: rt.parent, links: rt.links } : {},
    );
  }
}
