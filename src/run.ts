import { release } from 'node:os';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { KernelRecord } from './decode/records';
import { KernelSensor } from './kernel/sensor';
import { Pipeline } from './pipeline';
import type { Policy } from './detect/policy';
import { fastJsonLine } from './proto/fast-json';
import { packageRoot } from './paths';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RunOptions {
  logger: Logger;
  raw: boolean;
  traceAll: boolean;
  execAll?: boolean;
  ringBytes: number;
  drainMs: number;
  out: Writable;
  policy?: Policy;
}

const bigintJson = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

export function rawLine(r: KernelRecord): string {
  return JSON.stringify(r, bigintJson);
}

export const HOOKS = [
  'sched_process_fork', 'sched_process_exec', 'sched_process_exit', 'cgroup_mkdir', 'cgroup_rmdir', 'cgroup_attach_task',
  'sys_setns', 'sys_unshare', 'sys_mount', 'sys_chroot', 'sys_pivot_root', 'sys_ptrace',
];

/** Runs until SIGINT/SIGTERM; resolves with the exit code. */
export function runSensor(o: RunOptions): Promise<number> {
  const log = o.logger;
  let lines: string[] = [];
  // One write a batch: a write a line costs more than the decode.
  const flush = () => {
    if (lines.length) {
      o.out.write(`${lines.join('\n')}\n`);
      lines = [];
    }
  };
  let pipeline: Pipeline | undefined;
  const sensor = new KernelSensor(
    { logger: log, traceAll: o.traceAll, execAll: o.execAll, ringBytes: o.ringBytes, drainMs: o.drainMs },
    (batch) => {
      if (pipeline) pipeline.onBatch(batch);
      else for (const r of batch.records) lines.push(rawLine(r));
      flush();
    },
  );
  if (!o.raw) {
    pipeline = new Pipeline({ logger: log, host: sensor.host, policy: o.policy, emit: (e) => lines.push(fastJsonLine(e)) });
  }
  return new Promise((resolve, reject) => {
    let done = false;
    let sweeper: NodeJS.Timeout | undefined;
    const stop = (code: number) => {
      if (done) return;
      done = true;
      if (sweeper) clearInterval(sweeper);
      sensor.close();
      flush();
      log.info({ counters: sensor.counters(), pipeline: pipeline?.stats() }, 'sensor stopped');
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
      if (pipeline) {
        const n = pipeline.start({ version: (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version, kernelRelease: release(), hooks: HOOKS });
        flush();
        log.info({ existing: n }, 'sensor ready');
        sweeper = setInterval(() => pipeline!.sweep(undefined, true), 5000);
        sweeper.unref();
      } else {
        log.info('sensor ready');
      }
    } catch (err) {
      done = true;
      sensor.close();
      reject(err);
    }
  });
}
