/**
 * Owner, MASA and server TLS credentials (and the manufacturer trust anchors)
 * kept in the database for every replica sharing it: certificates as PEM,
 * private keys sealed with the shared secret key (`SecretBox`, associated data
 * `credentials:<role>`, so a sealed key copied onto another role's row does not
 * open). A change bumps the row's `generation` and sends a NOTIFY on
 * {@link CREDENTIALS_CHANNEL}; each replica reloads the rows and swaps one new
 * immutable {@link Credentials} object in (see `watch`), with a slow re-check
 * behind the notification in case one was lost.
 */
import { type Kysely, sql } from 'kysely';
import type { CredentialsRow, Database, Notifier } from '../db/index.js';
import {
  decodeArtifacts,
  isPkiError,
  parseCertificate,
  type Signer,
  signerFromPrivateKey,
  toPem,
  validateCertificatePath,
} from '../pki/index.js';
import {
  type OwnerCredentials,
  type OwnerStore,
  type OwnerUpload,
  checkOwnerUpload,
  ownerView,
} from './owner.js';
import { type SecretBox, SecretKeyError } from './secrets.js';

/** The NOTIFY channel a credentials change is announced on (payload: the role). */
export const CREDENTIALS_CHANNEL = 'dpu_ztp_credentials';

/** Roles of stored credentials. */
export type CredentialRole = CredentialsRow['role'];

/** Why credentials could not be imported or loaded. */
export class CredentialsError extends Error {
  constructor(
    readonly code: 'CRED_ERR_INVALID' | 'CRED_ERR_KEY_MISMATCH' | 'CRED_ERR_EXISTS' | 'CRED_ERR_MISSING',
    message: string,
  ) {
    super(message);
    this.name = 'CredentialsError';
  }
}

/** Credentials as PEM text, as `pki init` writes them or an operator brings them. */
export interface CredentialsInput {
  /** Server TLS certificate (then its chain) and key. */
  tls?: { certificates: string; key: string } | undefined;
  /** Manufacturer CA certificates that IDevIDs chain to. */
  manufacturer?: string | undefined;
  /** Owner certificate (then intermediates), its key, and the certificate vouchers pin (owner CA). */
  owner?: { certificates: string; key: string; pinned: string } | undefined;
  /** A lab MASA that mints vouchers (certificate then chain, key). */
  masa?: { certificates: string; key: string } | undefined;
}

/** One consistent set of loaded credentials; replaced whole, never changed in place. */
export interface Credentials {
  readonly tls: { readonly cert: string; readonly key: string };
  readonly manufacturerAnchors: Uint8Array[];
  readonly owner: Signer | undefined;
  readonly pinnedDomainCert: Uint8Array | undefined;
  readonly masa: Signer | undefined;
  /** `role:generation` of every row read: equal stamps mean equal credentials. */
  readonly stamp: string;
  /** The TLS row's generation (the device listener reloads its context only when it moves). */
  readonly tlsGeneration: string;
}

function certs(pem: string, what: string): Uint8Array[] {
  let out: Uint8Array[];
  try {
    out = decodeArtifacts(pem);
  } catch (err) {
    throw new CredentialsError('CRED_ERR_INVALID', `${what}: ${(err as Error).message}`);
  }
  if (out.length === 0) throw new CredentialsError('CRED_ERR_INVALID', `${what}: no certificate`);
  for (const [i, c] of out.entries()) {
    try {
      parseCertificate(c);
    } catch (err) {
      throw new CredentialsError(
        'CRED_ERR_INVALID',
        `${what}: certificate ${i + 1}: ${(err as Error).message}`,
      );
    }
  }
  return out;
}

