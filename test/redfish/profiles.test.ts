import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bootDeviceFromRedfish,
  bootDeviceToRedfish,
  defineProfile,
  powerStateFromRedfish,
  PROFILE_DEFAULTS,
  profileById,
  RedfishClient,
  resetKindFromRedfish,
  resetKindToRedfish,
  selectProfile,
  startBmcEmulator,
  transferProtocolOfUrl,
  VENDOR_PROFILES,
} from '../../redfish/index.js';
import { haveTool } from '../helpers/tools.js';
import { FAST_EMULATOR, fastClient, repoRoot } from './helpers.js';

const id = (
  manufacturer: string,
  model = '',
  extra: Partial<{ firmwareVersion: string; product: string; vendor: string }> = {},
) => ({
  manufacturer,
  model,
  firmwareVersion: '',
  product: '',
  vendor: '',
  ...extra,
});

describe('vendor profiles', () => {
  it('are picked from Manufacturer/Model, generic otherwise, and overridable', () => {
    expect(selectProfile(id('Dell Inc.', 'PowerEdge R760')).id).toBe('idrac');
    expect(selectProfile(id('HPE', 'ProLiant DL380 Gen11')).id).toBe('ilo');
    expect(selectProfile(id('Supermicro', 'X12DPi-NT6')).id).toBe('supermicro');
    expect(selectProfile(id('Lenovo', 'ThinkSystem SD530')).id).toBe('xcc');
    expect(selectProfile(id('OpenBMC', 'romulus')).id).toBe('openbmc');
    expect(selectProfile(id('Nvidia', 'BlueField-3 DPU')).id).toBe('bluefield');
    expect(selectProfile(id('NVIDIA', '', { product: 'BlueField-4 DPU' })).id).toBe('bluefield');
    // An NVIDIA host that is not a BlueField is not treated as one.
    expect(selectProfile(id('NVIDIA', 'DGX H100')).id).toBe('generic');
    expect(selectProfile(id('Contoso', '9900')).id).toBe('generic');
    expect(selectProfile(id('Dell Inc.', 'x'), 'generic').id).toBe('generic');
    expect(() => profileById('nope')).toThrow(
      expect.objectContaining({ code: 'REDFISH_ERR_UNKNOWN_PROFILE' }),
    );
  });

  it('are deeply read-only and complete', () => {
    expect(VENDOR_PROFILES.map((p) => p.id).sort()).toEqual([
      'bluefield',
      'generic',
      'idrac',
      'ilo',
      'openbmc',
      'supermicro',
      'xcc',
    ]);
    for (const p of VENDOR_PROFILES) {
      expect(Object.isFrozen(p)).toBe(true);
      expect(Object.isFrozen(p.virtualMedia.insertFields)).toBe(true);
      expect(() => {
        (p.virtualMedia as { search: string }).search = 'x';
      }).toThrow();
      expect(typeof p.hooks.cdBootTarget).toBe('function');
      for (const tid of PROFILE_DEFAULTS.transientMessageIds) expect(p.transientMessageIds).toContain(tid);
    }
  });

  it('quirks are data, and each profile file comments the firmware that showed them', () => {
    const files = ['dell-idrac', 'hpe-ilo', 'supermicro', 'lenovo-xcc', 'openbmc', 'nvidia-bluefield'];
    for (const f of files) {
      const src = readFileSync(join(repoRoot, 'redfish', 'profiles', `${f}.ts`), 'utf8');
      expect(src, f).toMatch(/\/\/|\/\*\*/);
      expect(src, f).toMatch(/sushy|Ironic|bmcweb|NVIDIA|DPF|bmclib|ansible|python-redfish-lenovo|gofish/);
    }
    // No vendor branches in the flow: strategies and probe never test a profile id.
    for (const f of [
      'strategies/virtual-media',
      'strategies/image-push',
      'strategies/http-boot',
      'strategies/media',
      'strategies/boot',
      'strategies/power',
      'strategies/assess',
      'probe',
      'provision',
    ]) {
      const src = readFileSync(join(repoRoot, 'redfish', `${f}.ts`), 'utf8');
      expect(src, f).not.toMatch(/profile\.id\s*===|vendor\s*===|manufacturer\s*===/);
    }
  });

  it('Supermicro maps the virtual CD to UsbCd only when offered', () => {
    const sm = profileById('supermicro');
    expect(sm.hooks.cdBootTarget(['Cd', 'UsbCd'])).toBe('UsbCd');
    expect(sm.hooks.cdBootTarget(['Cd'])).toBe('Cd'); // ARS-111GL-NHR
    expect(profileById('generic').hooks.cdBootTarget(['Cd', 'UsbCd'])).toBe('Cd');
  });

  it('defineProfile fills defaults', () => {
    const p = defineProfile({ id: 'x', name: 'X', virtualMedia: { insertFields: { inserted: false } } });
    expect(p.virtualMedia.insertFields).toEqual({
      ...PROFILE_DEFAULTS.virtualMedia.insertFields,
      inserted: false,
    });
    expect(p.boot).toEqual(PROFILE_DEFAULTS.boot);
  });
});

describe('neutral vocabulary', () => {
  it('translates in one place, both ways', () => {
    expect(powerStateFromRedfish('PoweringOn')).toBe('powering-on');
    expect(powerStateFromRedfish('Weird')).toBe('unknown');
    expect(bootDeviceToRedfish('uefi-http')).toBe('UefiHttp');
    expect(bootDeviceFromRedfish('UsbCd')).toBe('cd');
    expect(resetKindFromRedfish(resetKindToRedfish('force-restart'))).toBe('force-restart');
    expect(transferProtocolOfUrl('smb://x/y.iso')).toBe('cifs');
    expect(transferProtocolOfUrl('HTTPS://x/y.iso')).toBe('https');
    expect(transferProtocolOfUrl('/local')).toBeUndefined();
  });
});

describe.skipIf(!haveTool('openssl'))('per-BMC TLS', () => {
  it('verifies with a custom CA, fails typed without it, and accepts --insecure only when asked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rf-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=bmc',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(dir, 'k.pem'),
          '-out',
          join(dir, 'c.pem'),
        ],
        { stdio: 'ignore' },
      );
      const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
      const emu = await startBmcEmulator({
        ...FAST_EMULATOR,
        tls: { key: readFileSync(join(dir, 'k.pem')), cert },
      });
      try {
        expect(emu.url).toMatch(/^https:/);
        const withCa = new RedfishClient(fastClient(emu.url, { tls: { ca: cert } }));
        expect((await withCa.get('/redfish/v1/Systems')).status).toBe(200);
        await withCa.close();
        const strict = new RedfishClient(fastClient(emu.url));
        await expect(strict.serviceRoot()).rejects.toMatchObject({ code: 'REDFISH_ERR_TLS' });
        await strict.close();
        const insecure = new RedfishClient(fastClient(emu.url, { tls: { insecure: true } }));
        expect((await insecure.get('/redfish/v1/Managers')).status).toBe(200);
        await insecure.close();
      } finally {
        await emu.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
