/**
 * The RFC 8572 §5 state machine through its ports, offline: directory sources
 * (the removable-media path) with artifacts from an in-memory lab PKI, fake
 * trusted sources and a recording executor. Covers the §5.3 trust table,
 * redirects (anchors kept or discarded, the 10-hop cap), progress only to
 * trusted servers (minimal vs verbose), the backoff loop, state and the
 * SZTP-enabled flag.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConveyedInformation,
  type OnboardingInformation,
  createLabPki,
  createOwnerCertificateArtifact,
  createUnsignedConveyedInformation,
  decodeArtifact,
  decodeArtifacts,
  type LabPkiFile,
  signConveyedInformation,
  signerFromPrivateKey,
} from '../../pki/index.js';
import {
  type BootstrappingData,
  DirectorySource,
  type Executor,
  MAX_REDIRECT_DEPTH,
  PkiVerifier,
  Procedure,
  type ProcedureOptions,
  type ProgressReport,
  type RedirectTarget,
  runAgent,
  type Source,
  StateStore,
  setEnabled,
  silentLog,
} from '../../sztp-client/index.js';

const SN = 'UNIT-1';
const root = mkdtempSync(join(tmpdir(), 'sztp-procedure-'));
let files: Map<string, LabPkiFile['data']>;
let ownerArtifact: Uint8Array;
let voucher: Uint8Array;
let manufacturer: Uint8Array;
let tlsCaDer: Uint8Array;
let n = 0;

const text = (p: string) => files.get(p) as string;
const ONBOARD: ConveyedInformation = {
  'ietf-sztp-conveyed-info:onboarding-information': {
    'configuration-handling': 'merge',
    configuration: Buffer.from('hostname unit\n').toString('base64'),
  },
};

async function signed(info: ConveyedInformation): Promise<BootstrappingData> {
  const signer = signerFromPrivateKey(text('owner.key'), {
    certificates: [decodeArtifact(text('owner.crt'))],
  });
  return {
    conveyedInformation: await signConveyedInformation({ information: info, signer }),
    ownerCertificate: ownerArtifact,
    ownershipVoucher: voucher,
  };
}
const unsigned = (info: ConveyedInformation): BootstrappingData => ({
  conveyedInformation: createUnsignedConveyedInformation(info, 'json'),
});

/** Writes bootstrapping data as a removable-media directory. */
function dir(data: BootstrappingData): string {
  const d = join(root, `media-${++n}`);
  mkdirSync(d);
  writeFileSync(join(d, 'conveyed-information.cms'), data.conveyedInformation);
  if (data.ownerCertificate) writeFileSync(join(d, 'owner-certificate.cms'), data.ownerCertificate);
  if (data.ownershipVoucher)
    writeFileSync(join(d, 'ownership-voucher.vcj'), Buffer.from(data.ownershipVoucher).toString('base64'));
  return d;
}

/** A fake bootstrap server: trusted or not, recording reports. */
function server(
  name: string,
  data: BootstrappingData,
  trusted: boolean,
  reports: ProgressReport[] = [],
): Source {
  return {
    name,
    async fetch() {
      return {
        data,
        serverTrusted: trusted,
        ...(trusted ? { reporter: { report: async (p: ProgressReport) => void reports.push(p) } } : {}),
      };
    },
  };
}

class RecordingExecutor implements Executor {
  runs: OnboardingInformation[] = [];
  constructor(private readonly fail = false) {}
  async onboard(info: OnboardingInformation, progress: (t: never, m: string) => Promise<void>) {
    this.runs.push(info);
    const p = progress as (t: string, m: string) => Promise<void>;
    await p('config-initiated', 'writing');
    if (this.fail) {
      await p('config-error', 'disk full');
      throw Object.assign(new Error('disk full'), { code: 'SZTP_CLIENT_ERR_CONFIG' });
    }
    await p('config-complete', 'written');
    return 'complete' as const;
  }
}

function procedure(sources: Source[] | (() => Promise<Source[]>), over: Partial<ProcedureOptions> = {}) {
  const executor = (over.executor as RecordingExecutor | undefined) ?? new RecordingExecutor();
  const state = new StateStore(join(root, `state-${++n}`));
  const p = new Procedure({
    sources: typeof sources === 'function' ? sources : async () => sources,
    redirectSource: () => {
      throw new Error('no redirects expected');
    },
    verifier: new PkiVerifier({
      manufacturerTrustAnchors: [manufacturer],
      serialNumber: SN,
      now: () => new Date(),
    }),
    executor,
    request: { signedDataPreferred: true },
    sendNonce: false,
    sshHostKeys: async () => [{ algorithm: 'ssh-ed25519', keyData: 'AAAA' }],
    once: true,
    backoff: { initialMs: 1, maxMs: 2 },
    state,
    log: silentLog,
    ...over,
  });
  return { p, executor, state };
}

