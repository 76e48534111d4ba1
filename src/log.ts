import pino, { type Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export class LogLevelError extends Error {
  constructor(
    readonly level: string,
    source: string,
  ) {
    super(`${source} must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`);
    this.name = 'LogLevelError';
  }
}

/** The level named by --log-level (either `--log-level L` or `--log-level=L`), else CTRWATCH_LOG, else info. */
export function logLevelFrom(args: readonly string[], env = process.env.CTRWATCH_LOG): string {
  let level: string | undefined;
  let source = 'CTRWATCH_LOG';
  args.forEach((a, i) => {
    if (a === '--log-level') level = args[i + 1] ?? '';
    else if (a.startsWith('--log-level=')) level = a.slice('--log-level='.length);
    else return;
    source = '--log-level';
  });
  level ??= env ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new LogLevelError(level, source);
  return level;
}

/** Logs go to stderr; stdout carries events only. */
export function createLogger(level = process.env.CTRWATCH_LOG ?? 'info'): Logger {
  return pino({ level, base: { name: 'ctrwatch' } }, pino.destination({ fd: 2, sync: true }));
}
