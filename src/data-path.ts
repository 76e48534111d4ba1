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
import { Pipeline, type PipelineOptions } from './pipeline';
import { startSinks, type SinkFlags, type SinkHub } from './sinks';
import { countersFrom, startStatsTicker, type SensorCounters } from './telemetry/stats-event';
import { runUpkeep } from './upkeep';

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
  const kernel = kernelSensor(o, decode);
  if (o.raw) {
    onDecoded = rawLines(o.raw, o);
    return startRaw(kernel, decode, log);
  }

  const hub = await openHub(o, kernel);
  const stamp = new EventStamper(kernel.host.bootId);
  // process table → lifecycle → enrich → detect, then stamp and publish every event
  // The socket scan skips the pipeline's container processes; the pipeline is made after it.
  let inContainer = (_pid: number) => false;
  const runtimeSockets = runtimeSocketsOf(kernel, log, (pid) => inContainer(pid));
  const pipeline = new Pipeline({
    logger: log,
    host: kernel.host,
    policy: o.policy,
    stamper: stamp,
    emit: (e, urgent) => hub.publish(e, urgent),
    runtimeSockets,
    ...kernelHands(kernel),
  });
  onDecoded = (b) => pipeline.onBatch(b);
  inContainer = (pid) => pipeline.procs.inOtherMountNs(pid, kernel.host.hostNs[0]);

  const counters = () => countersFrom(kernel.counters(), pipeline.stats(), decode.errors);
  const metrics = o.sinks.metrics ? await startMetrics(o.sinks.metrics, hub, counters, log) : undefined;
  let stopTimers = () => {};
  let ticker: { stop(): void } | undefined;
  try {
    kernel.start();
    runtimeSockets.refresh();
    const n = pipeline.start({ version: sensorVersion(), kernelRelease: release(), hooks: kernel.hooks() });
    log.info({ existing: n, outputs: o.sinks.outputs.length ? o.sinks.outputs : ['stdout'] }, 'sensor ready');
    stopTimers = every([
      [() => runtimeSockets.refresh(), 10_000],
      [runUpkeep(pipeline, log), 5000],
    ]);
    ticker = startStatsTicker({ intervalMs: o.sinks.statsIntervalMs, hub, read: counters, emit: (e) => hub.publish(stamp.stamp(e)) });
  } catch (err) {
    kernel.close();
    pipeline.flush();
    await hub.close();
    await metrics?.close();
    throw err;
  }
  return {
    async stop() {
      stopTimers();
      ticker?.stop();
      kernel.close(); // drains what is left into the pipeline first
      pipeline.flush();
      await hub.close();
      await metrics?.close();
      const counters = { ...kernel.counters(), decodeErrors: decode.errors };
      log.info({ counters, pipeline: pipeline.stats(), sinks: hub.stats() }, 'sensor stopped');
    },
  };
}

/** Every output, started; their hub. */
function openHub(o: DataPathOptions, kernel: KernelSensor): Promise<SinkHub> {
  return startSinks(o.sinks.outputs, {
    ...o.sinks.options,
    logger: o.logger,
    node: hostname(),
    bootId: kernel.host.bootId,
    onStdoutClosed: o.onEnd,
  });
}

/** The Prometheus endpoint. prom-client is loaded only then: resident memory every other sensor would carry. */
async function startMetrics(address: string, hub: SinkHub, read: () => SensorCounters, log: Logger) {
  const { SensorMetrics } = await import('./telemetry/metrics');
  return new SensorMetrics({ hub, read }).listen(address, log);
}

/** What the pipeline asks of the kernel side: follow older processes, kill for a containment policy, fill the containment maps. */
function kernelHands(kernel: KernelSensor): Pick<PipelineOptions, 'follow' | 'kill' | 'contain' | 'tokens'> {
  return { follow: (l) => kernel.follow(l), kill: (pid, start) => loadBinding().killProcess(pid, start), contain: kernel, tokens: kernel };
}

/** Runs each task every so many ms (timers that do not keep the process alive); returns their stop. */
function every(tasks: [() => void, number][]): () => void {
  const timers = tasks.map(([fn, ms]) => setInterval(fn, ms).unref());
  return () => timers.forEach((t) => clearInterval(t));
}

/** The kernel side, handing each drained buffer to the decode stage. */
function kernelSensor(o: DataPathOptions, decode: DecodeStage): KernelSensor {
  const { logger, traceAll, execAll, ringBytes, drainMs } = o;
  return new KernelSensor(
    { logger, traceAll, execAll, ringBytes, drainMs, watchPorts: (o.policy ?? DEFAULT_POLICY).runtimePorts },
    decode.push,
  );
}

/** Runtime sockets by inode: pushed to the kernel's filter whenever the set changes. */
function runtimeSocketsOf(kernel: KernelSensor, log: Logger, skip: (pid: number) => boolean): RuntimeSockets {
  return new RuntimeSockets(
    () => scanRuntimeSockets(procIo, kernel.host.hostNs[0], skip),
    (list) => {
      try {
        kernel.setRuntimeSockets(list);
        log.debug({ sockets: list.map((s) => ({ path: s.path, source: s.source })) }, 'runtime sockets');
      } catch (err) {
        log.warn({ err }, 'runtime sockets not given to the kernel');
      }
    },
  );
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
