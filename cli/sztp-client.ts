#!/usr/bin/env node
/**
 * `sztp-client`: the device agent's command (DESIGN.md, Interfaces). It must
 * never import server-side code: only `sztp-client/`, `pki/` and `otel/`.
 */
import { Command } from 'commander';
import { readPackageVersion } from './version.js';
// --- command modules (one import + one register call each) ---
import { registerVerifyCommand } from './commands/verify.js';
import { registerParseLeaseCommand } from './commands/parse-lease.js';
import { registerAgentRunCommand } from './commands/agent-run.js';
import { registerAgentStateCommands } from './commands/agent-state.js';

const program = new Command('sztp-client')
  .description('RFC 8572 secure zero-touch provisioning agent for DPUs and IPUs')
  .version(readPackageVersion())
  .showHelpAfterError();

// --- register commands ---
registerVerifyCommand(program);
registerParseLeaseCommand(program);
registerAgentRunCommand(program);
registerAgentStateCommands(program);

await program.parseAsync(process.argv);
