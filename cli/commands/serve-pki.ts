/**
 * The PKI `serve` uses, from `--pki-dir` (the layout `dpu-ztp pki init`
 * writes): bootstrap-server TLS certificate and key, manufacturer CA(s) that
 * IDevIDs chain to, the owner certificate and key that sign conveyed
 * information, and, when present, the lab MASA that mints vouchers. With no
 * PKI there, a lab PKI is created on first start and the log says so.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  type CredentialsInput,
  checkOwnerUpload,
  type OwnerStore,
  ownerView,
  isFingerprint,
} from '../../bootstrap/index.js';
import { createLabPki, decodeArtifacts, type Signer, signerFromPrivateKey, toPem } from '../../pki/index.js';
import type { ServerPki } from '../../sztp-server/index.js';
import { CliError } from '../exit.js';
import { writeAtomic } from './pki.js';

async function optional(path: string): Promise<Buffer | undefined> {
  return existsSync(path) ? readFile(path) : undefined;
}

function certs(pem: Buffer | undefined, what: string): Uint8Array[] {
  if (!pem) return [];
  try {
    return decodeArtifacts(pem.toString('utf8'));
  } catch (err) {
    throw new CliError('SERVE_ERR_PKI', `${what}: ${(err as Error).message}`);
  }
}

/** Creates a lab PKI in `pkiDir` when it holds no server certificate yet. */
export async function ensurePki(pkiDir: string, log: Logger): Promise<void> {
  if (existsSync(join(pkiDir, 'server.crt'))) return;
  const serverNames = [...new Set(['localhost', '127.0.0.1', '::1', hostname()].filter(Boolean))];
  const lab = await createLabPki({ serverNames, now: new Date() });
  await mkdir(pkiDir, { recursive: true, mode: 0o755 });
  for (const f of lab.files) await writeAtomic(join(pkiDir, f.path), f.data, f.mode);
  log.warn(
    { pkiDir, serverNames },
    'no PKI found: created a LAB PKI (manufacturer CA, MASA, owner, TLS) for development; use `dpu-ztp pki init` or real certificates in production',
  );
}

/** Reads the server's PKI material from `pkiDir` (revoked IDevIDs: {@link readRevokedFile}). */
export async function loadServerPki(pkiDir: string, log: Logger): Promise<{ pki: ServerPki }> {
  const need = async (name: string) => {
    const b = await optional(join(pkiDir, name));
    if (!b)
      throw new CliError(
        'SERVE_ERR_NO_PKI',
        `--pki-dir ${pkiDir}: ${name} is missing (run dpu-ztp pki init --out ${pkiDir})`,
      );
    return b;
  };
  const tls = { cert: await need('server.crt'), key: await need('server.key') };
  const manufacturerAnchors = certs(await need('manufacturer-ca.crt'), 'manufacturer-ca.crt');
  const ownerCrt = await optional(join(pkiDir, 'owner.crt'));
  const ownerKey = await optional(join(pkiDir, 'owner.key'));
  const ownerCa = certs(await optional(join(pkiDir, 'owner-ca.crt')), 'owner-ca.crt');
  const masaCrt = await optional(join(pkiDir, 'masa.crt'));
  const masaKey = await optional(join(pkiDir, 'masa.key'));
  const owner =
    ownerCrt && ownerKey
      ? signerFromPrivateKey(ownerKey.toString('utf8'), { certificates: certs(ownerCrt, 'owner.crt') })
      : undefined;
  const masa =
    masaCrt && masaKey
      ? signerFromPrivateKey(masaKey.toString('utf8'), { certificates: [...certs(masaCrt, 'masa.crt')] })
      : undefined;
  log.info(
    {
      pkiDir,
      manufacturerAnchors: manufacturerAnchors.length,
      owner: Boolean(owner),
      labMasa: Boolean(masa),
    },
    'PKI loaded',
  );
  return { pki: { tls, manufacturerAnchors, owner, pinnedDomainCert: ownerCa[0], masa } };
}

/**
 * The owner store of a running service: owner credentials live as
 * `owner.crt`/`owner.key`/`owner-ca.crt` in the PKI directory; a replacement
 * is checked, written atomically (key mode 0600) and swapped into the running
 * bootstrap service. Replicas sharing PostgreSQL each read their own PKI
 * directory: share it (a common volume) or PUT on each replica.
 */
