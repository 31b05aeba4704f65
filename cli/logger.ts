/** The process logger: JSON lines (pino) for machines, pino-pretty for people at a terminal. */
import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import type { LogFormat } from './config.js';

/** Creates the root logger. `auto` is pretty when stdout is a TTY and JSON otherwise. */
export function createLogger(level: string, format: LogFormat): Logger {
  const usePretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  if (!usePretty) return pino({ level, base: { pid: process.pid } });
  // Synchronous stream (no worker thread), so shutdown never loses the last lines.
  return pino(
    { level },
    pretty({ colorize: process.stdout.isTTY === true, sync: true, translateTime: 'SYS:HH:MM:ss.l' }),
  );
}
