/**
 * The credentials replicas share (bootstrap/credentials.ts) on a real database
 * with the real migrations, and `dpu-ztp pki import` on top of it: keys sealed
 * (never stored in the clear, bound to their role), imports idempotent, a key
 * that is not its certificate's refused with nothing written, other material
 * refused without --replace, and a change seen by a watcher as one new object.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Credentials,
  CredentialStore,
  type CredentialsInput,
  checkOwnerUpload,
  SecretBox,
} from '../../bootstrap/index.js';
import { readPkiDir } from '../../cli/commands/serve-pki.js';
import { LocalNotifier } from '../../db/index.js';
import { createLabPki, toPem } from '../../pki/index.js';
import { createPostgresDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.js';
import { childEnv, runCli } from '../helpers/serve.js';

const root = mkdtempSync(join(tmpdir(), 'dpu-ztp-creds-'));
const KEY = Buffer.alloc(32, 7);
let db: TestDatabase;
let lab: CredentialsInput;
let other: CredentialsInput;

async function labDir(name: string): Promise<string> {
  const dir = join(root, name);
  for (const f of (await createLabPki({ now: new Date() })).files) {
    mkdirSync(join(dir, f.path, '..'), { recursive: true });
    writeFileSync(join(dir, f.path), f.data, { mode: f.mode });
  }
  return dir;
}

beforeAll(async () => {
  db = await migratedDatabase();
  lab = await readPkiDir(await labDir('lab'));
  other = await readPkiDir(await labDir('other'));
}, 120_000);
afterAll(async () => {
  await db?.drop();
});

describe('CredentialStore', () => {
  it('imports once, seals every key bound to its role, and loads one frozen set', async () => {
    const store = new CredentialStore({ db: db.db, box: new SecretBox(KEY) });
    expect(await store.present()).toBe(false);
    const first = await store.import(lab);
    expect(first.written.sort()).toEqual(['manufacturer', 'masa', 'owner', 'tls']);
    expect(await store.import(lab)).toEqual({
      written: [],
      unchanged: ['tls', 'manufacturer', 'owner', 'masa'],
    });
    const rows = await db.db.selectFrom('credentials').selectAll().execute();
    for (const r of rows) {
      if (r.key_sealed) expect(Buffer.from(r.key_sealed).toString('latin1')).not.toMatch(/PRIVATE KEY/);
      expect(Number(r.generation)).toBe(1);
    }
    // A sealed key copied onto another role's row does not open.
    const masa = rows.find((r) => r.role === 'masa');
    await db.db
      .updateTable('credentials')
      .set({ key_sealed: masa?.key_sealed })
      .where('role', '=', 'owner')
      .execute();
    await expect(store.load()).rejects.toMatchObject({ code: 'SECRET_ERR_OPEN_FAILED' });
    await db.db
      .updateTable('credentials')
      .set({ key_sealed: rows.find((r) => r.role === 'owner')?.key_sealed })
      .where('role', '=', 'owner')
      .execute();
    const c = await store.load();
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.owner?.certificates).toHaveLength(1);
    expect(c.masa).toBeDefined();
    expect(c.manufacturerAnchors).toHaveLength(1);
    expect(c.tls.key).toMatch(/BEGIN PRIVATE KEY/);
    // Another key opens nothing.
    await expect(
      new CredentialStore({ db: db.db, box: new SecretBox(Buffer.alloc(32, 8)) }).load(),
    ).rejects.toMatchObject({
      code: 'SECRET_ERR_OPEN_FAILED',
    });
  });

  it('refuses a key that is not its certificate, and other material without replace; writes nothing then', async () => {
    const store = new CredentialStore({ db: db.db, box: new SecretBox(KEY) });
    const before = await store.stamp();
    const owner = lab.owner as NonNullable<CredentialsInput['owner']>;
    const mismatch = { ...lab, owner: { ...owner, key: (other.owner as typeof owner).key } };
    await expect(store.import(mismatch, { replace: true })).rejects.toMatchObject({
      code: 'CRED_ERR_KEY_MISMATCH',
      message: expect.stringMatching(/owner: the private key does not belong to the certificate/),
    });
    const tls = {
      ...lab,
      tls: { certificates: lab.tls?.certificates as string, key: other.tls?.key as string },
    };
    await expect(store.import(tls)).rejects.toMatchObject({ code: 'CRED_ERR_KEY_MISMATCH' });
    // An owner certificate that does not chain to the CA it is to be pinned by.
    const unpinned = { ...lab, owner: { ...owner, pinned: (other.owner as typeof owner).pinned } };
    await expect(store.import(unpinned, { replace: true })).rejects.toMatchObject({
      code: 'CRED_ERR_INVALID',
    });
    await expect(store.import(other)).rejects.toMatchObject({
      code: 'CRED_ERR_EXISTS',
      message: expect.stringMatching(/--replace/),
    });
    expect(await store.stamp()).toBe(before);
  });

  it('a replacement reaches a watcher as one new credentials object (NOTIFY, here in process)', async () => {
    const notifier = new LocalNotifier();
    const store = new CredentialStore({ db: db.db, box: new SecretBox(KEY), notifier });
    const current = await store.load();
    const seen: Credentials[] = [];
    const stop = await store.watch(current, (c) => seen.push(c), { recheckMs: 60_000 });
    try {
      const o = other.owner as NonNullable<CredentialsInput['owner']>;
      // The other lab's owner, pinned by its own CA: checked like PUT /api/v1/owner does.
      const creds = checkOwnerUpload(
        { certificateChain: o.certificates, privateKey: o.key, pinnedDomainCert: o.pinned },
        current.pinnedDomainCert,
        new Date(),
      );
      await store.replaceOwner(creds);
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(seen).toHaveLength(1);
      const next = seen[0] as Credentials;
      expect(next).not.toBe(current);
      expect(toPem(next.owner?.certificates[0] as Uint8Array, 'CERTIFICATE')).toBe(
        toPem(creds.chain[0] as Uint8Array, 'CERTIFICATE'),
      );
      expect(next.tlsGeneration).toBe(current.tlsGeneration);
      expect(next.stamp).not.toBe(current.stamp);
      // The old object is untouched: a request holding it finishes with the old owner.
      expect(current.owner?.certificates[0]).not.toEqual(next.owner?.certificates[0]);
    } finally {
      stop();
      await notifier.close();
    }
  });
});

describe('dpu-ztp pki import', { timeout: 300_000 }, () => {
  it('refuses the embedded database (serve reads --pki-dir there)', () => {
    const r = runCli(['pki', 'import', join(root, 'lab'), '--data-dir', join(root, 'data')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: CLI_ERR_USAGE: .*DATABASE_URL/);
  });

  it.skipIf(!process.env.DATABASE_URL)(
    'imports once on PostgreSQL; a mismatched key is one clear line',
    async () => {
      const pg = await createPostgresDatabase();
      try {
        const env = childEnv({ DATABASE_URL: pg.url, DPU_ZTP_SECRET_KEY: KEY.toString('hex') });
        const first = runCli(['pki', 'import', join(root, 'lab')], env, 120_000);
        expect(first.code, first.stderr).toBe(0);
        expect(first.stdout).toMatch(/^imported tls, manufacturer, owner, masa/);
        const again = runCli(['pki', 'import', join(root, 'lab')], env, 120_000);
        expect(again.stdout).toMatch(/^nothing to do/);
        const bad = join(root, 'bad');
        for (const f of (await createLabPki({ now: new Date() })).files) {
          mkdirSync(join(bad, f.path, '..'), { recursive: true });
          writeFileSync(join(bad, f.path), f.data, { mode: f.mode });
        }
        writeFileSync(join(bad, 'server.key'), lab.tls?.key as string, { mode: 0o600 });
        const r = runCli(['pki', 'import', bad, '--replace'], env, 120_000);
        expect(r.code).toBe(1);
        expect(r.stderr.trim()).toMatch(/^error: CLI_ERR_PKI_IMPORT: tls: the private key does not belong/);
        const clash = runCli(['pki', 'import', join(root, 'other')], env, 120_000);
        expect(clash.stderr).toMatch(/^error: CLI_ERR_EXISTS: /);
        expect(runCli(['pki', 'import', join(root, 'other'), '--replace'], env, 120_000).stdout).toMatch(
          /^imported /,
        );
      } finally {
        await pg.drop();
      }
    },
  );
});
