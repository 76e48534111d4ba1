// `ctrwatch run`: starts the data path, waits for SIGINT/SIGTERM (or for stdout to close), and
// stops it. What the path is made of is in data-path.ts.

import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { startDataPath } from './data-path';
import type { Policy } from './detect/policy';
import type { SinkFlags } from './sinks';

export interface RunOptions {
  logger: Logger;
  raw: boolean;
  traceAll: boolean;
  execAll?: boolean;
  ringBytes: number;
  drainMs: number;
  /** Where --raw lines go (the sinks write the events). */
  out: Writable;
  policy?: Policy;
  sinks?: SinkFlags;
}

/** Runs until SIGINT/SIGTERM (or stdout closes); resolves with the exit code. */
export async function runSensor(o: RunOptions): Promise<number> {
  let stopping: ((code: number) => void) | undefined;
  const stopped = new Promise<number>((resolve) => (stopping = resolve));
  process.once('SIGINT', () => stopping?.(0));
  process.once('SIGTERM', () => stopping?.(0));
  const path = await startDataPath({
    logger: o.logger,
    traceAll: o.traceAll,
    execAll: o.execAll,
    ringBytes: o.ringBytes,
    drainMs: o.drainMs,
    policy: o.policy,
    sinks: o.sinks ?? { outputs: [], options: {}, statsIntervalMs: 60_000 },
    raw: o.raw ? o.out : undefined,
    onEnd: () => stopping?.(0),
  });
  const code = await stopped;
  await path.stop();
  return code;
}