beforeAll(async () => {
  const pki = await createLabPki({ now: new Date(), devices: [SN] });
  files = new Map(pki.files.map((f) => [f.path, f.data]));
  ownerArtifact = createOwnerCertificateArtifact(decodeArtifacts(text('owner.crt')));
  voucher = files.get(`devices/${SN}/ownership-voucher.cms`) as Uint8Array;
  manufacturer = decodeArtifact(text('masa-ca.crt'));
  tlsCaDer = decodeArtifact(text('tls-ca.crt'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('RFC 8572 §5.3 trust table, offline (directory source)', () => {
  it('acts on signed onboarding information from an untrusted directory, and disables SZTP after', async () => {
    const { p, executor, state } = procedure([new DirectorySource(dir(await signed(ONBOARD)))]);
    const r = await p.run();
    expect(r).toMatchObject({ outcome: 'bootstrapped' });
    expect(executor.runs).toHaveLength(1);
    const s = await new StateStore(state.dir).load();
    expect(s).toMatchObject({ status: 'bootstrapped', enabled: false, disabledReason: 'bootstrapped' });
    expect(s.lastAttempt).toMatchObject({ outcome: 'bootstrapped', serverTrusted: false, signed: true });
  });

  it('refuses unsigned onboarding information from an untrusted source', async () => {
    const { p, executor, state } = procedure([new DirectorySource(dir(unsigned(ONBOARD)))]);
    const r = await p.run();
    expect(r).toMatchObject({ outcome: 'gave-up', error: { code: 'SZTP_CLIENT_ERR_UNTRUSTED_UNSIGNED' } });
    expect(executor.runs).toHaveLength(0);
    const s = await new StateStore(state.dir).load();
    expect(s).toMatchObject({ status: 'failed', enabled: true, retriesLeft: 0 });
    expect(s.lastError).toMatchObject({ code: 'SZTP_CLIENT_ERR_UNTRUSTED_UNSIGNED', step: 'verify' });
  });

  it('refuses signed data for another serial number and tampered data, before any action', async () => {
    const good = await signed(ONBOARD);
    const tampered = { ...good, conveyedInformation: Uint8Array.from(good.conveyedInformation) };
    const at = Buffer.from(tampered.conveyedInformation).indexOf(Buffer.from('merge'));
    (tampered.conveyedInformation as Uint8Array)[at] = 'M'.charCodeAt(0);
    const { p, executor } = procedure([new DirectorySource(dir(tampered))]);
    expect(await p.run()).toMatchObject({ error: { code: 'SZTP_CLIENT_ERR_VERIFICATION' } });
    const other = procedure([new DirectorySource(dir(good))], {
      verifier: new PkiVerifier({
        manufacturerTrustAnchors: [manufacturer],
        serialNumber: 'OTHER',
        now: () => new Date(),
      }),
    });
    const r = await other.p.run();
    expect(r).toMatchObject({ error: { code: 'SZTP_CLIENT_ERR_VERIFICATION' } });
    expect((r as { error: { message: string } }).error.message).toMatch(/^PKI_ERR_SERIAL_MISMATCH/);
    expect(executor.runs).toHaveLength(0);
    expect((other.executor as RecordingExecutor).runs).toHaveLength(0);
  });

  it('a trusted server may send unsigned onboarding information; it gets every report at verbose level', async () => {
    const reports: ProgressReport[] = [];
    const { p, executor } = procedure([
      server('https://trusted', { ...unsigned(ONBOARD), reportingLevel: 'verbose' }, true, reports),
    ]);
    expect(await p.run()).toMatchObject({ outcome: 'bootstrapped', source: 'https://trusted' });
    expect(executor.runs).toHaveLength(1);
    expect(reports.map((r) => r.type)).toEqual([
      'bootstrap-initiated',
      'parsing-initiated',
      'parsing-complete',
      'config-initiated',
      'config-complete',
      'bootstrap-complete',
    ]);
    expect(reports.at(-1)?.sshHostKeys).toEqual([{ algorithm: 'ssh-ed25519', keyData: 'AAAA' }]);
  });

  it('at minimal reporting level only bootstrap-initiated, errors and the terminal report go out', async () => {
    const reports: ProgressReport[] = [];
    const ok = procedure([server('https://t', unsigned(ONBOARD), true, reports)]);
    await ok.p.run();
    expect(reports.map((r) => r.type)).toEqual(['bootstrap-initiated', 'bootstrap-complete']);
    const failing: ProgressReport[] = [];
    const bad = procedure([server('https://t', unsigned(ONBOARD), true, failing)], {
      executor: new RecordingExecutor(true),
    });
    expect(await bad.p.run()).toMatchObject({ error: { code: 'SZTP_CLIENT_ERR_CONFIG' } });
    expect(failing.map((r) => r.type)).toEqual(['bootstrap-initiated', 'config-error']);
  });

  it('a trusted server is told parsing-error when its signed data fails verification', async () => {
    const reports: ProgressReport[] = [];
    const good = await signed(ONBOARD);
    const { p } = procedure([
      server('https://t', { ...good, ownershipVoucher: good.conveyedInformation }, true, reports),
    ]);
    expect(await p.run()).toMatchObject({ error: { code: 'SZTP_CLIENT_ERR_VERIFICATION' } });
    expect(reports.map((r) => r.type)).toEqual(['parsing-error']);
    expect(reports[0]?.message).toMatch(/^SZTP_CLIENT_ERR_VERIFICATION: PKI_ERR_/);
  });
});

describe('redirects (RFC 8572 §5.5)', () => {
  const redirect = (anchor?: Uint8Array): ConveyedInformation => ({
    'ietf-sztp-conveyed-info:redirect-information': {
      'bootstrap-server': [
        {
          address: 'next.example',
          port: 8443,
          ...(anchor
            ? { 'trust-anchor': Buffer.from(createOwnerCertificateArtifact([anchor])).toString('base64') }
            : {}),
        },
      ],
    },
  });

  it('keeps the trust anchor of a signed redirect and discards that of an unsigned one from an untrusted source', async () => {
    for (const [data, kept] of [
      [await signed(redirect(tlsCaDer)), true],
      [unsigned(redirect(tlsCaDer)), false],
    ] as const) {
      const targets: RedirectTarget[] = [];
      const reports: ProgressReport[] = [];
      const { p } = procedure([new DirectorySource(dir(data))], {
        redirectSource: (t) => {
          targets.push(t);
          return server('https://next.example:8443', unsigned(ONBOARD), t.trustAnchors.length > 0, reports);
        },
      });
      const r = await p.run();
      expect(targets).toHaveLength(1);
      expect(targets[0]).toMatchObject({ address: 'next.example', port: 8443 });
      expect(targets[0]?.trustAnchors.length).toBe(kept ? 1 : 0);
      // Trusted through the learned anchor: onboarding proceeds; blind: unsigned onboarding is refused.
      expect(r.outcome).toBe(kept ? 'bootstrapped' : 'gave-up');
      expect(reports.length > 0).toBe(kept);
    }
  });

  it(`stops after ${MAX_REDIRECT_DEPTH} hops`, async () => {
    let hops = 0;
    const loop = unsigned(redirect());
    const { p } = procedure([server('https://first', loop, true)], {
      redirectSource: () => {
        hops++;
        return server(`https://hop-${hops}`, loop, true);
      },
    });
    expect(await p.run()).toMatchObject({ error: { code: 'SZTP_CLIENT_ERR_REDIRECT_LOOP' } });
    expect(hops).toBe(MAX_REDIRECT_DEPTH);
  });
});

describe('the loop', () => {
  it('moves on to the next source on failure and loops with backoff until one bootstraps', async () => {
    let pass = 0;
    const broken: Source = {
      name: 'https://down',
      fetch: async () => {
        throw Object.assign(new Error('connection refused'), { code: 'SZTP_CLIENT_ERR_CONNECT' });
      },
    };
    const { p, state } = procedure(
      async () => {
        pass++;
        return pass < 3 ? [broken] : [broken, server('https://up', unsigned(ONBOARD), true)];
      },
      { once: false, maxAttempts: 5 },
    );
    expect(await p.run()).toMatchObject({ outcome: 'bootstrapped', source: 'https://up' });
    const s = await new StateStore(state.dir).load();
    expect(s.attempts).toBe(3);
    expect(s.retriesLeft).toBe(2);
    expect(s.history.map((h) => `${h.attempt} ${h.source} ${h.outcome}`)).toEqual([
      '1 https://down failed',
      '2 https://down failed',
      '3 https://down failed',
      '3 https://up bootstrapped',
    ]);
  });

  it('gives up after --max-attempts passes, and with no sources at all', async () => {
    const { p } = procedure(async () => [], { once: false, maxAttempts: 2 });
    expect(await p.run()).toMatchObject({
      outcome: 'gave-up',
      error: { code: 'SZTP_CLIENT_ERR_NO_SOURCES' },
    });
  });

  it('a disabled agent does nothing; enable turns it back on', async () => {
    const stateDir = join(root, 'flag');
    await setEnabled(stateDir, false);
    const lines: string[] = [];
    const config = {
      bootstrapUrls: [],
      leaseFiles: [],
      dnsDomains: [],
      bootstrapDirs: [dir(await signed(ONBOARD))],
      serialNumber: SN,
      trustAnchors: [],
      manufacturerTrustAnchors: [manufacturer],
      running: {},
      scriptTimeoutMs: 1000,
      sshHostKeysDir: join(root, 'no-ssh'),
      stateDir,
      once: true,
      backoff: { initialMs: 1, maxMs: 1 },
      timeoutMs: 1000,
      sendNonce: true,
      now: () => new Date(),
      log: { line: (_l: string, step: string, m: string) => void lines.push(`${step}: ${m}`) },
      executor: new RecordingExecutor(),
    };
    expect(await runAgent(config)).toEqual({ outcome: 'disabled', reason: 'operator' });
    expect(lines.join('\n')).toMatch(/SZTP is disabled \(operator\)/);
    await setEnabled(stateDir, true);
    expect(await runAgent(config)).toMatchObject({ outcome: 'bootstrapped' });
    expect((await new StateStore(stateDir).load()).enabled).toBe(false);
  });
});
