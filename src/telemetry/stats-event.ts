// The sensorStats event: the sensor's counters (passed in by the caller: kernel, decoder,
// pipeline) and the sinks' own, emitted every interval (a minute by default).

import type { EventInput } from '../proto/schema';
import type { HubStats, SinkHub } from '../sinks/hub';
import { CLASS_NAMES } from '../sinks/types';

export type Num = number | bigint;

/** Cumulative counters of the sensor, since it started. Every field optional. */
export interface SensorCounters {
  eventsEmitted?: Num;
  recordsDecoded?: Num;
  decodeErrors?: Num;
  /** Records the kernel could not put in the ring buffer. */
  ringBufferDrops?: Num;
  kernelReadErrors?: Num;
  enrichFailures?: Num;
  containersTracked?: Num;
  processesTracked?: Num;
  detections?: Num;
  /** Failed reads and writes of the image first-seen store. */
  imageStoreErrors?: { read: Num; write: Num };
  /** Decoded kernel records by type ("exec", "fork", ...). */
  recordsByType?: Record<string, Num>;
  /** Raw kernel counters by name (sent_exec, dropped_exec, kill_setns_host_killed, ...). */
  kernel?: Record<string, Num>;
  /** Containment outcomes of detections, "<rule>.<outcome>.<path>" (escape.setns-host.killed.kernel). */
  containment?: Record<string, Num>;
}

export type SensorStatsInput = NonNullable<EventInput['sensorStats']>;

const big = (v: Num | undefined): bigint => (v === undefined ? 0n : BigInt(v));

/**
 * sensorStats from the caller's counters and the hub's. Sink counters go into `counters` as
 * "sink.<name>.<what>", e.g. "sink.grpc://c:4317.dropped.spool_full.stats".
 */
export function buildSensorStats(c: SensorCounters, hub?: HubStats): SensorStatsInput {
  const counters: Record<string, bigint> = {};
  if (c.decodeErrors !== undefined) counters.decode_errors = big(c.decodeErrors);
  for (const [k, v] of Object.entries(c.recordsByType ?? {})) counters[`records.${k}`] = big(v);
  for (const [k, v] of Object.entries(c.kernel ?? {})) counters[`kernel.${k}`] = big(v);
  if (c.imageStoreErrors) {
    counters['image_store.read_errors'] = big(c.imageStoreErrors.read);
    counters['image_store.write_errors'] = big(c.imageStoreErrors.write);
  }
  for (const [k, v] of Object.entries(c.containment ?? {})) counters[`containment.${k}`] = big(v);
  if (hub) {
    counters['sinks.encode_errors'] = BigInt(hub.encodeErrors);
    for (const s of hub.sinks) {
      const p = `sink.${s.name}`;
      counters[`${p}.delivered`] = BigInt(s.delivered);
      counters[`${p}.queued`] = BigInt(s.queued);
      if (s.spooledEvents || s.spooledBytes) {
        counters[`${p}.spooled_events`] = BigInt(s.spooledEvents);
        counters[`${p}.spooled_bytes`] = BigInt(s.spooledBytes);
      }
      for (const [reason, byClass] of Object.entries(s.dropped)) {
        for (const cls of CLASS_NAMES) if (byClass?.[cls]) counters[`${p}.dropped.${reason}.${cls}`] = BigInt(byClass[cls]!);
      }
      for (const [reason, n] of Object.entries(s.failures)) counters[`${p}.failures.${reason}`] = BigInt(n);
    }
  }
  return {
    eventsEmitted: big(c.eventsEmitted),
    ringBufferDrops: big(c.ringBufferDrops),
    kernelReadErrors: big(c.kernelReadErrors),
    recordsDecoded: big(c.recordsDecoded),
    enrichFailures: big(c.enrichFailures),
    containersTracked: big(c.containersTracked),
    processesTracked: big(c.processesTracked),
    sinkDrops: BigInt(hub?.sinkDrops ?? 0) + BigInt(hub?.encodeErrors ?? 0),
    detections: big(c.detections),
    counters,
  };
}

export interface StatsTickerOptions {
  /** Default 60 000. */
  intervalMs?: number;
  read: () => SensorCounters;
  hub: SinkHub;
  /** Receives { sensorStats }: stamp it (seq, time, node, boot) and publish it like any event. */
  emit: (e: EventInput) => void;
}

/** Emit sensorStats every interval until stop(). The timer does not keep the process alive. */
export function startStatsTicker(o: StatsTickerOptions): { stop(): void; tick(): void } {
  const tick = () => o.emit({ sensorStats: buildSensorStats(o.read(), o.hub.stats()) });
  const timer = setInterval(tick, o.intervalMs ?? 60_000);
  timer.unref();
  return { stop: () => clearInterval(timer), tick };
}

/**
 * SensorCounters from what the sensor has: KernelSensor.counters() and Pipeline.stats()
 * (structurally typed, so that this module does not depend on them). Records by type are the
 * kernel's sent_<type> counters.
 */
export function countersFrom(
  k: { kernel: Record<string, number>; records: number; dropped: number },
  p?: {
    events: number;
    detections: number;
    processes: number;
    containers: number;
    enrichFailures?: number;
    imageStoreErrors?: { read: number; write: number };
    containment?: Record<string, number>;
  },
  decodeErrors = 0,
): SensorCounters {
  const recordsByType: Record<string, number> = {};
  for (const [name, v] of Object.entries(k.kernel)) if (name.startsWith('sent_')) recordsByType[name.slice(5)] = v;
  return {
    recordsDecoded: k.records,
    decodeErrors,
    ringBufferDrops: k.dropped,
    kernel: k.kernel,
    recordsByType,
    eventsEmitted: p?.events,
    detections: p?.detections,
    processesTracked: p?.processes,
    containersTracked: p?.containers,
    enrichFailures: p?.enrichFailures,
    imageStoreErrors: p?.imageStoreErrors,
    containment: p?.containment,
  };
}
