import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { KernelRecord } from './decode/records';
import { KernelSensor } from './kernel/sensor';

export interface RunOptions {
  logger: Logger;
  raw: boolean;
  traceAll: boolean;
  ringBytes: number;
  drainMs: number;
  out: Writable;
}

const bigintJson = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

export function rawLine(r: KernelRecord): string {
  return JSON.stringify(r, bigintJson);
}

/** Runs until SIGINT/SIGTERM; resolves with the exit code. */
export function runSensor(o: RunOptions): Promise<number> {
  const log = o.logger;
  return new Promise((resolve, reject) => {
    let chunks: string[] = [];
    const sensor = new KernelSensor(
      { logger: log, traceAll: o.traceAll, ringBytes: o.ringBytes, drainMs: o.drainMs },
      (batch) => {
        for (const r of batch.records) chunks.push(rawLine(r));
        if (chunks.length) {
          // One write a batch: a write a record costs more than the decode.
          o.out.write(`${chunks.join('\n')}\n`);
          chunks = [];
        }
      },
    );
    let done = false;
    const stop = (code: number) => {
      if (done) return;
      done = true;
      sensor.close();
      log.info({ counters: sensor.counters() }, 'sensor stopped');
      resolve(code);
    };
    o.out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') stop(0);
      else log.error({ err }, 'stdout failed');
    });
    process.once('SIGINT', () => stop(0));
    process.once('SIGTERM', () => stop(0));
    try {
      sensor.start();
    } catch (err) {
      done = true;
      reject(err);
      return;
    }
    log.info('sensor ready');
  });
}
