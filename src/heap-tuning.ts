// How `ctrwatch run` tunes V8's garbage collector. Both are set at run time because `ctrwatch`
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
// generation grown to 32 MB; capping that on node's command line, --max-semi-space-size=2, grew
// old space by as much).
// --optimize-for-size keeps the committed heap close to what is live but costs the pipeline about
// a quarter more CPU per record (bench/pipeline-proc.js throughput), so it is a choice for big
// nodes, not the default. Narrower flags settable at run time (--semi-space-growth-factor=1,
// --heap-growing-percent) cost as much CPU.

import * as v8 from 'node:v8';

const PRETENURING = 'allocation-site-pretenuring';

/** Whether node was started with this V8 flag either way (`node --no-X bin/ctrwatch`; V8 also reads '_' for '-' and "--noX"). */
export function flagGiven(flag: string, execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.some((a) => {
    const n = a.replace(/^--?/, '').split('=')[0].replace(/_/g, '-');
    return a.startsWith('-') && (n === flag || n === `no-${flag}` || n === `no${flag}`);
  });
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

let sizeDone = false;

/** Once, before the sensor builds its tables. */
export function tuneHeapForSize(): void {
  if (sizeDone) return;
  sizeDone = true;
  v8.setFlagsFromString('--optimize-for-size');
}
