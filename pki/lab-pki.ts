/**
 * A complete lab PKI for every RFC 8572 role (DESIGN.md, Trust model), built
 * in memory so the CLI only has to write the files: manufacturer CA (issues
 * IDevIDs), MASA CA and MASA (voucher signer), owner CA and owner certificate
 * (signs conveyed information), TLS CA and bootstrap-server certificate, and
 * per device an IDevID and an ownership voucher pinning the owner CA.
 *
 * The MASA has its own CA, and `masa-ca.crt` is the devices' voucher trust
 * anchor (`sztp-client run --manufacturer-trust-anchor`): were the MASA issued
 * by the CA that issues IDevIDs, any device's key would chain to the voucher
 * anchor and could sign a voucher for any other device (issue 12).
 */
import { createCertificate } from './certificate-create.js';
import { toPem } from './encoding.js';
import { PkiError } from './errors.js';
import { type KeyAlgorithm, generateKey } from './keys.js';
import { signerFromPrivateKey, withCertificates, type Signer } from './signer.js';
import { signVoucher } from './voucher.js';

/** Input to {@link createLabPki}. */
export interface LabPkiOptions {
  /** Key algorithm for every key (default ec-p256). */
  algorithm?: KeyAlgorithm;
  /** Device serial numbers; each gets an IDevID and a voucher. */
  devices?: readonly string[];
  /** Bootstrap-server SANs: DNS names and IP addresses, mixed. */
  serverNames?: readonly string[];
  /** Issue time (certificates start 5 minutes earlier to absorb clock skew). */
  now: Date;
  /** Organisation name written into subjects (default "dpu-ztp lab"). */
  organization?: string;
}

/** One file of the lab PKI: relative path, contents, POSIX mode (keys 0600). */
export interface LabPkiFile {
  path: string;
  data: string | Uint8Array;
  mode: number;
}

/** The generated lab PKI. */
export interface LabPki {
  files: LabPkiFile[];
}

const DAY = 86_400_000;
/** A device serial usable as a directory name and an X.520 PrintableString. */
export const DEVICE_SERIAL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const IP_RE = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$/;

/** Builds the lab PKI. RSA key generation makes this take seconds for RSA algorithms. */
export async function createLabPki(opts: LabPkiOptions): Promise<LabPki> {
  const alg = opts.algorithm ?? 'ec-p256';
  const now = opts.now;
  const org = opts.organization ?? 'dpu-ztp lab';
  const devices = [...new Set(opts.devices ?? [])];
  for (const sn of devices)
    if (!DEVICE_SERIAL_RE.test(sn))
      throw new PkiError('PKI_ERR_BAD_INPUT', `device serial '${sn}' must match ${DEVICE_SERIAL_RE.source}`);
  const serverNames = opts.serverNames?.length ? opts.serverNames : ['localhost', '127.0.0.1', '::1'];
  const notBefore = new Date(now.getTime() - 5 * 60_000);
  const caUntil = new Date(now.getTime() + 3650 * DAY);
  const eeUntil = new Date(now.getTime() + 825 * DAY);
  const files: LabPkiFile[] = [];
  const cert = (path: string, der: Uint8Array) =>
    files.push({ path, data: toPem(der, 'CERTIFICATE'), mode: 0o644 });
  const key = (path: string, pem: string) => files.push({ path, data: pem, mode: 0o600 });

  const root = async (name: string, cn: string) => {
    const k = await generateKey(alg);
    const s = signerFromPrivateKey(k.privateKeyPem);
    const der = await createCertificate({
      profile: 'ca',
      subject: { organization: org, commonName: cn },
      publicKey: k.publicKey,
      issuer: s,
      notBefore,
      notAfter: caUntil,
    });
    cert(`${name}.crt`, der);
    key(`${name}.key`, k.privateKeyPem);
    return withCertificates(s, [der]);
  };
  const leaf = async (
    name: string | null,
    issuer: Signer,
    profile: 'signing' | 'tls-server' | 'idevid',
    subject: { commonName: string; serialNumber?: string },
    extra: { dnsNames?: string[]; ipAddresses?: string[] } = {},
  ) => {
    const k = await generateKey(alg);
    const der = await createCertificate({
      profile,
      subject: { organization: org, ...subject },
      publicKey: k.publicKey,
      issuer,
      notBefore,
      notAfter: eeUntil,
      ...extra,
    });
    if (name) {
      cert(`${name}.crt`, der);
      key(`${name}.key`, k.privateKeyPem);
    }
    return {
      der,
      keyPem: k.privateKeyPem,
      signer: signerFromPrivateKey(k.privateKeyPem, { certificates: [der, ...issuer.certificates] }),
    };
  };

  const manufacturer = await root('manufacturer-ca', 'Lab Manufacturer CA');
  const masaCa = await root('masa-ca', 'Lab MASA CA (voucher trust anchor)');
  const masa = await leaf('masa', masaCa, 'signing', { commonName: 'Lab MASA (voucher signer)' });
  const ownerCa = await root('owner-ca', 'Lab Owner CA');
  await leaf('owner', ownerCa, 'signing', { commonName: 'Lab Owner (conveyed-information signer)' });
  const tlsCa = await root('tls-ca', 'Lab TLS CA');
  await leaf(
    'server',
    tlsCa,
    'tls-server',
    { commonName: serverNames[0]! },
    {
      dnsNames: serverNames.filter((n) => !IP_RE.test(n)),
      ipAddresses: serverNames.filter((n) => IP_RE.test(n)),
    },
  );
  const ownerCaDer = ownerCa.certificates[0]!;
  for (const sn of devices) {
    const dev = await leaf(null, manufacturer, 'idevid', {
      commonName: `Lab device ${sn}`,
      serialNumber: sn,
    });
    cert(`devices/${sn}/idevid.crt`, dev.der);
    key(`devices/${sn}/idevid.key`, dev.keyPem);
    // RFC 8366: pins the owner CA to this serial; verified assertion, one-year lifetime, no nonce.
    const voucher = await signVoucher(
      {
        // created-on is backdated like notBefore, so a device clock a little behind still accepts it.
        createdOn: notBefore,
        expiresOn: new Date(now.getTime() + 365 * DAY),
        assertion: 'verified',
        serialNumber: sn,
        pinnedDomainCert: ownerCaDer,
      },
      masa.signer,
      { signingTime: now },
    );
    files.push({ path: `devices/${sn}/ownership-voucher.cms`, data: voucher, mode: 0o644 });
  }
  return { files };
}
