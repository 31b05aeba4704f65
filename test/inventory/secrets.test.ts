/**
 * Secrets at rest: SecretBox (AES-256-GCM with associated data), the key's
 * text forms, the key file (made 0600, refused when others can read it), and
 * how the service configuration picks the key.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateSecretKeyFile, parseSecretKey, SecretBox } from '../../bootstrap/index.js';
import { loadConfig } from '../../cli/config.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dpu-ztp-secrets-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('opens what it sealed, with the same associated data, and seals the same text differently each time', () => {
    const a = box.seal('p@ss wörd', 'bmc:one');
    const b = box.seal('p@ss wörd', 'bmc:one');
    expect(a.equals(b)).toBe(false);
    expect(box.openString(a, 'bmc:one')).toBe('p@ss wörd');
    expect(box.openString(b, 'bmc:one')).toBe('p@ss wörd');
    const bytes = randomBytes(100);
    expect(box.open(box.seal(bytes, 'x'), 'x').equals(bytes)).toBe(true);
    expect(box.openString(box.seal('', 'x'), 'x')).toBe('');
  });

  it('refuses other associated data, another key, any flipped byte and a short value', () => {
    const sealed = box.seal('secret', 'bmc:one');
    const refused = { code: 'SECRET_ERR_OPEN_FAILED' };
    expect(() => box.open(sealed, 'bmc:two')).toThrow(expect.objectContaining(refused));
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'bmc:one')).toThrow(
      expect.objectContaining(refused),
    );
    // Every byte: nonce, ciphertext and tag are all authenticated.
    for (let i = 0; i < sealed.length; i++) {
      const bad = Buffer.from(sealed);
      bad[i] = (bad[i] as number) ^ 0x01;
      expect(() => box.open(bad, 'bmc:one'), `byte ${i}`).toThrow(expect.objectContaining(refused));
    }
    expect(() => box.open(sealed.subarray(0, 27), 'bmc:one')).toThrow(expect.objectContaining(refused));
    expect(() => box.open(Buffer.concat([sealed, Buffer.from([0])]), 'bmc:one')).toThrow(
      expect.objectContaining(refused),
    );
  });

  it('needs a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(
      expect.objectContaining({ code: 'SECRET_ERR_BAD_KEY' }),
    );
  });
});

describe('secret key text', () => {
  const key = randomBytes(32);

  it('reads 64 hex digits and base64 (with or without padding, surrounding whitespace ignored)', () => {
    expect(parseSecretKey(key.toString('hex'), 'k').equals(key)).toBe(true);
    expect(parseSecretKey(`  ${key.toString('hex').toUpperCase()}\n`, 'k').equals(key)).toBe(true);
    expect(parseSecretKey(key.toString('base64'), 'k').equals(key)).toBe(true);
    expect(parseSecretKey(key.toString('base64').replace(/=$/, ''), 'k').equals(key)).toBe(true);
  });

  it.each([
    ['63 hex digits', key.toString('hex').slice(1)],
    ['65 hex digits', `${key.toString('hex')}0`],
    ['base64 of 31 bytes', randomBytes(31).toString('base64')],
    ['base64 of 33 bytes', randomBytes(33).toString('base64')],
    ['a passphrase', 'correct horse battery staple'],
    ['empty', ''],
  ])('refuses %s with one line naming where it came from, never the value', (_n, text) => {
    let err: (Error & { code?: string }) | undefined;
    try {
      parseSecretKey(text, 'DPU_ZTP_SECRET_KEY');
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).toBe('SECRET_ERR_BAD_KEY');
    expect(err?.message).toBe('DPU_ZTP_SECRET_KEY: expected 64 hex digits or base64 of 32 bytes');
  });
});

describe('secret key file', () => {
  it('is created with mode 0600 (in a new directory) and read back the same', () => {
    const path = join(tempDir(), 'sub', 'secret.key');
    const made = loadOrCreateSecretKeyFile(path);
    expect(made.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toBe(`${made.key.toString('hex')}\n`);
    const again = loadOrCreateSecretKeyFile(path);
    expect(again.created).toBe(false);
    expect(again.key.equals(made.key)).toBe(true);
  });

  it('refuses a file others can read, and one that holds no key', () => {
    const path = join(tempDir(), 'secret.key');
    writeFileSync(path, randomBytes(32).toString('base64'), { mode: 0o644 });
    chmodSync(path, 0o644);
    expect(() => loadOrCreateSecretKeyFile(path)).toThrow(
      expect.objectContaining({
        code: 'SECRET_ERR_UNREADABLE',
        message: expect.stringContaining('chmod 600'),
      }),
    );
    chmodSync(path, 0o640);
    expect(() => loadOrCreateSecretKeyFile(path)).toThrow(
      expect.objectContaining({ code: 'SECRET_ERR_UNREADABLE' }),
    );
    writeFileSync(path, 'not a key\n');
    chmodSync(path, 0o600);
    expect(() => loadOrCreateSecretKeyFile(path)).toThrow(
      expect.objectContaining({ code: 'SECRET_ERR_BAD_KEY', message: expect.stringContaining(path) }),
    );
  });
});

describe('secret key configuration', () => {
  it('defaults to <data-dir>/secret.key, takes --secret-key-file or DPU_ZTP_SECRET_KEY_FILE', () => {
    const dir = tempDir();
    expect(loadConfig({ dataDir: dir }, {}).secretKeyFile).toBe(join(dir, 'secret.key'));
    expect(loadConfig({ dataDir: dir, secretKeyFile: '/k/a' }, {}).secretKeyFile).toBe('/k/a');
    expect(loadConfig({ dataDir: dir }, { DPU_ZTP_SECRET_KEY_FILE: '/k/b' }).secretKeyFile).toBe('/k/b');
  });

  it('takes the key itself from DPU_ZTP_SECRET_KEY, never showing it when the config is printed', () => {
    const key = randomBytes(32);
    const config = loadConfig({ dataDir: tempDir() }, { DPU_ZTP_SECRET_KEY: key.toString('hex') });
    expect(config.secretKey?.equals(key)).toBe(true);
    expect(JSON.stringify(config)).not.toContain(key.toString('hex'));
    expect(Object.keys(config)).not.toContain('secretKey');
  });

  it('refuses a bad DPU_ZTP_SECRET_KEY, and a key together with a key file', () => {
    expect(() => loadConfig({}, { DPU_ZTP_SECRET_KEY: 'abc' })).toThrow(
      expect.objectContaining({
        code: 'SECRET_ERR_BAD_KEY',
        message: expect.stringMatching(/^DPU_ZTP_SECRET_KEY: /),
      }),
    );
    const hex = randomBytes(32).toString('hex');
    expect(() => loadConfig({ secretKeyFile: '/k' }, { DPU_ZTP_SECRET_KEY: hex })).toThrow(
      expect.objectContaining({ code: 'CONFIG_ERR_INVALID', message: expect.stringContaining('not both') }),
    );
  });
});
