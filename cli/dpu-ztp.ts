#!/usr/bin/env node
/**
 * `dpu-ztp`: the operator-side command (DESIGN.md, Interfaces). The only
 * composition root of the service: argv/env are read here and in
 * `cli/commands/*`, nowhere else.
 */
import { Command } from 'commander';
import { readPackageVersion } from './version.js';
// --- command modules (one import + one register call each) ---
import { registerBmcCommands } from './commands/bmc.js';
import { registerBmcDiscover } from './commands/bmc-discover.js';
import { registerBmcsCommands } from './commands/bmcs.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerIdevidCommands } from './commands/idevids.js';
import { registerImagesCommands } from './commands/images.js';
import { registerJobCommands } from './commands/jobs.js';
import { registerOpenApiCommand } from './commands/openapi.js';
import { registerPkiCommands } from './commands/pki.js';
import { registerPkiImport } from './commands/pki-import.js';
import { registerServeCommands } from './commands/serve.js';
import { registerTokenCommands } from './commands/tokens.js';

const program = new Command('dpu-ztp')
  .description('Secure zero-touch provisioning (RFC 8572 sZTP + Redfish) for DPUs and IPUs')
  .version(readPackageVersion())
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

// --- register commands ---
registerBmcCommands(program);
registerBmcDiscover(program.commands.find((c) => c.name() === 'bmc') as Command);
registerBmcsCommands(program);
registerDemoCommand(program);
registerIdevidCommands(program);
registerImagesCommands(program);
registerJobCommands(program);
registerOpenApiCommand(program);
registerPkiCommands(program);
registerPkiImport(program.commands.find((c) => c.name() === 'pki') as Command);
registerServeCommands(program);
registerTokenCommands(program);

await program.parseAsync(process.argv);
