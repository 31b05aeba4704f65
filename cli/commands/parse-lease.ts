/**
 * `sztp-client parse-lease FILE…`: prints the bootstrap server URIs found in DHCP
 * lease files (option 143/136, RFC 8572 §8) as a JSON array — newest lease
 * first within a file, files in the order given, duplicates removed. Warnings go
 * to stderr; a malformed option makes the command fail with its error code.
 */
import type { Command } from 'commander';
import { readLeaseFile } from '../../sztp-client/discovery/index.js';
import type { DiscoveryWarning } from '../../sztp-client/discovery/index.js';
import { action } from '../exit.js';

/** Registers `parse-lease` on the `sztp-client` program. */
export function registerParseLeaseCommand(program: Command): void {
  program
    .command('parse-lease')
    .description('print the bootstrap server URIs (DHCP option 143/136) found in lease files, as JSON')
    .argument('<file...>', 'dhclient/NetworkManager lease file, nmcli dump, or udhcpc/dhclient hook env dump')
    .action(
      action(async (files: string[]) => {
        const uris: string[] = [];
        for (const file of files) {
          const warnings: DiscoveryWarning[] = [];
          const parsed = await readLeaseFile(file, warnings);
          for (const w of warnings) process.stderr.write(`warning: ${w.code}: ${w.message}\n`);
          for (const u of parsed.uris) if (!uris.includes(u)) uris.push(u);
        }
        process.stdout.write(`${JSON.stringify(uris)}\n`);
      }),
    );
}
