/**
 * Data under ../shared (IETF YANG modules, RFC fixtures, DMTF mockups), read at
 * test time and never copied. A fresh clone without ../shared beside it skips
 * the tests that need it; under CI=true a missing piece fails the run.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './serve.js';
import { haveTool, inCI } from './tools.js';

/** The shared folder beside the repository. */
export const sharedRoot = join(repoRoot, '..', 'shared');

/** A path under ../shared. */
export function sharedPath(...parts: string[]): string {
  return join(sharedRoot, ...parts);
}

/** Whether ../shared/<sub> exists; under CI=true a missing one throws, so the run fails instead of skipping. */
export function haveShared(sub: string): boolean {
  const ok = existsSync(sharedPath(sub));
  if (!ok && inCI)
    throw new Error(`shared data '${sub}' is missing under CI=true: expected ${sharedPath(sub)}`);
  return ok;
}

/** yanglint and the shared IETF modules (and the yang-data shim) are both at hand. */
export function haveYangValidation(): boolean {
  return haveTool('yanglint') && haveShared('yang') && haveShared('tools/yang-data-shim.sh');
}
