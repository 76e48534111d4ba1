// The sensor's data path, wired top to bottom in one function:
//
//   kernel ring → decode → process table → lifecycle → enrich → detect → stamp → publish
//
// and beside it what keeps it healthy and says how it goes: the sweeps of the process table,
// sensorStats events and Prometheus metrics. `--raw` cuts the path after decode: records go out
// as JSON lines.

import { hostname, release } from 'node:os';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { DecodedBatch, KernelRecord } from './decode/records';
import { DecodeStage } from './decode/stage';
import type { Policy } from './detect/policy';
import { EventStamper } from './events';
import { KernelSensor } from './kernel/sensor';
import { procIo, RuntimeSockets, scanRuntimeSockets } from './container/runtime-sockets';
import { DEFAULT_POLICY } from './detect/policy';
import { loadBinding } from './native';
import { sensorVersion } from './paths';
import { Pipeline } from './pipeline';
import { startSinks, type SinkFlags } from './sinks';
import { countersFrom, SensorMetrics, startStatsTicker } from './telemetry';

export interface DataPathOptions {
  logger: Logger;
  traceAll: boolean;
  execAll?: boolean;
  ringBytes: number;
  drainMs: number;
  policy?: Policy;
  sinks: SinkFlags;
  /** --raw: decoded records go here as JSON lines, and nothing after decode runs. */
  raw?: Writable;
  /** The path ends by itself (stdout's reader went away). */
  onEnd: () => void;
}

export interface DataPath {
  /** Drains what the kernel has left through the path, then closes every stage. */
  stop(): Promise<void>;
}

const bigintJson = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

export function rawLine(r: KernelRecord): string {
  return JSON.stringify(r, bigintJson);
}

/** Starts the kernel side and every stage after it; resolves once the sensor is ready. */
export async function startDataPath(o: DataPathOptions): Promise<DataPath> {
  const log = o.logger;
  let onDecoded: (b: DecodedBatch) => void = () => undefined;
  const decode = new DecodeStage(log, (b) => onDecoded(b));
  const kernel = new KernelSensor(
    {
      logger: log, traceAll: o.traceAll, execAll: o.execAll, ringBytes: o.ringBytes, drainMs: o.drainMs,
      watchPorts: (o.policy ?? DEFAULT_POLICY).runtimePorts,
    },
    decode.push,
  );
  if (o.raw) {
    onDecoded = rawLines(o.raw, o);
    return startRaw(kernel, decode, log);
  }

  const hub = await startSinks(o.sinks.outputs, { ...o.sinks.options, logger: log, node: hostname(), bootId: kernel.host.bootId, onStdoutClosed: () => o.onEnd() });
  const stamp = new EventStamper(kernel.host.bootId);
  const publish = (e: Parameters<typeof hub.publish>[0]) => hub.publish(e);
  // process table → lifecycle → enrich → detect, then stamp and publish every event
  // Runtime sockets by inode: pushed to the kernel's filter whenever the set changes.
  const runtimeSockets = new RuntimeSockets(() => scanRuntimeSockets(procIo, kernel.host.hostNs[0]), (list) => {
    try {
      kernel.setRuntimeSockets(list);
      log.debug({ sockets: list.map((s) => ({ path: s.path, source: s.source })) }, 'runtime sockets');
    } catch (err) {
      log.warn({ err }, 'runtime sockets not given to the kernel');
    }
  });
  const pipeline = new Pipeline({
    logger: log, host: kernel.host, policy: o.policy, stamper: stamp, emit: publish, runtimeSockets,
    follow: (l) => kernel.follow(l),
    kill: (pid, start) => loadBinding().killProcess(pid, start),
  });
  onDecoded = (b) => pipeline.onBatch(b);

  const counters = () => countersFrom(kernel.counters(), pipeline.stats(), decode.errors);
  const metrics = o.sinks.metrics ? await new SensorMetrics({ hub, read: counters }).listen(o.sinks.metrics, log) : undefined;
  let sweeper: NodeJS.Timeout | undefined;
  let socketScan: NodeJS.Timeout | undefined;
  let ticker: { stop(): void } | undefined;
  try {
    kernel.start();
    runtimeSockets.refresh();
    socketScan = setInterval(() => runtimeSockets.refresh(), 10_000);
    socketScan.unref();
    const n = pipeline.start({ version: sensorVersion(), kernelRelease: release(), hooks: kernel.hooks() });
    log.info({ existing: n, outputs: o.sinks.outputs.length ? o.sinks.outputs : ['stdout'] }, 'sensor ready');
    sweeper = setInterval(() => pipeline.sweep(undefined, true), 5000);
    sweeper.unref();
    ticker = startStatsTicker({ intervalMs: o.sinks.statsIntervalMs, hub, read: counters, emit: (e) => publish(stamp.stamp(e)) });
  } catch (err) {
    kernel.close();
    await hub.close();
    await metrics?.close();
    throw err;
  }
  return {
    async stop() {
      clearInterval(sweeper);
      clearInterval(socketScan);
      ticker?.stop();
      kernel.close(); // drains what is left into the pipeline first
      await hub.close();
      await metrics?.close();
      log.info({ counters: { ...kernel.counters(), decodeErrors: decode.errors }, pipeline: pipeline.stats(), sinks: hub.stats() }, 'sensor stopped');
    },
  };
}

/** --raw: decoded records → JSON lines on `out`, one write a batch. */
function rawLines(out: Writable, o: DataPathOptions): (b: DecodedBatch) => void {
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') o.onEnd();
    else o.logger.error({ err }, 'stdout failed');
  });
  return (batch) => {
    const raw: string[] = [];
    for (const r of batch.records) raw.push(rawLine(r));
    // One write a batch: a write a line costs more than the decode.
    out.write(`${raw.join('\n')}\n`);
  };
}

function startRaw(kernel: KernelSensor, decode: DecodeStage, log: Logger): DataPath {
  kernel.start();
  log.info('sensor ready');
  return {
    async stop() {
      kernel.close();
      log.info({ counters: { ...kernel.counters(), decodeErrors: decode.errors } }, 'sensor stopped');
    },
  };
}
