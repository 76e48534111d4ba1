import pino, { type Logger } from 'pino';

/** Logs go to stderr; stdout carries events only. */
export function createLogger(level = process.env.CTRWATCH_LOG ?? 'info'): Logger {
  return pino({ level, base: { name: 'ctrwatch' } }, pino.destination({ fd: 2, sync: true }));
}
