#!/usr/bin/env node
/**
 * `dpu-ztp`: the operator-side command (DESIGN.md, Interfaces). The only
 * composition root of the service: argv/env are read here and in
 * `cli/commands/*`, nowhere else.
 */
import { Command } from 'commander';
import { readPackageVersion } from './version.js';

const program = new Command('dpu-ztp')
  .description('Secure zero-touch provisioning (RFC 8572 sZTP + Redfish) for DPUs and IPUs')
  .version(readPackageVersion())
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

const sub = (name: string) => program.commands.find((c) => c.name() === name) as Command;

// --- command modules: the top-level commands each registers, and how to load it ---
// A run loads only the modules of the command it was given (the service's modules take seconds
// to load, `dpu-ztp images list` needs none of them); help, no command or an unknown one loads all.
// `sub`: a module that adds one subcommand to a group is skipped when another subcommand is named.
const COMMANDS: Array<{ names: readonly string[]; sub?: string; register: () => Promise<void> }> = [
  { names: ['bmc'], register: async () => (await import('./commands/bmc.js')).registerBmcCommands(program) },
  {
    names: ['bmc'],
    sub: 'discover',
    register: async () => (await import('./commands/bmc-discover.js')).registerBmcDiscover(sub('bmc')),
  },
  {
    names: ['bmcs', 'devices'],
    register: async () => (await import('./commands/bmcs.js')).registerBmcsCommands(program),
  },
  {
    names: ['demo'],
    register: async () => (await import('./commands/demo.js')).registerDemoCommand(program),
  },
  {
    names: ['idevids'],
    register: async () => (await import('./commands/idevids.js')).registerIdevidCommands(program),
  },
  {
    names: ['images'],
    register: async () => (await import('./commands/images.js')).registerImagesCommands(program),
  },
  {
    names: ['provision', 'jobs'],
    register: async () => (await import('./commands/jobs.js')).registerJobCommands(program),
  },
  {
    names: ['openapi'],
    register: async () => (await import('./commands/openapi.js')).registerOpenApiCommand(program),
  },
  { names: ['pki'], register: async () => (await import('./commands/pki.js')).registerPkiCommands(program) },
  {
    names: ['pki'],
    sub: 'import',
    register: async () => (await import('./commands/pki-import.js')).registerPkiImport(sub('pki')),
  },
  {
    names: ['serve', 'migrate'],
    register: async () => (await import('./commands/serve.js')).registerServeCommands(program),
  },
  {
    names: ['tokens'],
    register: async () => (await import('./commands/tokens.js')).registerTokenCommands(program),
  },
];

// --- register commands (in the order above, so help lists them as before) ---
const [command = '', subcommand = ''] = process.argv.slice(2);
const named = COMMANDS.filter(
  (c) =>
    c.names.includes(command) &&
    (c.sub === undefined || subcommand === '' || subcommand.startsWith('-') || subcommand === c.sub),
);
for (const c of named.length > 0 ? named : COMMANDS) await c.register();

await program.parseAsync(process.argv);
