/**
 * Interop: clients nobody here wrote drive the emulator — Debian's python3-sushy (as OpenStack Ironic
 * uses it) and DMTF's redfishtool. If they can provision through it, the emulator speaks Redfish, not
 * just our client's dialect.
 */
import { execFile } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BmcEmulator, startBmcEmulator } from '../../redfish/index.js';
import { haveTool, inCI } from '../helpers/tools.js';
import { FAST_EMULATOR, type ImageServer, startImageServer } from './helpers.js';

const run = promisify(execFile);

/** A python3 that can import sushy (Debian's python3-sushy lives in /usr/lib/python3/dist-packages). */
function sushyPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(py, ['-c', 'import sushy'], { stdio: 'ignore' });
      return py;
    } catch {
      // try the next one
    }
  }
  if (inCI) throw new Error('python3-sushy is missing under CI=true: install it in .ci/run');
  return undefined;
}
const python = sushyPython();

let images: ImageServer;
let emu: BmcEmulator | undefined;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(() => images.close());
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

const waitBoot = async (e: BmcEmulator) => {
  for (let i = 0; i < 300 && e.boots.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  return e.boots[0];
};

const SUSHY_SCRIPT = `
import json, sys, time, sushy
url, user, password, image = sys.argv[1:5]
root = sushy.Sushy(url + '/redfish/v1', username=user, password=password, verify=False)
system = root.get_system(root.get_system_collection().members_identities[0])
manager = system.managers[0]          # sushy 4.3 finds media through the system's first manager
vm = None
for ident in manager.virtual_media.members_identities:
    m = manager.virtual_media.get_member(ident)
    if any(str(getattr(t, 'value', t)).upper() in ('CD', 'DVD') for t in m.media_types):
        vm = m
        break
vm.eject_media()
vm.insert_media(image, inserted=True, write_protected=True)
vm.refresh()
assert vm.inserted and vm.image == image, (vm.inserted, vm.image)
system.set_system_boot_options(sushy.BOOT_SOURCE_TARGET_CD, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE, mode=sushy.BOOT_SOURCE_MODE_UEFI)
system.refresh()
boot = dict(target=str(getattr(system.boot.target, 'value', system.boot.target)), enabled=str(getattr(system.boot.enabled, 'value', system.boot.enabled)))
system.reset_system(sushy.RESET_FORCE_RESTART)
for _ in range(200):
    system.refresh()
    if str(getattr(system.power_state, 'value', system.power_state)).lower() == 'on':
        break
    time.sleep(0.02)
power = str(getattr(system.power_state, 'value', system.power_state))
vm.eject_media()
vm.refresh()
print(json.dumps(dict(system=system.identity, manager=manager.identity, slot=vm.identity, boot=boot, power=power, ejected=not vm.inserted)))
`;

describe.skipIf(!python)('python3-sushy drives the emulator', () => {
  it('log in, find the system, insert virtual media, boot once, reset, eject', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, serial: 'SUSHY-1' });
    const image = `${images.url}/sushy.iso`;
    const { stdout } = await run(python!, ['-c', SUSHY_SCRIPT, emu.url, 'admin', 'secret', image], {
      timeout: 30_000,
    });
    expect(JSON.parse(stdout)).toEqual({
      system: 'DPU',
      manager: 'BMC',
      slot: 'CD1',
      boot: { target: 'Cd', enabled: 'Once' },
      power: 'On',
      ejected: true,
    });
    // sushy logged in with a session (its default) and the emulator booted the image from the slot.
    expect(
      emu.requests.some((r) => r.method === 'POST' && r.path === '/redfish/v1/SessionService/Sessions'),
    ).toBe(true);
    const boot = await waitBoot(emu);
    expect(boot).toMatchObject({ imageUrl: image, serial: 'SUSHY-1', via: 'virtual-media' });
  });
});

describe.skipIf(!haveTool('redfishtool'))('redfishtool drives the emulator', () => {
  const rft = (e: BmcEmulator, ...args: string[]) =>
    run(
      'redfishtool',
      [
        '-r',
        e.url.replace('http://', ''),
        '-u',
        'admin',
        '-p',
        'secret',
        '-S',
        'Never',
        '-A',
        'Session',
        ...args,
      ],
      {
        timeout: 30_000,
      },
    );

  it('lists systems, sets a one-time boot override and resets', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'generic' });
    const list = JSON.parse((await rft(emu, 'Systems')).stdout);
    expect(list.Members).toEqual([{ '@odata.id': '/redfish/v1/Systems/DPU' }]);
    await rft(emu, 'Systems', '-I', 'DPU', 'setBootOverride', 'Once', 'Pxe');
    expect(emu.resource('/redfish/v1/Systems/DPU')?.Boot).toMatchObject({
      BootSourceOverrideEnabled: 'Once',
      BootSourceOverrideTarget: 'Pxe',
    });
    await rft(emu, 'Systems', '-I', 'DPU', 'reset', 'ForceRestart');
    const resets = emu.requests.filter((r) => r.path.endsWith('ComputerSystem.Reset'));
    expect(resets.map((r) => r.body)).toEqual([{ ResetType: 'ForceRestart' }]);
    for (let i = 0; i < 100 && emu.resource('/redfish/v1/Systems/DPU')?.PowerState !== 'On'; i++)
      await new Promise((r) => setTimeout(r, 10));
    // Once semantics: the override is consumed by the boot.
    for (
      let i = 0;
      i < 100 && emu.resource('/redfish/v1/Systems/DPU')?.Boot.BootSourceOverrideEnabled !== 'Disabled';
      i++
    )
      await new Promise((r) => setTimeout(r, 10));
    expect(emu.resource('/redfish/v1/Systems/DPU')?.Boot.BootSourceOverrideEnabled).toBe('Disabled');
  });

  it('reads a DMTF-mockup-shaped tree through the bluefield persona', async () => {
    emu = await startBmcEmulator({ ...FAST_EMULATOR, persona: 'bluefield' });
    const sys = JSON.parse((await rft(emu, 'Systems', '-I', 'Bluefield')).stdout);
    expect(sys).toMatchObject({ Id: 'Bluefield', SystemType: 'DPU', PowerState: 'On' });
  });
});
