/**
 * The agent's log: one line per step, for people (`text`) or machines
 * (`json`, one object per line). Written to a stream the CLI chooses.
 */

/** Log line formats. */
export type LogFormat = 'text' | 'json';

/** Severity of a line. */
export type LogLevel = 'info' | 'warn' | 'error';

/** Where the agent's lines go. */
export interface AgentLog {
  /** One line: `step` names what the agent is doing (`fetch`, `verify`, `boot-image`, …). */
  line(level: LogLevel, step: string, message: string, fields?: Record<string, unknown>): void;
}

/** A logger writing text or JSON lines through `write`. */
export function createLog(
  format: LogFormat,
  write: (line: string) => void,
  clock = () => new Date(),
): AgentLog {
  return {
    line(level, step, message, fields = {}) {
      const time = clock().toISOString();
      if (format === 'json') {
        write(`${JSON.stringify({ time, level, step, msg: message, ...fields })}\n`);
        return;
      }
      const extra = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
        .join(' ');
      const tag = level === 'info' ? '' : `${level.toUpperCase()} `;
      write(`${time} ${tag}${step}: ${message}${extra ? ` (${extra})` : ''}\n`);
    },
  };
}

/** A logger that drops everything (tests). */
export const silentLog: AgentLog = { line() {} };