/** A signer over `keyPem` for the first certificate of `chain`; refuses a key that is not that certificate's. */
function pairedSigner(chain: Uint8Array[], keyPem: string, what: string): Signer {
  let signer: Signer;
  try {
    signer = signerFromPrivateKey(keyPem, { certificates: chain });
  } catch (err) {
    throw new CredentialsError(
      'CRED_ERR_INVALID',
      `${what} key: ${isPkiError(err) ? err.message : 'not a PKCS#8 PEM private key'}`,
    );
  }
  const cert = parseCertificate(chain[0] as Uint8Array);
  if (Buffer.compare(Buffer.from(signer.publicKey), Buffer.from(cert.publicKey)) !== 0)
    throw new CredentialsError(
      'CRED_ERR_KEY_MISMATCH',
      `${what}: the private key does not belong to the certificate (${cert.subject})`,
    );
  return signer;
}

/** Checks every key against its certificate and the owner chain against its pin; throws CredentialsError. */
export function checkCredentialsInput(input: CredentialsInput, now: Date): void {
  if (input.tls) pairedSigner(certs(input.tls.certificates, 'tls certificate'), input.tls.key, 'tls');
  if (input.manufacturer) certs(input.manufacturer, 'manufacturer trust anchors');
  if (input.masa) pairedSigner(certs(input.masa.certificates, 'masa certificate'), input.masa.key, 'masa');
  if (input.owner) {
    const chain = certs(input.owner.certificates, 'owner certificate');
    pairedSigner(chain, input.owner.key, 'owner');
    const pinned = certs(input.owner.pinned, 'owner pinned domain certificate (owner CA)')[0] as Uint8Array;
    try {
      validateCertificatePath({
        certificate: parseCertificate(chain[0] as Uint8Array),
        intermediates: chain.slice(1),
        trustAnchors: [pinned],
        now,
        untrustedCode: 'PKI_ERR_CHAIN_NOT_PINNED',
      });
    } catch (err) {
      throw new CredentialsError(
        'CRED_ERR_INVALID',
        `the owner certificate does not chain to the owner CA it is to be pinned by: ${(err as Error).message}`,
      );
    }
  }
}

const aad = (role: CredentialRole) => `credentials:${role}`;
/** Normalised PEM (so re-encoded but equal certificates compare equal). */
const normPem = (pem: string) =>
  decodeArtifacts(pem)
    .map((c) => toPem(c, 'CERTIFICATE'))
    .join('');

interface RowValues {
  certificates: string;
  key: string | null;
  pinned: string | null;
}

function rowsOf(input: CredentialsInput): Map<CredentialRole, RowValues> {
  const m = new Map<CredentialRole, RowValues>();
  if (input.tls)
    m.set('tls', { certificates: normPem(input.tls.certificates), key: input.tls.key, pinned: null });
  if (input.manufacturer)
    m.set('manufacturer', { certificates: normPem(input.manufacturer), key: null, pinned: null });
  if (input.owner)
    m.set('owner', {
      certificates: normPem(input.owner.certificates),
      key: input.owner.key,
      pinned: normPem(input.owner.pinned),
    });
  if (input.masa)
    m.set('masa', { certificates: normPem(input.masa.certificates), key: input.masa.key, pinned: null });
  return m;
}

/** What an import did, per role. */
export interface ImportReport {
  written: CredentialRole[];
  unchanged: CredentialRole[];
}

/** Options of {@link CredentialStore}. */
export interface CredentialStoreOptions {
  db: Kysely<Database>;
  box: SecretBox;
  /** Announces changes to the other replicas (absent: no announcement, e.g. a one-shot CLI on PGlite). */
  notifier?: Notifier | undefined;
}

/** The credentials rows: import, load, owner rotation, and watching for changes made elsewhere. */
export class CredentialStore {
  readonly #o: CredentialStoreOptions;

  constructor(options: CredentialStoreOptions) {
    this.#o = options;
  }

  /** Whether the database holds server credentials (a TLS row) yet. */
  async present(): Promise<boolean> {
    const r = await this.#o.db
      .selectFrom('credentials')
      .select('role')
      .where('role', '=', 'tls')
      .executeTakeFirst();
    return r !== undefined;
  }

