/**
 * GET/PUT /api/v1/owner with the file-backed owner store `serve` uses:
 * every bad upload is a 400 with a reason and changes nothing on disk.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileOwnerStore, loadServerPki } from '../../cli/commands/serve-pki.js';
import {
  createCertificate,
  createLabPki,
  decodeArtifact,
  generateKey,
  type Signer,
  signerFromPrivateKey,
  toPem,
} from '../../pki/index.js';
import { backend } from '../helpers/db.js';
import { type TestApi, testApi } from '../helpers/api.js';

const dir = mkdtempSync(join(tmpdir(), 'dpu-ztp-owner-'));
let api: TestApi;
const swaps: Signer[] = [];
let ownerCa: Signer;
let newKey: { privateKeyPem: string; publicKey: Uint8Array };
let newCert: string;

beforeAll(async () => {
  const lab = await createLabPki({ now: new Date() });
  for (const f of lab.files) {
    mkdirSync(join(dir, f.path, '..'), { recursive: true });
    writeFileSync(join(dir, f.path), f.data, { mode: f.mode });
  }
  const { pki } = await loadServerPki(dir, pino({ level: 'silent' }));
  api = await testApi({ owner: fileOwnerStore(dir, pki, (s) => swaps.push(s)) });
  ownerCa = signerFromPrivateKey(readFileSync(join(dir, 'owner-ca.key'), 'utf8'), {
    certificates: [decodeArtifact(readFileSync(join(dir, 'owner-ca.crt'), 'utf8'))],
  });
  newKey = await generateKey('ec-p256');
  const now = Date.now();
  newCert = toPem(
    await createCertificate({
      profile: 'signing',
      subject: { commonName: 'New Owner' },
      publicKey: newKey.publicKey,
      issuer: ownerCa,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
    }),
    'CERTIFICATE',
  );
});

afterAll(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe(`owner API (${backend})`, () => {
  it('shows the owner certificate and where its key is, never the key', async () => {
    const r = await api.req({ method: 'GET', url: '/api/v1/owner', as: 'viewer' });
    expect(r.statusCode).toBe(200);
    const v = r.json();
    expect(v.subject).toMatch(/Lab Owner/);
    expect(v.keyReference).toBe(`file:${join(dir, 'owner.key')}`);
    expect(v.pinnedDomainCertSubject).toMatch(/Lab Owner CA/);
    expect(v.labMasa).toBe(true);
    expect(r.body).not.toMatch(/PRIVATE KEY/);
  });

  it('refuses bad uploads with a reason and leaves the files alone', async () => {
    const before = {
      crt: readFileSync(join(dir, 'owner.crt'), 'utf8'),
      key: readFileSync(join(dir, 'owner.key'), 'utf8'),
    };
    const otherCa = await createLabPki({ now: new Date() });
    const foreign = otherCa.files.find((f) => f.path === 'owner.crt')?.data as string;
    const foreignKey = otherCa.files.find((f) => f.path === 'owner.key')?.data as string;
    const cases: Array<[string, Record<string, unknown>, number, RegExp]> = [
      [
        'garbage chain',
        { certificateChain: 'not a certificate at all, sorry', privateKey: newKey.privateKeyPem },
        400,
        /certificateChain/,
      ],
      [
        'key of another certificate',
        { certificateChain: newCert, privateKey: before.key },
        400,
        /does not belong/,
      ],
      [
        'garbage key',
        {
          certificateChain: newCert,
          privateKey: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
        },
        400,
        /privateKey/,
      ],
      [
        'chain to another owner CA',
        { certificateChain: foreign, privateKey: foreignKey },
        400,
        /does not chain/,
      ],
      [
        'unknown field',
        { certificateChain: newCert, privateKey: newKey.privateKeyPem, colour: 'red' },
        400,
        /must NOT have additional properties/,
      ],
      ['wrong type', { certificateChain: 42, privateKey: newKey.privateKeyPem }, 400, /string/],
    ];
    for (const [what, payload, status, detail] of cases) {
      const r = await api.req({ method: 'PUT', url: '/api/v1/owner', as: 'admin', payload });
      expect(r.statusCode, what).toBe(status);
      expect(r.json().detail, what).toMatch(detail);
    }
    expect(readFileSync(join(dir, 'owner.crt'), 'utf8')).toBe(before.crt);
    expect(readFileSync(join(dir, 'owner.key'), 'utf8')).toBe(before.key);
    expect(swaps).toHaveLength(0);
    expect(
      (
        await api.req({
          method: 'PUT',
          url: '/api/v1/owner',
          as: 'operator',
          payload: { certificateChain: newCert, privateKey: newKey.privateKeyPem },
        })
      ).statusCode,
    ).toBe(403);
  });

  it('replaces the owner certificate and swaps it into the running service', async () => {
    const r = await api.req({
      method: 'PUT',
      url: '/api/v1/owner',
      as: 'admin',
      payload: { certificateChain: newCert, privateKey: newKey.privateKeyPem },
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().subject).toMatch(/New Owner/);
    expect(swaps).toHaveLength(1);
    expect(readFileSync(join(dir, 'owner.key'), 'utf8')).toBe(newKey.privateKeyPem);
    const audit = await api.t.db
      .selectFrom('audit_log')
      .select(['action', 'actor'])
      .where('action', '=', 'owner.replace')
      .execute();
    expect(audit).toEqual([{ action: 'owner.replace', actor: 'test-admin' }]);
  });
});
