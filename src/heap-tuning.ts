// How `ctrwatch run` tunes V8's garbage collector. All of it is set at run time because `ctrwatch`
// starts as a plain `node` script or as the single executable, where node's own command line is
// not ours to give; the collector reads these flags whenever it runs.
//
// Always (tuneGc): allocation-site pretenuring off. With it on, V8 switches an allocation site
// whose objects mostly survived young-generation collections to allocating them in the old
// generation (decided at collections of a full-size young generation), and the pipeline ran at
// one of two speeds from one process to the next: the recorded fork/exec/exit mix at about 0.9
// or 1.6 M records per CPU-second. With it off no process ran slow (bench/REPORT.md, the garbage
// collector A/B). Tracing the decisions changes the timing enough to hide the slow mode, so
// which sites it tenured there is not known.
//
// `ctrwatch run --small-heap` (tuneHeapForSize): V8 keeps its heap close to what is live. By
// default V8 trades memory for speed: with 10,000 containers tracked it keeps about twice the live
// heap committed (pages not given back after the start-up burst: old space, and a young
// generation grown to 32 MB, which src/young-gen.ts now caps).
// --optimize-for-size keeps the committed heap close to what is live but costs the pipeline about
// a quarter more CPU per record (bench/pipeline-proc.js throughput), so it is a choice for big
// nodes, not the default. The old generation's growth alone is limited by default
// (src/heap-growth.ts); --semi-space-growth-factor=1 cost as much CPU as --optimize-for-size.

import { performance } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

const PRETENURING = 'allocation-site-pretenuring';

/** Whether node was started with this V8 flag either way (`node --no-X bin/ctrwatch`; V8 also reads '_' for '-' and "--noX"). */
export function flagGiven(flag: string, execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.some((a) => {
    const n = a.replace(/^--?/, '').split('=')[0].replace(/_/g, '-');
    return a.startsWith('-') && (n === flag || n === `no-${flag}` || n === `no${flag}`);
  });
}

/** Whether node was started with any of these V8 flags, on its command line or in NODE_OPTIONS. */
export function givenToNode(
  flags: readonly string[],
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): boolean {
  const given = [...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)];
  return flags.some((f) => flagGiven(f, given));
}

let gcDone = false;

/**
 * Once, before the sensor builds its tables: allocation-site pretenuring off, unless node was
 * started with that flag either way (the operator's choice stands). True when it set it.
 */
export function tuneGc(execArgv: readonly string[] = process.execArgv): boolean {
  if (gcDone || flagGiven(PRETENURING, execArgv)) return false;
  gcDone = true;
  v8.setFlagsFromString(`--no-${PRETENURING}`);
  return true;
}

const SIZE = 'optimize-for-size';
let sizeDone = false;

/** Once, before the sensor builds its tables. */
export function tuneHeapForSize(): void {
  if (sizeDone) return;
  sizeDone = true;
  v8.setFlagsFromString(`--${SIZE}`);
}

// Always (QuietHeap, at each upkeep): the heap given back once the sensor is quiet. Under load V8
// grows the young generation and fills the old one with garbage it collects only when more is
// allocated; an idle sensor allocates too little for either, so after a burst it kept the burst's
// RSS while it stayed idle: 165 MB at 10,000 containers, 114 MB of heap committed, 40 s after the
// load (bench/REPORT-memory.md, the no-quiet-gc run), where the default run's collections left
// 51 MB committed. So while records are few, each upkeep makes a full collection with V8
// optimizing for size, as --small-heap's collections do: it compacts the old generation, and V8
// shrinks the young one at such a collection once it has seen a few seconds of little allocation
// (not at the first). Each costs its pause (the bench's idle upkeeps say how long). They go on
// while the young generation is grown or the last one gave back memory: with the young generation
// capped (src/young-gen.ts) it is small from the start, and stopping at that alone left the old
// generation's garbage committed (133–136 MB idle against 101–109 uncapped, 10,000 containers).

type Gc = () => void;

/**
 * V8's own gc(): node's if it was started with --expose-gc, else one made in a context of its
 * own; undefined when this node gives none (the quiet heap then stops asking).
 */