  /**
   * Stores `input` after checking it. A role already stored with the same certificates and
   * key is left alone (an import is idempotent); one stored with other material is refused
   * (`CRED_ERR_EXISTS`) unless `replace`; with `ifEmpty` nothing is written when any row
   * exists. Concurrent imports serialise on an advisory lock.
   */
  async import(
    input: CredentialsInput,
    opts: { replace?: boolean; ifEmpty?: boolean; now?: Date } = {},
  ): Promise<ImportReport> {
    checkCredentialsInput(input, opts.now ?? new Date());
    const wanted = rowsOf(input);
    const report: ImportReport = { written: [], unchanged: [] };
    await this.#o.db.transaction().execute(async (tx) => {
      await sql`select pg_advisory_xact_lock(hashtext('dpu-ztp.credentials'))`.execute(tx);
      const existing = new Map(
        (await tx.selectFrom('credentials').selectAll().execute()).map((r) => [r.role, r] as const),
      );
      // A replica's first start seeds the table only if no other replica did so first.
      if (opts.ifEmpty && existing.size > 0) return;
      const clashes: CredentialRole[] = [];
      for (const [role, v] of wanted) {
        const row = existing.get(role);
        if (!row) continue;
        if (this.#same(row, v)) report.unchanged.push(role);
        else clashes.push(role);
      }
      if (clashes.length && !opts.replace)
        throw new CredentialsError(
          'CRED_ERR_EXISTS',
          `the database already holds other ${clashes.join(', ')} credentials; give --replace to rotate them`,
        );
      for (const [role, v] of wanted) {
        if (report.unchanged.includes(role)) continue;
        const values = {
          certificates: v.certificates,
          key_sealed: v.key === null ? null : this.#o.box.seal(v.key, aad(role)),
          pinned: v.pinned,
          updated_at: new Date(),
        };
        if (existing.has(role))
          await tx
            .updateTable('credentials')
            .set({ ...values, generation: sql`generation + 1` })
            .where('role', '=', role)
            .execute();
        else
          await tx
            .insertInto('credentials')
            .values({ role, ...values })
            .execute();
        report.written.push(role);
      }
    });
    if (report.written.length) await this.#announce(report.written.join(','));
    return report;
  }

  #same(row: CredentialsRow, v: RowValues): boolean {
    if (normPem(row.certificates) !== v.certificates) return false;
    if ((row.pinned === null ? null : normPem(row.pinned)) !== v.pinned) return false;
    if (v.key === null || row.key_sealed === null) return v.key === row.key_sealed;
    return this.#o.box.openString(row.key_sealed, aad(row.role)).trim() === v.key.trim();
  }

  /** Replaces the owner row with checked credentials (PUT /api/v1/owner) and tells every replica. */
  async replaceOwner(creds: OwnerCredentials): Promise<void> {
    const values = {
      certificates: creds.chain.map((c) => toPem(c, 'CERTIFICATE')).join(''),
      key_sealed: this.#o.box.seal(creds.keyPem, aad('owner')),
      pinned: toPem(creds.pinned, 'CERTIFICATE'),
      updated_at: new Date(),
    };
    await this.#o.db
      .insertInto('credentials')
      .values({ role: 'owner', ...values })
      .onConflict((oc) =>
        oc.column('role').doUpdateSet({ ...values, generation: sql`credentials.generation + 1` }),
      )
      .execute();
    await this.#announce('owner');
  }

  async #announce(payload: string): Promise<void> {
    await this.#o.notifier?.notify(CREDENTIALS_CHANNEL, payload);
  }

  /** A cheap stamp of the stored credentials (`role:generation,…`): equal stamps, equal credentials. */
  async stamp(): Promise<string> {
    const rows = await this.#o.db
      .selectFrom('credentials')
      .select(['role', 'generation'])
      .orderBy('role')
      .execute();
    return rows.map((r) => `${r.role}:${r.generation}`).join(',');
  }

  /** Loads and opens every row; throws CRED_ERR_MISSING without TLS or manufacturer rows. */
  async load(): Promise<Credentials> {
    const rows = new Map(
      (await this.#o.db.selectFrom('credentials').selectAll().orderBy('role').execute()).map(
        (r) => [r.role, r] as const,
      ),
    );
    const tls = rows.get('tls');
    const manufacturer = rows.get('manufacturer');
    if (!tls?.key_sealed || !manufacturer)
      throw new CredentialsError(
        'CRED_ERR_MISSING',
        'the database holds no server TLS credentials or manufacturer trust anchors: run dpu-ztp pki import',
      );
    const open = (r: CredentialsRow) => {
      try {
        return this.#o.box.openString(r.key_sealed as Uint8Array, aad(r.role));
      } catch {
        throw new SecretKeyError(
          'SECRET_ERR_OPEN_FAILED',
          `the secret key does not open the stored ${r.role} credentials' private key: start with the key they were sealed with`,
        );
      }
    };
    const owner = rows.get('owner');
    const masa = rows.get('masa');
    return Object.freeze({
      tls: Object.freeze({ cert: tls.certificates, key: open(tls) }),
      manufacturerAnchors: decodeArtifacts(manufacturer.certificates),
      owner: owner?.key_sealed
        ? signerFromPrivateKey(open(owner), { certificates: decodeArtifacts(owner.certificates) })
        : undefined,
      pinnedDomainCert: owner?.pinned ? decodeArtifacts(owner.pinned)[0] : undefined,
      masa: masa?.key_sealed
        ? signerFromPrivateKey(open(masa), { certificates: decodeArtifacts(masa.certificates) })
        : undefined,
      stamp: [...rows.values()].map((r) => `${r.role}:${r.generation}`).join(','),
      tlsGeneration: String(tls.generation),
    });
  }

  /**
   * Calls `onChange` with freshly loaded credentials whenever they differ from `current`:
   * at once on a NOTIFY (another replica's change, or this one's), and every `recheckMs`
   * (default 30 s) in case a notification was lost. Reloads never overlap; a failed one is
   * reported and retried on the next wake. Returns a function that stops watching.
   */
  async watch(
    current: Credentials,
    onChange: (next: Credentials) => void,
    opts: { recheckMs?: number; onError?: (err: unknown) => void } = {},
  ): Promise<() => void> {
    let stamp = current.stamp;
    let running: Promise<void> | undefined;
    let again = false;
    const check = (): void => {
      if (running) {
        again = true;
        return;
      }
      running = (async () => {
        try {
          do {
            again = false;
            if ((await this.stamp()) === stamp) continue;
            const next = await this.load();
            stamp = next.stamp;
            onChange(next);
          } while (again);
        } catch (err) {
          opts.onError?.(err);
        }
      })().finally(() => {
        running = undefined;
      });
    };
    const unlisten = this.#o.notifier ? await this.#o.notifier.listen(CREDENTIALS_CHANNEL, check) : () => {};
    const timer = setInterval(check, opts.recheckMs ?? 30_000);
    timer.unref();
    return () => {
      unlisten();
      clearInterval(timer);
    };
  }

  /** The owner store of `PUT/GET /api/v1/owner` over these rows; `live()` is the credentials in use here. */
  ownerStore(live: () => Credentials, onReplaced: () => Promise<void>): OwnerStore {
    return {
      get: async () => {
        const c = live();
        return c.owner
          ? ownerView(
              c.owner.certificates,
              c.pinnedDomainCert,
              'database:credentials/owner (sealed)',
              Boolean(c.masa),
            )
          : undefined;
      },
      replace: async (upload: OwnerUpload) => {
        const c = live();
        const creds = checkOwnerUpload(upload, c.pinnedDomainCert, new Date());
        await this.replaceOwner(creds);
        // This replica swaps before answering; the others on the NOTIFY.
        await onReplaced();
        return ownerView(creds.chain, creds.pinned, 'database:credentials/owner (sealed)', Boolean(c.masa));
      },
    };
  }
}
