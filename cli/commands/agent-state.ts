/**
 * `sztp-client status | enable | disable`: the agent's state file and its
 * SZTP-enabled flag (RFC 8572 §5.1). `disable` makes `run` exit at once.
 */
import type { Command } from 'commander';
import { type AgentState, type AttemptRecord, setEnabled, StateStore } from '../../sztp-client/index.js';
import { action } from '../exit.js';

const DEFAULT_STATE_DIR = '/var/lib/sztp-client';

function attemptLine(a: AttemptRecord): string {
  const err = a.error ? ` — ${a.error.code}: ${a.error.message}` : '';
  const trust = a.serverTrusted === undefined ? '' : a.serverTrusted ? ' trusted' : ' untrusted';
  return `#${a.attempt} ${a.finishedAt} ${a.source}${trust} ${a.outcome} at ${a.step} in ${a.durationMs} ms${err}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Formats the state for people. */
export function formatStatus(s: AgentState, verbose: boolean): string {
  const lines: string[] = [];
  lines.push(`SZTP:          ${s.enabled ? 'enabled' : `disabled (${s.disabledReason ?? 'operator'})`}`);
  lines.push(
    `status:        ${s.status}${s.pid ? ` (pid ${s.pid}${alive(s.pid) ? '' : ', gone: the last run was interrupted'})` : ''}`,
  );
  if (s.completedAt) lines.push(`bootstrapped:  ${s.completedAt} by ${s.bootstrappedBy ?? '?'}`);
  if (s.current)
    lines.push(`now:           ${s.current.step} at ${s.current.source} since ${s.current.since}`);
  lines.push(`attempts:      ${s.attempts}${s.retriesLeft === null ? '' : ` (${s.retriesLeft} left)`}`);
  if (s.lastAttempt) lines.push(`last attempt:  ${attemptLine(s.lastAttempt)}`);
  if (s.lastError && s.status !== 'bootstrapped')
    lines.push(`last error:    ${s.lastError.code}: ${s.lastError.message}`);
  if (verbose) {
    if (s.lastAttempt) {
      lines.push('step timings (last attempt):');
      for (const [k, v] of Object.entries(s.lastAttempt.steps)) lines.push(`  ${k.padEnd(20)} ${v} ms`);
      if (s.lastAttempt.redirects?.length)
        lines.push(`redirects:     ${s.lastAttempt.redirects.join(' → ')}`);
    }
    if (s.history.length) {
      lines.push('history:');
      for (const a of s.history) lines.push(`  ${attemptLine(a)}`);
    }
    lines.push(`updated:       ${s.updatedAt}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Registers `status`, `enable` and `disable`. */
export function registerAgentStateCommands(program: Command): void {
  program
    .command('status')
    .description("show the agent's state: enabled, last attempt, server, step, error, retries")
    .option('--state-dir <dir>', 'state directory', DEFAULT_STATE_DIR)
    .option('--verbose', 'also step timings and the attempt history')
    .option('--json', 'print the state file as JSON')
    .action(
      action(async (o: { stateDir: string; verbose?: boolean; json?: boolean }) => {
        const s = await new StateStore(o.stateDir).load();
        process.stdout.write(
          o.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s, o.verbose === true),
        );
      }),
    );
  program
    .command('enable')
    .description('turn SZTP on: the next `run` bootstraps the device again')
    .option('--state-dir <dir>', 'state directory', DEFAULT_STATE_DIR)
    .action(
      action(async (o: { stateDir: string }) => {
        await setEnabled(o.stateDir, true);
        process.stdout.write('SZTP enabled\n');
      }),
    );
  program
    .command('disable')
    .description('turn SZTP off: `run` exits at once (RFC 8572 §5.1 flag)')
    .option('--state-dir <dir>', 'state directory', DEFAULT_STATE_DIR)
    .action(
      action(async (o: { stateDir: string }) => {
        await setEnabled(o.stateDir, false);
        process.stdout.write('SZTP disabled\n');
      }),
    );
}
