// What every sink shares: the event handed to sinks, the Sink interface that transports
// implement, their counters, and the errors of this module.

import type { EventInput } from '../proto/schema';

/**
 * How much an event matters when something must be dropped: stats (0) go first, then
 * container records and everything else (1), detections (2) last.
 */
export enum EventClass {
  Stats = 0,
  Record = 1,
  Detection = 2,
}
export const CLASS_NAMES = ['stats', 'record', 'detection'] as const;
export type ClassName = (typeof CLASS_NAMES)[number];

/** The class of an Event.kind member name. */
/**
 * Kinds a reader waits for, a handful per container (start, end, detections): local sinks write
 * them as soon as they come instead of after the rest of the kernel's batch, which under a storm
 * of followed processes is hundreds of records more. Not containerExec: a busy container makes
 * as many of those as it execs.
 */
export function urgentKind(kind: string | undefined): boolean {
  return kind === 'detection' || kind === 'containerStarted' || kind === 'containerCreated' || kind === 'containerExited';
}

export function classOfKind(kind: string | undefined): EventClass {
  return kind === 'detection' ? EventClass.Detection : kind === 'sensorStats' ? EventClass.Stats : EventClass.Record;
}

/** One stamped event, encoded once and shared by every sink. Sinks must not change it. */
export interface SinkEvent {
  /**
   * The event itself, when the offerer has it at hand. The hub does not keep it: sinks use the
   * bytes, and an event object held in a queue until the next flush outlives the young
   * generation, which makes every event cost an old-generation collection.
   */
  readonly event?: EventInput;
  /** The ctrwatch.v1.Event wire form. */
  readonly bytes: Buffer;
  readonly seq: bigint;
  readonly cls: EventClass;
  /** Date.now() when the hub took it: sink latency runs from here. */
  readonly offeredMs: number;
  /** Write without waiting for the batch being handled to end (urgentKind). */
  readonly urgent?: boolean;
}

/** Why an event did not reach a sink's destination. Every drop is counted under one of these. */
export type DropReason =
  | 'queue_full' // the in-memory queue was full (the destination or the disk is slower than the events)
  | 'spool_full' // the on-disk spool was full: evicted, lowest class and oldest first
  | 'closed' // the sink was closed or its destination went away for good (EPIPE)
  | 'write_error' // the file or spool write failed
  | 'bad_seq' // a sequence number that does not increase (a bug upstream)
  | 'spool_corrupt' // unreadable on disk: each corrupt stretch of a segment counts as one (a lower bound)
  | 'too_large'; // the destination refuses this one event for its size (HTTP 413 for a request of one event)

export interface SinkStats {
  name: string;
  /** Events handed to offer(). */
  offered: number;
  /** Events the destination has taken: written (stdout, file) or acknowledged (grpc). */
  delivered: number;
  /** Events waiting in memory. */
  queued: number;
  /** Events and bytes waiting on disk (network sinks). */
  spooledEvents: number;
  spooledBytes: number;
  /** Drops by reason, then by class name. */
  dropped: Partial<Record<DropReason, Partial<Record<ClassName, number>>>>;
  /** Failures that did not lose events (retried): connect, stream errors, garbage replies, ... */
  failures: Record<string, number>;
  /** Seconds from offer to delivered, for the last batch. */
  lastLatencySeconds?: number;
  connected?: boolean;
}

export interface Sink {
  readonly name: string;
  /** Take an event. O(1), never blocks, never throws: what cannot be kept is counted as dropped. */
  offer(ev: SinkEvent): void;
  stats(): SinkStats;
  /** Deliver what can be delivered within the sink's close timeout, then release everything. Idempotent. */
  close(): Promise<void>;
  /** Called with the latency (s) of each delivered batch; set by the hub for metrics. */
  onDelivered?: (seconds: number, events: number) => void;
}

export class SinkError extends Error {
  override name = 'SinkError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A bad --output URL or option: says which and why. */
export class OutputSpecError extends SinkError {
  override name = 'OutputSpecError';
}

export function totalDrops(s: SinkStats): number {
  let n = 0;
  for (const byClass of Object.values(s.dropped)) for (const c of Object.values(byClass ?? {})) n += c ?? 0;
  return n;
}

export function countDrop(s: SinkStats, reason: DropReason, cls: EventClass, n = 1): void {
  const byClass = (s.dropped[reason] ??= {});
  const name = CLASS_NAMES[cls];
  byClass[name] = (byClass[name] ?? 0) + n;
}

export function emptyStats(name: string): SinkStats {
  return { name, offered: 0, delivered: 0, queued: 0, spooledEvents: 0, spooledBytes: 0, dropped: {}, failures: {} };
}

/** A spooling sink's stats: its counters as a snapshot, with queue and spool depth. */
export function spooledStats(
  counters: SinkStats,
  queued: number,
  connected: boolean,
  sp: { events: number; bytes: number; corruptSegments: number; failures?: Record<string, number> },
): SinkStats {
  return {
    ...counters,
    queued,
    spooledEvents: sp.events,
    spooledBytes: sp.bytes,
    connected,
    dropped: structuredClone(counters.dropped),
    failures: { ...counters.failures, ...sp.failures, ...(sp.corruptSegments ? { spool_corrupt: sp.corruptSegments } : {}) },
  };
}
