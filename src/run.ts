import { hostname, release } from 'node:os';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { KernelRecord } from './decode/records';
import type { Policy } from './detect/policy';
import { KernelSensor } from './kernel/sensor';
import { sensorVersion } from './paths';
import { Pipeline } from './pipeline';
import { countersFrom, SensorMetrics, startSinks, startStatsTicker, type SinkFlags } from './sinks';

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

const bigintJson = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

export function rawLine(r: KernelRecord): string {
  return JSON.stringify(r, bigintJson);
}

/** Runs until SIGINT/SIGTERM (or stdout closes); resolves with the exit code. */
export async function runSensor(o: RunOptions): Promise<number> {
  const log = o.logger;
  let pipeline: Pipeline | undefined;
  let raw: string[] = [];
  const sensor = new KernelSensor(
    { logger: log, traceAll: o.traceAll, execAll: o.execAll, ringBytes: o.ringBytes, drainMs: o.drainMs },
    (batch) => {
      if (pipeline) {
        pipeline.onBatch(batch);
        return;
      }
      for (const r of batch.records) raw.push(rawLine(r));
      // One write a batch: a write a line costs more than the decode.
      o.out.write(`${raw.join('\n')}\n`);
      raw = [];
    },
  );

  let stopping: ((code: number) => void) | undefined;
  const stopped = new Promise<number>((resolve) => (stopping = resolve));
  const sf = o.sinks ?? { outputs: [], options: {}, statsIntervalMs: 60_000 };
  const hub = o.raw
    ? undefined
    : await startSinks(sf.outputs, { ...sf.options, logger: log, node: hostname(), bootId: sensor.host.bootId, onStdoutClosed: () => stopping?.(0) });
  if (hub) pipeline = new Pipeline({ logger: log, host: sensor.host, policy: o.policy, emit: (e) => hub.publish(e) });
  if (o.raw) {
    o.out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') stopping?.(0);
      else log.error({ err }, 'stdout failed');
    });
  }

  const counters = () => countersFrom(sensor.counters(), pipeline?.stats());
  const metrics = hub && sf.metrics ? await new SensorMetrics({ hub, read: counters }).listen(sf.metrics, log) : undefined;
  let ticker: { stop(): void } | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  process.once('SIGINT', () => stopping?.(0));
  process.once('SIGTERM', () => stopping?.(0));
  try {
    sensor.start();
    if (pipeline && hub) {
      const n = pipeline.start({ version: sensorVersion(), kernelRelease: release(), hooks: sensor.hooks() });
      log.info({ existing: n, outputs: sf.outputs.length ? sf.outputs : ['stdout'] }, 'sensor ready');
      sweeper = setInterval(() => pipeline!.sweep(undefined, true), 5000);
      sweeper.unref();
      const p = pipeline;
      ticker = startStatsTicker({ intervalMs: sf.statsIntervalMs, hub, read: counters, emit: (e) => hub.publish(p.stamper.stamp(e)) });
    } else {
      log.info('sensor ready');
    }
  } catch (err) {
    sensor.close();
    await hub?.close();
    await metrics?.close();
    throw err;
  }

  const code = await stopped;
  if (sweeper) clearInterval(sweeper);
  ticker?.stop();
  sensor.close(); // drains what is left into the pipeline first
  await hub?.close();
  await metrics?.close();
  log.info({ counters: sensor.counters(), pipeline: pipeline?.stats(), sinks: hub?.stats() }, 'sensor stopped');
  return code;
}
