/**
 * The agent's state in `--state-dir/state.json`: whether SZTP is enabled (RFC
 * 8572 §5.1's flag, present-and-true by default) and what happened — the last
 * attempt, the server, the step, the error, retries left and step timings.
 * Every write goes to a temp file that is fsynced and renamed over the old one,
 * so a power cut leaves either the old state or the new.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from './errors.js';

/** One pass over one source. */
export interface AttemptRecord {
  /** Pass number over the sources (1-based). */
  attempt: number;
  source: string;
  startedAt: string;
  finishedAt: string;
  outcome: 'bootstrapped' | 'failed' | 'rebooting';
  /** The step it ended in. */
  step: string;
  error?: { code: string; message: string };
  /** RFC 8572 §5.3 trust state of the server (TLS) and whether the data was signed. */
  serverTrusted?: boolean;
  signed?: boolean;
  /** Redirect hops followed. */
  redirects?: string[];
  durationMs: number;
  /** Milliseconds per step. */
  steps: Record<string, number>;
}

/** The whole state file. */
export interface AgentState {
  version: 1;
  /** RFC 8572 §5.1: the SZTP-enabled flag. */
  enabled: boolean;
  /** Why it was disabled: `operator` (`sztp-client disable`) or `bootstrapped` (§5.2). */
  disabledReason?: string;
  updatedAt: string;
  status: 'idle' | 'running' | 'bootstrapped' | 'failed' | 'rebooting';
  /** The running agent's pid while `status` is `running`. */
  pid?: number;
  /** Passes over all sources in the current or last run. */
  attempts: number;
  /** Passes left before giving up; null = unlimited. */
  retriesLeft: number | null;
  /** What the running agent is doing now. */
  current?: { source: string; step: string; since: string };
  lastAttempt?: AttemptRecord;
  lastError?: { code: string; message: string; source?: string; step?: string; at: string };
  completedAt?: string;
  /** Server and time of the bootstrap that succeeded. */
  bootstrappedBy?: string;
  /** The most recent attempts, newest last (at most {@link HISTORY}). */
  history: AttemptRecord[];
}

const HISTORY = 20;

/** A fresh state: enabled, nothing tried. */
export function initialState(now = new Date()): AgentState {
  return {
    version: 1,
    enabled: true,
    updatedAt: now.toISOString(),
    status: 'idle',
    attempts: 0,
    retriesLeft: null,
    history: [],
  };
}

/** Reads and writes `state.json` in a directory. */
export class StateStore {
  readonly dir: string;
  readonly file: string;
  #state: AgentState | undefined;

  constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, 'state.json');
  }

  /** The state on disk, or a fresh one when there is none. */
  async load(): Promise<AgentState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#state = initialState();
        return this.#state;
      }
      throw new AgentError('SZTP_CLIENT_ERR_STATE', `${this.file}: ${(err as Error).message}`);
    }
    try {
      const s = JSON.parse(text) as AgentState;
      if (s.version !== 1 || typeof s.enabled !== 'boolean') throw new Error('not a version 1 state file');
      s.history ??= [];
      this.#state = s;
      return s;
    } catch (err) {
      throw new AgentError('SZTP_CLIENT_ERR_STATE', `${this.file}: ${(err as Error).message}`);
    }
  }

  /** Applies `change` to the current state and writes it atomically. */
  async update(change: (s: AgentState) => void): Promise<AgentState> {
    const s = this.#state ?? (await this.load());
    change(s);
    s.updatedAt = new Date().toISOString();
    if (s.history.length > HISTORY) s.history.splice(0, s.history.length - HISTORY);
    await this.#write(s);
    return s;
  }

  async #write(s: AgentState): Promise<void> {
    const tmp = join(this.dir, `.state.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(s, null, 2)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new AgentError('SZTP_CLIENT_ERR_STATE', `${this.file}: ${(err as Error).message}`);
    }
  }
}
