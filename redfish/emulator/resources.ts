/**
 * The emulator's resource tree: built from a persona, or loaded from a DMTF
 * mockup directory (each `<dir>/index.json` is the resource at
 * `/redfish/v1/<dir>`, `headers.json` gives its `Allow`).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { RedfishError } from '../errors.js';
import type { EmulatorPersona } from './personas.js';

/** A JSON resource. */
export type Json = Record<string, any>;

/** The resources of an emulated BMC, keyed by normalised path (no trailing slash). */
export interface ResourceTree {
  readonly resources: Map<string, Json>;
  /** `Allow` per path when the mockup/persona restricts methods. */
  readonly allow: Map<string, string>;
}

/** `/redfish/v1/` → `/redfish/v1`; strips query and trailing slashes. */
export function normalisePath(p: string): string {
  const path = p.split('?')[0] ?? p;
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

const ref = (id: string) => ({ '@odata.id': id });
const collection = (id: string, type: string, name: string, members: string[]): Json => ({
  '@odata.id': id,
  '@odata.type': `#${type}.${type}`,
  Name: name,
  Members: members.map(ref),
  'Members@odata.count': members.length,
});

/** Builds the resource tree of a persona. */
export function buildPersonaTree(p: EmulatorPersona, serial: string): ResourceTree {
  const r = new Map<string, Json>();
  const allow = new Map<string, string>();
  const root = '/redfish/v1';
  const sys = `${root}/Systems/${p.systemId}`;
  const mgr = `${root}/Managers/${p.managerId}`;
  r.set(root, {
    '@odata.id': `${root}/`,
    '@odata.type': '#ServiceRoot.v1_17_0.ServiceRoot',
    Id: 'RootService',
    Name: 'Root Service',
    RedfishVersion: p.redfishVersion,
    UUID: '92384634-2938-2342-8820-489239905423',
    Vendor: p.manufacturer,
    ...(p.product ? { Product: p.product } : {}),
    Systems: ref(`${root}/Systems`),
    Managers: ref(`${root}/Managers`),
    Chassis: ref(`${root}/Chassis`),
    SessionService: ref(`${root}/SessionService`),
    AccountService: ref(`${root}/AccountService`),
    // DSP0266 / ServiceRoot schema: the TaskService is linked as `Tasks` (there is no `TaskService` property).
    Tasks: ref(`${root}/TaskService`),
    ...(p.simpleUpdate ? { UpdateService: ref(`${root}/UpdateService`) } : {}),
    Links: { Sessions: ref(`${root}/SessionService/Sessions`) },
  });
  r.set(`${root}/SessionService`, {
    '@odata.id': `${root}/SessionService`,
    '@odata.type': '#SessionService.v1_1_8.SessionService',
    Id: 'SessionService',
    ServiceEnabled: true,
    SessionTimeout: 1800,
    Sessions: ref(`${root}/SessionService/Sessions`),
  });
  r.set(
    `${root}/SessionService/Sessions`,
    collection(`${root}/SessionService/Sessions`, 'SessionCollection', 'Sessions', []),
  );
  r.set(`${root}/AccountService`, {
    '@odata.id': `${root}/AccountService`,
    '@odata.type': '#AccountService.v1_13_0.AccountService',
    Id: 'AccountService',
    Accounts: ref(`${root}/AccountService/Accounts`),
    Roles: ref(`${root}/AccountService/Roles`),
  });
  r.set(
    `${root}/AccountService/Accounts`,
    collection(`${root}/AccountService/Accounts`, 'ManagerAccountCollection', 'Accounts', [
      `${root}/AccountService/Accounts/1`,
    ]),
  );
  r.set(`${root}/AccountService/Accounts/1`, {
    '@odata.id': `${root}/AccountService/Accounts/1`,
    '@odata.type': '#ManagerAccount.v1_10_0.ManagerAccount',
    Id: '1',
    Name: 'User Account',
    UserName: 'admin',
    RoleId: 'Administrator',
    AccountTypes: ['Redfish'],
    Enabled: true,
    Password: null,
    Links: { Role: ref(`${root}/AccountService/Roles/Administrator`) },
  });
  // ManagerAccount links a Role; DSP0266 "Privilege model": the three predefined roles.
  const roles: [string, string[]][] = [
    [
      'Administrator',
      ['Login', 'ConfigureManager', 'ConfigureUsers', 'ConfigureSelf', 'ConfigureComponents'],
    ],
    ['Operator', ['Login', 'ConfigureSelf', 'ConfigureComponents']],
    ['ReadOnly', ['Login', 'ConfigureSelf']],
  ];
  r.set(
    `${root}/AccountService/Roles`,
    collection(
      `${root}/AccountService/Roles`,
      'RoleCollection',
      'Roles',
      roles.map(([id]) => `${root}/AccountService/Roles/${id}`),
    ),
  );
  for (const [id, privileges] of roles)
    r.set(`${root}/AccountService/Roles/${id}`, {
      '@odata.id': `${root}/AccountService/Roles/${id}`,
      '@odata.type': '#Role.v1_3_1.Role',
      Id: id,
      Name: `${id} Role`,
      RoleId: id,
      IsPredefined: true,
      AssignedPrivileges: privileges,
    });
  r.set(`${root}/TaskService`, {
    '@odata.id': `${root}/TaskService`,
    '@odata.type': '#TaskService.v1_2_0.TaskService',
    Id: 'TaskService',
    Tasks: ref(`${root}/TaskService/Tasks`),
  });
  r.set(`${root}/TaskService/Tasks`, collection(`${root}/TaskService/Tasks`, 'TaskCollection', 'Tasks', []));
  r.set(
    `${root}/Chassis`,
    collection(`${root}/Chassis`, 'ChassisCollection', 'Chassis', [`${root}/Chassis/Card1`]),
  );
  r.set(`${root}/Chassis/Card1`, {
    '@odata.id': `${root}/Chassis/Card1`,
    '@odata.type': '#Chassis.v1_25_0.Chassis',
    Id: 'Card1',
    ChassisType: p.systemType === 'DPU' ? 'Card' : 'RackMount',
    Links: { ComputerSystems: [ref(sys)], ManagedBy: [ref(mgr)] },
  });
  r.set(
    `${root}/Systems`,
    collection(`${root}/Systems`, 'ComputerSystemCollection', 'Computer Systems', [sys]),
  );
  r.set(`${root}/Managers`, collection(`${root}/Managers`, 'ManagerCollection', 'Managers', [mgr]));

  const slotBase = p.mediaUnder === 'system' ? `${sys}/VirtualMedia` : `${mgr}/VirtualMedia`;
  const slotPaths = p.slots.map((s) => `${slotBase}/${s.id}`);
  for (const [i, s] of p.slots.entries()) {
    const path = slotPaths[i]!;
    r.set(path, {
      '@odata.id': path,
      '@odata.type': '#VirtualMedia.v1_6_5.VirtualMedia',
      Id: s.id,
      Name: `Virtual ${s.mediaTypes[0]}`,
      MediaTypes: [...s.mediaTypes],
      Image: null,
      ImageName: null,
      Inserted: false,
      WriteProtected: true,
      ConnectedVia: 'NotConnected',
      TransferProtocolType: null,
      TransferMethod: null,
      ...(s.actions
        ? {
            Actions: {
              '#VirtualMedia.InsertMedia': {
                target: `${path}/Actions/VirtualMedia.InsertMedia`,
                'TransferProtocolType@Redfish.AllowableValues': p.rules.httpsOnly
                  ? ['HTTPS', 'CIFS']
                  : ['HTTP', 'HTTPS', 'NFS', 'CIFS'],
              },
              '#VirtualMedia.EjectMedia': { target: `${path}/Actions/VirtualMedia.EjectMedia` },
            },
          }
        : {}),
    });
    allow.set(path, s.actions ? 'GET' : 'GET, PATCH');
  }
  if (p.mediaUnder !== 'none') {
    if (p.mediaUnder !== 'system')
      r.set(
        `${mgr}/VirtualMedia`,
        collection(`${mgr}/VirtualMedia`, 'VirtualMediaCollection', 'Virtual Media', slotPaths),
      );
    if (p.mediaUnder !== 'manager')
      r.set(
        `${sys}/VirtualMedia`,
        collection(`${sys}/VirtualMedia`, 'VirtualMediaCollection', 'Virtual Media', slotPaths),
      );
  }

  const boot: Json = {
    BootSourceOverrideEnabled: 'Disabled',
    BootSourceOverrideTarget: 'None',
    'BootSourceOverrideTarget@Redfish.AllowableValues': [...p.bootTargets],
    BootSourceOverrideMode: 'UEFI',
    'BootSourceOverrideMode@Redfish.AllowableValues': ['Legacy', 'UEFI'],
    ...(p.httpBoot ? { HttpBootUri: null } : {}),
  };
  r.set(sys, {
    '@odata.id': sys,
    '@odata.type': '#ComputerSystem.v1_22_0.ComputerSystem',
    Id: p.systemId,
    Name: p.systemType === 'DPU' ? 'DPU SoC' : 'Host',
    SystemType: p.systemType,
    Manufacturer: p.manufacturer,
    Model: p.model,
    SerialNumber: serial,
    UUID: '2eb1a9f8-74f7-4f22-b085-b833dcf37300',
    PowerState: 'On',
    Status: { State: 'Enabled', Health: 'OK' },
    ...(p.bootProgress?.length
      ? {
          BootProgress: {
            LastState: 'OEM',
            OemLastState: p.bootProgress.at(-1),
            LastStateTime: new Date().toISOString(),
          },
        }
      : {}),
    Boot: boot,
    ...(p.mediaUnder === 'system' || p.mediaUnder === 'both'
      ? { VirtualMedia: ref(`${sys}/VirtualMedia`) }
      : {}),
    ...(p.bootOnSettings ? { '@Redfish.Settings': { SettingsObject: ref(`${sys}/Settings`) } } : {}),
    Links: { ManagedBy: [ref(mgr)], Chassis: [ref(`${root}/Chassis/Card1`)] },
    Actions: {
      '#ComputerSystem.Reset': {
        target: `${sys}/Actions/ComputerSystem.Reset`,
        'ResetType@Redfish.AllowableValues': [...p.resetTypes],
      },
    },
  });
  if (p.bootOnSettings)
    r.set(`${sys}/Settings`, {
      '@odata.id': `${sys}/Settings`,
      '@odata.type': '#ComputerSystem.v1_22_0.ComputerSystem',
      Id: 'Settings',
      Boot: { ...boot },
    });
  r.set(mgr, {
    '@odata.id': mgr,
    '@odata.type': '#Manager.v1_19_0.Manager',
    Id: p.managerId,
    ManagerType: 'BMC',
    Manufacturer: p.manufacturer,
    Model: `${p.model} BMC`,
    FirmwareVersion: p.firmwareVersion,
    ...(p.mediaUnder === 'manager' || p.mediaUnder === 'both'
      ? { VirtualMedia: ref(`${mgr}/VirtualMedia`) }
      : {}),
    Links: { ManagerForServers: [ref(sys)] },
    // Oem objects carry their own @odata.type (DSP0266 "Oem property format and content").
    ...(p.rshim
      ? {
          Oem: {
            Nvidia: { '@odata.type': '#NvidiaManager.v1_0_0.NvidiaManager', ...ref(`${mgr}/Oem/Nvidia`) },
          },
        }
      : {}),
    Actions: {
      '#Manager.Reset': {
        target: `${mgr}/Actions/Manager.Reset`,
        'ResetType@Redfish.AllowableValues': ['GracefulRestart'],
      },
    },
  });
  if (p.rshim)
    r.set(`${mgr}/Oem/Nvidia`, {
      '@odata.id': `${mgr}/Oem/Nvidia`,
      '@odata.type': '#NvidiaManager.v1_0_0.NvidiaManager',
      BmcRShim: { BmcRShimEnabled: false },
    });
  if (p.simpleUpdate) {
    const inv = `${root}/UpdateService/FirmwareInventory`;
    r.set(`${root}/UpdateService`, {
      '@odata.id': `${root}/UpdateService`,
      '@odata.type': '#UpdateService.v1_11_0.UpdateService',
      Id: 'UpdateService',
      ServiceEnabled: true,
      FirmwareInventory: ref(inv),
      Actions: {
        '#UpdateService.SimpleUpdate': {
          target: `${root}/UpdateService/Actions/UpdateService.SimpleUpdate`,
          'TransferProtocol@Redfish.AllowableValues': [...p.simpleUpdate.protocols],
        },
      },
    });
    r.set(
      inv,
      collection(
        inv,
        'SoftwareInventoryCollection',
        'Firmware',
        p.simpleUpdate.inventory.map((i) => `${inv}/${i}`),
      ),
    );
    for (const id of p.simpleUpdate.inventory)
      r.set(`${inv}/${id}`, {
        '@odata.id': `${inv}/${id}`,
        '@odata.type': '#SoftwareInventory.v1_9_0.SoftwareInventory',
        Id: id,
        Version: id === 'DPU_OS' ? 'none' : p.firmwareVersion,
        Updateable: true,
      });
  }
  // Name is mandatory on every Resource (Resource.v1 `Resource.Name` is Required).
  for (const [path, json] of r)
    if (json.Name === undefined && json['@odata.type'])
      json.Name = typeof json.Id === 'string' ? json.Id : (path.split('/').pop() ?? 'Resource');
  return { resources: r, allow };
}

/** Loads a DMTF mockup directory (e.g. `public-smartnic`) as a resource tree. */
export async function loadMockupTree(dir: string): Promise<ResourceTree> {
  const resources = new Map<string, Json>();
  const allow = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      throw new RedfishError(
        'REDFISH_ERR_CONFIG',
        `cannot read mockup directory ${d}: ${(err as Error).message}`,
      );
    }
    for (const e of entries) {
      const full = join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.name === 'index.json' || e.name === 'headers.json') {
        const rel = relative(dir, d).split(sep).join('/');
        const path = normalisePath(rel ? `/redfish/v1/${rel}` : '/redfish/v1');
        const json = JSON.parse(await readFile(full, 'utf8')) as Json;
        if (e.name === 'index.json') resources.set(path, json);
        else if (typeof json.GET?.Allow === 'string') allow.set(path, json.GET.Allow);
      }
    }
  };
  await walk(dir);
  if (!resources.has('/redfish/v1'))
    throw new RedfishError(
      'REDFISH_ERR_CONFIG',
      `${dir} is not a Redfish mockup (no index.json at its root)`,
    );
  return { resources, allow };
}
