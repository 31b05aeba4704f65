/**
 * Fixtures for the BMC inventory tests: an operator API with the BMC and import
 * routes over a fresh database, whose log lines are kept (to prove no password
 * reaches them), and an emulated BMC serving real TLS with a certificate made
 * by pki/ at test time.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  type BmcCheckOptions,
  BmcStore,
  bmcRoutes,
  deviceImportRoutes,
  type IMPORT_LIMITS,
  SecretBox,
} from '../../bootstrap/index.js';
import { createCertificate, generateKey, signerFromPrivateKey, toPem } from '../../pki/index.js';
import { type BmcEmulator, type BmcEmulatorOptions, startBmcEmulator } from '../../redfish/index.js';
import { type TestApi, testApi } from '../helpers/api.js';
import { FAST_EMULATOR } from '../redfish/helpers.js';

/** A test API with the inventory routes, its secret box and BMC store, and every log line it wrote. */
export interface InventoryApi extends TestApi {
  box: SecretBox;
  store: BmcStore;
  logs: string[];
}

/** Fast check settings: short timeouts, few retries. */
export const FAST_CHECK: BmcCheckOptions = {
  timeoutMs: 15_000,
  client: {
    timeouts: { connectMs: 2_000, requestMs: 3_000 },
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 200 },
  },
};

/** Builds the operator API with the BMC and import routes, logging at trace level into `logs`. */
export async function inventoryApi(
  opts: { limits?: Partial<typeof IMPORT_LIMITS>; check?: BmcCheckOptions } = {},
): Promise<InventoryApi> {
  const { limits, check = FAST_CHECK } = opts;
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const box = new SecretBox(randomBytes(32));
  let store: BmcStore | undefined;
  const t = await testApi({
    logger: pino({ level: 'trace' }, sink),
    routes: [
      // The store needs the database testApi opens: build it on first use.
      (api, ctx) => {
        store = new BmcStore(ctx.db, box);
        return bmcRoutes({ store, check })(api, ctx);
      },
      (api, ctx) => deviceImportRoutes({ store: store!, ...(limits ? { limits } : {}) })(api, ctx),
    ],
  });
  return Object.assign(t, { box, store: store!, logs });
}

/** A self-signed TLS certificate for 127.0.0.1, made with pki/. */
export async function selfSignedTls(): Promise<{ key: string; cert: string }> {
  const k = await generateKey('ec-p256');
  const now = Date.now();
  const der = await createCertificate({
    profile: 'tls-server',
    subject: { commonName: 'emulated BMC' },
    publicKey: k.publicKey,
    issuer: signerFromPrivateKey(k.privateKeyPem),
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + 86_400_000),
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  return { key: k.privateKeyPem, cert: toPem(der, 'CERTIFICATE') };
}

/** An emulated BMC on https://127.0.0.1:<port> with its certificate (the CA to trust). */
export async function tlsEmulator(
  extra: Partial<BmcEmulatorOptions> = {},
): Promise<{ emu: BmcEmulator; ca: string }> {
  const tls = await selfSignedTls();
  const emu = await startBmcEmulator({ ...FAST_EMULATOR, tls, recordRequests: false, ...extra });
  return { emu, ca: tls.cert };
}
