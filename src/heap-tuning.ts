// `ctrwatch run --small-heap`: how the sensor asks V8 to keep its heap small. By default V8
// trades memory for speed: with 10,000 containers tracked it keeps about twice the live heap
// committed (pages not given back after the start-up burst, mostly old space: a young generation
// capped at start with node's --max-semi-space-size=2 left it nearly as large; bench/REPORT.md,
// "Pipeline at scale", has the figures). --optimize-for-size keeps the
// committed heap close to what is live but costs the pipeline about a quarter more CPU per record
// (bench/pipeline-proc.js throughput), so it is a choice for big nodes, not the default. Narrower
// flags settable at run time (--semi-space-growth-factor=1, --heap-growing-percent) cost as much
// CPU. It is set at run time because `ctrwatch` starts as a plain `node` script; the garbage
// collector's heuristics read the flag whenever they run.

import * as v8 from 'node:v8';

let done = false;

/** Once, before the sensor builds its tables. */
export function tuneHeapForSize(): void {
  if (done) return;
  done = true;
  v8.setFlagsFromString('--optimize-for-size');
}
