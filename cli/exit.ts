/**
 * The CLI edge for errors (STYLE.md lesson 6): any error that carries a stable
 * `code` is printed as one line `error: <CODE>: <message>` on stderr, and the
 * process exits non-zero. Only `cli/` calls this.
 */

/** An error raised by the CLI itself (bad flag combination, missing file, …). */
export class CliError extends Error {
  /** Stable error code, e.g. `CLI_ERR_BAD_FLAG`. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'CliError';
    this.code = code;
  }
}

/** Formats an error as the single line the CLI prints. */
export function errorLine(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'ERR_UNEXPECTED';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return `error: ${code}: ${message.split('\n')[0]}`;
}

/**
 * Wraps a command action: runs it, and on failure prints the one-line error and
 * sets a non-zero exit code (2 for usage errors, 1 otherwise).
 */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void> | void,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      process.stderr.write(`${errorLine(err)}\n`);
      if (process.env.DPU_ZTP_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
      process.exitCode = (err as { code?: unknown })?.code === 'CLI_ERR_USAGE' ? 2 : 1;
    }
  };
}
