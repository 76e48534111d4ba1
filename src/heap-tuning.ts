// How `ctrwatch run` asks V8 to size its heap. By default V8 trades memory for speed: after the
// sensor tracks 10,000 containers it keeps twice its live heap committed (young generation grown
// to its largest, old-generation pages not given back), 190 MB resident for 60 MB of objects.
// --optimize-for-size keeps the committed heap close to what is live (125 MB there). It is set
// at run time because `ctrwatch` starts as a plain `node` script; the flag is read by the
// garbage collector's heuristics whenever they run, so it takes effect from then on (bench/
// README.md, "Pipeline scale", measures it).

import * as v8 from 'node:v8';

let done = false;

/** Once, before the sensor builds its tables. */
export function tuneHeapForSize(): void {
  if (done) return;
  done = true;
  v8.setFlagsFromString('--optimize-for-size');
}
