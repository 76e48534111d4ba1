// `ctrwatch run --heap-growth=N` (default 30): after each full collection V8 lets the old
// generation grow by N% of what that collection left before it makes the next one.
//
// V8 chooses that factor itself, up to 4 for a heap of node's default limit, and let the sensor's
// heap double: with 10,000 containers tracked, 44 MB live, the heap grew to 89 MB in 20 s of a
// steady mix with no full collection, most of it promoted garbage (short-lived processes kept a
// second or so, past two young collections). A fixed factor keeps the heap nearer what is live at
// the cost of more full collections. V8 still lets a heap grow by about 16 MB at least: in the
// pipeline bench's throughput mode (by hand, PIPELINE_GROWTH=30 and =off with --trace-gc) an 18 MB
// live heap was collected at 34-37 MB, 17 full collections where V8's factor (collecting at 81-84
// MB) made 5; that is what the container mix pays in the A/B. --heap-growing-percent is read at
// every full collection, so it can be set after start (node's command line is not ours:
// src/heap-tuning.ts).
// What it saves and costs: bench/REPORT-memory.md (the growth-off run, the heap growth A/B).

import * as v8 from 'node:v8';
import { givenToNode } from './heap-tuning';

export const HEAP_GROWTH_DEFAULT = 30;
/** Below this a full collection would follow almost every promotion. */
export const HEAP_GROWTH_MIN = 5;
/** V8's own largest factor is 4 (300%). */
export const HEAP_GROWTH_MAX = 300;

const FLAG = 'heap-growing-percent';

/** Whether node was started with V8's own flag, on its command line or in NODE_OPTIONS: the operator's choice stands. */
export function growthGivenToNode(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return givenToNode([FLAG], execArgv, nodeOptions);
}

/** Once, before the sensor builds its tables. False when node's flag stands instead. */
export function limitHeapGrowth(
  percent: number,
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): boolean {
  if (!Number.isInteger(percent) || percent < HEAP_GROWTH_MIN || percent > HEAP_GROWTH_MAX)
    throw new RangeError(`heap growth must be a whole number from ${HEAP_GROWTH_MIN} to ${HEAP_GROWTH_MAX}, got ${percent}`);
  if (growthGivenToNode(execArgv, nodeOptions)) return false;
  v8.setFlagsFromString(`--${FLAG}=${percent}`);
  return true;
}
