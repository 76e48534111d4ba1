// `ctrwatch run --small-heap`: how the sensor asks V8 to keep its heap small. By default V8
// trades memory for speed: with 10,000 containers tracked it keeps twice the live heap committed
// (young generation grown to its largest, old-generation pages not given back), 177 MB resident
// for 52 MB of objects. --optimize-for-size keeps the committed heap close to what is live
// (128 MB there) but costs the pipeline about a quarter more CPU per record (bench/pipeline-proc.js
// throughput: 93,000 against 126,000-131,000 records per CPU-second), so it is a choice for big
// nodes, not the default. It is set at run time because `ctrwatch` starts as a plain `node`
// script; the garbage collector's heuristics read the flag whenever they run.

import * as v8 from 'node:v8';

let done = false;

/** Once, before the sensor builds its tables. */
export function tuneHeapForSize(): void {
  if (done) return;
  done = true;
  v8.setFlagsFromString('--optimize-for-size');
}
