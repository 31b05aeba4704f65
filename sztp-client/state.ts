/**
 * The agent's state in `--state-dir/state.json`: whether SZTP is enabled (RFC
 * 8572 §5.1's flag, present-and-true by default) and what happened — the last
 * attempt, the server, the step, the error, retries left and step timings.
 * Every write goes to a temp file that is fsynced and renamed over the old one,
 * so a power cut leaves either the old state or the new. A state file that
 * cannot be used (not JSON, wrong shape, larger than any state we write, not a
 * regular file) is moved aside with a warning and the agent starts fresh: a
 * damaged file must not stop a device from bootstrapping.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, rename, rm } from 'node:fs/promises';
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
/** Far above any state this agent writes (20 attempts of a few KiB); a larger file is not ours. */
const MAX_STATE_BYTES = 1024 * 1024;

/** Checks the shape of a parsed state file; returns why it is unusable. */
function stateProblem(s: unknown): string | undefined {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return 'not a JSON object';
  const o = s as Record<string, unknown>;
  if (o.version !== 1) return 'not a version 1 state file';
  if (typeof o.enabled !== 'boolean') return "'enabled' is not a boolean";
  if (o.history !== undefined && !Array.isArray(o.history)) return "'history' is not a list";
  if (
    o.status !== undefined &&
    !['idle', 'running', 'bootstrapped', 'failed', 'rebooting'].includes(o.status as string)
  )
    return "'status' is not a known status";
  if (o.attempts !== undefined && typeof o.attempts !== 'number') return "'attempts' is not a number";
  return undefined;
}

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

  /** Set by {@link load} when an unusable state file was moved aside. */
  recovered: { movedTo: string; reason: string } | undefined;

  /**
   * The state on disk, or a fresh one when there is none. An unusable file is renamed to
   * `state.json.corrupt-<time>` ({@link recovered} says so) and a fresh state is used.
   *
   * @throws AgentError `SZTP_CLIENT_ERR_STATE` when the file exists but cannot be read at all
   */
  async load(): Promise<AgentState> {
    let text: string;
    try {
      const st = await lstat(this.file);
      if (!st.isFile())
        return this.#recover(`not a regular file (${st.isSymbolicLink() ? 'a symlink' : 'type'})`);
      if (st.size > MAX_STATE_BYTES) return this.#recover(`${st.size} bytes, larger than any state file`);
      // O_NOFOLLOW: a symlink planted between lstat and open is not followed.
      const fh = await open(this.file, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        text = (await fh.readFile({ encoding: 'utf8' })).slice(0, MAX_STATE_BYTES + 1);
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#state = initialState();
        return this.#state;
      }
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') return this.#recover('a symlink');
      throw new AgentError('SZTP_CLIENT_ERR_STATE', `${this.file}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return this.#recover(`not JSON (${(err as Error).message})`);
    }
    const problem = stateProblem(parsed);
    if (problem) return this.#recover(problem);
    const s = parsed as AgentState;
    s.history ??= [];
    this.#state = s;
    return s;
  }

  async #recover(reason: string): Promise<AgentState> {
    const movedTo = `${this.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    try {
      await rename(this.file, movedTo);
    } catch (err) {
      throw new AgentError(
        'SZTP_CLIENT_ERR_STATE',
        `${this.file} is unusable (${reason}) and cannot be moved aside: ${(err as Error).message}`,
      );
    }
    this.recovered = { movedTo, reason };
    this.#state = initialState();
    return this.#state;
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
      // O_EXCL|O_NOFOLLOW: never write through a file or symlink someone planted at the temp name.
      const fh = await open(
        tmp,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
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
