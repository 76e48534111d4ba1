// `ctrwatch run --nice=N`: the sensor's CPU priority. A container start reaches stdout only
// after the sensor's thread has run: woken by the kernel, it decodes the batch, decides, writes.
// On a node whose CPUs are busy with containers, each of those wake-ups waits behind them for a
// CPU. A modestly raised priority (nice -5 by default: a weight about three times a nice-0
// task's) lets the sensor run sooner when woken; it does not make it do more work, so what it
// costs the containers stays what it was (bench/README.md, overhead and latency parts). Linux
// keeps nice per thread: it is set on the main thread, which reads the kernel's rings, runs the
// pipeline and writes stdout; the thread-pool threads it starts later inherit it. Nothing on
// the host changes: the value lives and dies with the process.

import { setPriority } from 'node:os';
import type { Logger } from 'pino';

export const DEFAULT_NICE = -5;

/** --nice's value: a nice level, or undefined for 'off' (keep the inherited one). Throws RangeError on anything else. */
export function parseNice(v: string | undefined): number | undefined {
  if (v === undefined) return DEFAULT_NICE;
  if (v === 'off') return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < -20 || Number(v) > 19)
    throw new RangeError(`--nice must be a whole number from -20 to 19, or 'off', got '${v}'`);
  return Number(v);
}

/** Sets the calling thread's nice level; a refusal (no CAP_SYS_NICE) is logged, not fatal. */
export function applyNice(nice: number, log: Logger, set: (n: number) => void = (n) => setPriority(n)): boolean {
  try {
    set(nice);
    return true;
  } catch (err) {
    log.warn({ err, nice }, 'cannot set the sensor’s nice level: it keeps the inherited one (--nice=off silences this)');
    return false;
  }
}