function collector(): Gc | undefined {
  const g = (globalThis as { gc?: unknown }).gc;
  if (typeof g === 'function') return g as Gc;
  // The flag is read when a context is made: on for that one context only, so that no other
  // code gets a gc() it did not ask for.
  v8.setFlagsFromString('--expose-gc');
  try {
    const made: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    return typeof made === 'function' ? (made as Gc) : undefined;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

/**
 * A full collection made while V8 optimizes for size, the flag off again after; left as it is
 * under --small-heap, or when node's command line names it either way (the operator's choice).
 * False when there is no gc() to call.
 */
function compactingCollection(execArgv: readonly string[]): () => boolean {
  // Fetched at start (the flag switched on and off once), not in the first quiet time's upkeep.
  const gc = collector();
  const given = flagGiven(SIZE, execArgv);
  return () => {
    if (!gc) return false;
    const toggle = !sizeDone && !given;
    if (toggle) v8.setFlagsFromString(`--${SIZE}`);
    try {
      gc();
    } finally {
      if (toggle) v8.setFlagsFromString(`--no-${SIZE}`);
    }
    return true;
  };
}

/** Below this many records a second since the last upkeep the sensor is quiet. */
export const QUIET_RECORDS_PER_S = 1000;
/** A young generation at most this big was given back already (V8 starts it at 1-2 MB). */
export const YOUNG_SMALL_BYTES = 4 << 20;
/** A collection that gave back less than this: the next would give back no more. */
export const GIVEN_BACK_BYTES = 4 << 20;
/** Collections at most in one quiet time (half a minute of upkeeps), however V8 answers them. */
export const QUIET_COLLECTIONS_MAX = 6;

export interface QuietHeapHooks {
  /** The young generation's committed bytes. */
  youngBytes: () => number;
  /** The whole heap's committed bytes. */
  heapBytes: () => number;
  /** The full collection that gives memory back; false when there is none to make. */
  collect: () => boolean;
  nowMs: () => number;
}

/** V8's young generation, committed bytes. */
export function youngGenerationBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

const v8Hooks = (execArgv: readonly string[]): QuietHeapHooks => ({
  youngBytes: youngGenerationBytes,
  heapBytes: () => v8.getHeapStatistics().total_heap_size,
  collect: compactingCollection(execArgv),
  nowMs: () => performance.now(),
});

/** Busy upkeeps in a row that end a quiet time (a load, not one burst). */
export const BUSY_TO_RESET = 2;

export class QuietHeap {
  private records = -1;
  private at = 0;
  private inQuiet = 0;
  private busy = 0;
  /** Heap bytes committed before the last collection. */
  private before = 0;
  private off = false;
  /** Collections it made. */
  collections = 0;

  constructor(private readonly hooks: QuietHeapHooks = v8Hooks(process.execArgv)) {}

  /** No more collections (a failure in the upkeep's step). */
  stop(): void {
    this.off = true;
  }

  /**
   * At each upkeep, with the pipeline's record count so far. When fewer than QUIET_RECORDS_PER_S
   * came since the last call: a collection, first in a quiet time, then while the young generation
   * is bigger than YOUNG_SMALL_BYTES (V8 shrinks it at a collection optimizing for size) or the
   * heap committed GIVEN_BACK_BYTES less than before the last one; at most QUIET_COLLECTIONS_MAX
   * until BUSY_TO_RESET busy upkeeps in a row end the quiet time. A rate swinging around the
   * threshold does not restart the collections at every swing. True when it collected.
   */
  tick(records: number): boolean {
    const now = this.hooks.nowMs();
    const first = this.records < 0;
    const rate = ((records - this.records) * 1000) / Math.max(1, now - this.at);
    this.records = records;
    this.at = now;
    if (first || this.off) return false;
    if (rate >= QUIET_RECORDS_PER_S) {
      if (++this.busy >= BUSY_TO_RESET) this.inQuiet = 0;
      return false;
    }
    this.busy = 0;
    if (this.inQuiet >= QUIET_COLLECTIONS_MAX) return false;
    const heap = this.hooks.heapBytes();
    // Measured an upkeep later, not at once: V8 unmaps the pages a collection freed on a thread of its own.
    if (this.inQuiet > 0 && this.before - heap < GIVEN_BACK_BYTES && this.hooks.youngBytes() <= YOUNG_SMALL_BYTES) return false;
    this.inQuiet++;
    this.before = heap;
    if (!this.hooks.collect()) {
      this.stop();
      return false;
    }
    this.collections++;
    return true;
  }
}
