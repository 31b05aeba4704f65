/**
 * Secrets at rest (BMC passwords, and later owner/MASA keys): AES-256-GCM under
 * one 32-byte key that every replica shares (`DPU_ZTP_SECRET_KEY`, or a key file,
 * by default `<data-dir>/secret.key` made with mode 0600 on first start).
 * Each sealed value binds associated data (e.g. the BMC id), so a sealed
 * password copied onto another row does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const NONCE = 12;
const TAG = 16;

/** Why a secret key could not be had or a sealed value not opened. */
export class SecretKeyError extends Error {
  constructor(
    readonly code: 'SECRET_ERR_BAD_KEY' | 'SECRET_ERR_UNREADABLE' | 'SECRET_ERR_OPEN_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'SecretKeyError';
  }
}

/** Seals and opens small secrets with AES-256-GCM under one key. */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.length !== 32)
      throw new SecretKeyError('SECRET_ERR_BAD_KEY', `secret key must be 32 bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
  }

  /** nonce || ciphertext || tag; `aad` (e.g. the row's id) must be given again to open it. */
  seal(plaintext: string | Uint8Array, aad: string): Buffer {
    const nonce = randomBytes(NONCE);
    const c = createCipheriv('aes-256-gcm', this.#key, nonce);
    c.setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([
      c.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext),
      c.final(),
    ]);
    return Buffer.concat([nonce, body, c.getAuthTag()]);
  }

  /** Opens what {@link seal} made with the same key and `aad`; throws SECRET_ERR_OPEN_FAILED otherwise. */
  open(sealed: Uint8Array, aad: string): Buffer {
    if (sealed.length < NONCE + TAG)
      throw new SecretKeyError('SECRET_ERR_OPEN_FAILED', 'sealed value is too short');
    const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    try {
      const d = createDecipheriv('aes-256-gcm', this.#key, b.subarray(0, NONCE));
      d.setAAD(Buffer.from(aad, 'utf8'));
      d.setAuthTag(b.subarray(b.length - TAG));
      return Buffer.concat([d.update(b.subarray(NONCE, b.length - TAG)), d.final()]);
    } catch {
      throw new SecretKeyError(
        'SECRET_ERR_OPEN_FAILED',
        'a stored secret could not be decrypted: the secret key differs from the one it was sealed with',
      );
    }
  }

  /** Opens a sealed UTF-8 string. */
  openString(sealed: Uint8Array, aad: string): string {
    return this.open(sealed, aad).toString('utf8');
  }
}

/**
 * Reads a secret key given as text: 64 hex digits or base64 of 32 bytes
 * (surrounding whitespace ignored).
 */
export function parseSecretKey(text: string, where: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t)
    ? Buffer.from(t, 'hex')
    : /^[A-Za-z0-9+/]{43}=?$/.test(t)
      ? Buffer.from(t, 'base64')
      : undefined;
  if (key?.length !== 32)
    throw new SecretKeyError('SECRET_ERR_BAD_KEY', `${where}: expected 64 hex digits or base64 of 32 bytes`);
  return key;
}

/**
 * The key in `path`, created (32 random bytes as hex, mode 0600) when the file does
 * not exist. Refuses a key file others can read.
 */
export function loadOrCreateSecretKeyFile(path: string): { key: Buffer; created: boolean } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new SecretKeyError(
        'SECRET_ERR_UNREADABLE',
        `cannot read secret key file ${path}: ${(err as Error).message}`,
      );
    mkdirSync(dirname(path), { recursive: true });
    const key = randomBytes(32);
    writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
    return { key, created: true };
  }
  if ((statSync(path).mode & 0o077) !== 0)
    throw new SecretKeyError(
      'SECRET_ERR_UNREADABLE',
      `secret key file ${path} is readable by others (chmod 600 it)`,
    );
  return { key: parseSecretKey(text, path), created: false };
}