export function fileOwnerStore(
  pkiDir: string,
  pki: ServerPki,
  swap: (owner: Signer, pinned: Uint8Array) => void,
): OwnerStore {
  let chain = pki.owner ? [...pki.owner.certificates] : [];
  let pinned = pki.pinnedDomainCert;
  const keyRef = `file:${join(pkiDir, 'owner.key')}`;
  return {
    async get() {
      return chain.length ? ownerView(chain, pinned, keyRef, Boolean(pki.masa)) : undefined;
    },
    async replace(upload) {
      const creds = checkOwnerUpload(upload, pinned, new Date());
      await writeAtomic(join(pkiDir, 'owner.key'), creds.keyPem, 0o600);
      await writeAtomic(
        join(pkiDir, 'owner.crt'),
        creds.chain.map((c) => toPem(c, 'CERTIFICATE')).join(''),
        0o644,
      );
      await writeAtomic(join(pkiDir, 'owner-ca.crt'), toPem(creds.pinned, 'CERTIFICATE'), 0o644);
      swap(creds.signer, creds.pinned);
      chain = creds.chain;
      pinned = creds.pinned;
      return ownerView(chain, pinned, keyRef, Boolean(pki.masa));
    },
  };
}

/**
 * The credentials in a PKI directory (the `pki init` layout, or real certificates under
 * the same names), as `pki import` and a PostgreSQL replica's first start store them:
 * `server.crt`/`server.key` and `manufacturer-ca.crt` are required; `owner.crt`/`owner.key`
 * with `owner-ca.crt`, and `masa.crt`/`masa.key`, when present (each pair whole).
 */
export async function readPkiDir(dir: string): Promise<CredentialsInput> {
  const text = async (name: string) => (await optional(join(dir, name)))?.toString('utf8');
  const need = async (name: string) => {
    const t = await text(name);
    if (t === undefined) throw new CliError('SERVE_ERR_NO_PKI', `${dir}: ${name} is missing`);
    return t;
  };
  const pair = async (crt: string, key: string) => {
    const [c, k] = [await text(crt), await text(key)];
    if ((c === undefined) !== (k === undefined))
      throw new CliError(
        'SERVE_ERR_NO_PKI',
        `${dir}: ${c === undefined ? crt : key} is missing (${c === undefined ? key : crt} is there)`,
      );
    return c !== undefined && k !== undefined ? { certificates: c, key: k } : undefined;
  };
  const owner = await pair('owner.crt', 'owner.key');
  return {
    tls: { certificates: await need('server.crt'), key: await need('server.key') },
    manufacturer: await need('manufacturer-ca.crt'),
    owner: owner ? { ...owner, pinned: await need('owner-ca.crt') } : undefined,
    masa: await pair('masa.crt', 'masa.key'),
  };
}

/** What `<pkiDir>/revoked-idevids.txt` lists. */
export interface RevokedFile {
  path: string;
  /** Fingerprints in the one stored shape (colon hex, lowercase), in file order, without repeats. */
  fingerprints: string[];
  /** Lines that are not a SHA-256 fingerprint (1-based line numbers), skipped. */
  bad: Array<{ line: number; text: string }>;
}

/**
 * Reads `<pkiDir>/revoked-idevids.txt`: one SHA-256 fingerprint per line, `#` starts a
 * comment. A line may be in either case, and with or without colons (`openssl x509
 * -fingerprint -sha256` prints upper case); it is stored as colon hex, lowercase. A missing
 * file lists nothing.
 */
export async function readRevokedFile(pkiDir: string): Promise<RevokedFile> {
  const path = join(pkiDir, 'revoked-idevids.txt');
  const text = (await optional(path))?.toString('utf8') ?? '';
  const fingerprints = new Set<string>();
  const bad: RevokedFile['bad'] = [];
  text.split('\n').forEach((raw, i) => {
    const t = raw.replace(/#.*/, '').trim().toLowerCase();
    if (!t) return;
    const fp = normalizeFingerprint(t);
    if (fp) fingerprints.add(fp);
    else bad.push({ line: i + 1, text: t.slice(0, 120) });
  });
  return { path, fingerprints: [...fingerprints], bad };
}

/**
 * A SHA-256 fingerprint as colon hex, lowercase, from the forms people paste: either case,
 * with colons or without (`SHA256 Fingerprint=` prefix of openssl allowed); else undefined.
 */
export function normalizeFingerprint(input: string): string | undefined {
  const t = input
    .trim()
    .replace(/^sha256 fingerprint=/i, '')
    .toLowerCase();
  if (isFingerprint(t)) return t;
  return /^[0-9a-f]{64}$/.test(t) ? t.replace(/(..)(?!$)/g, '$1:') : undefined;
}
