// `ctrwatch run --young-mb` (default 16): V8's young generation held at about that many MiB.
//
// Under load V8 grows its young generation from 2 MB to 32 MB (both semi-spaces) and keeps it;
// with 10,000 containers tracked that was about a fifth of the sensor's resident memory. Node's
// --max-semi-space-size would cap it but is read only when the isolate is made, and ctrwatch
// starts as a plain script or as the single executable, where node's command line is not ours.
// So the addon watches the space from a collector callback and stops its growth at the cap
// (native/young_gen.cc). A smaller young generation is collected more often: the CPU that costs
// per record, and the memory it saves, are in bench/REPORT-memory.md (the young generation A/B,
// the young-uncapped run).

import { givenToNode } from './heap-tuning';
import { loadBinding, type NativeBinding } from './native';

export const YOUNG_MB_DEFAULT = 16;
/** V8 starts the young generation at 2 MiB (two 1 MiB semi-spaces): a smaller cap means nothing. */
export const YOUNG_MB_MIN = 2;
/** V8's own largest young generation is 32 MiB (two 16 MiB semi-spaces). */
export const YOUNG_MB_MAX = 32;

/** node flags that size the young generation: given on node's command line or in NODE_OPTIONS, the operator's choice stands. */
const SIZING_FLAGS = ['max-semi-space-size', 'min-semi-space-size', 'semi-space-growth-factor'];

/** Whether node was started with a flag that sizes the young generation (command line or NODE_OPTIONS). */
export function youngSizedByNode(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return givenToNode(SIZING_FLAGS, execArgv, nodeOptions);
}

/**
 * Once, before the sensor builds its tables. False when nothing was capped: node's command line
 * sizes the young generation itself, or this V8 has no young space to watch.
 */
export function capYoungGeneration(
  mb: number,
  binding: Pick<NativeBinding, 'capYoungGen'> = loadBinding(),
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): boolean {
  if (youngSizedByNode(execArgv, nodeOptions)) return false;
  return binding.capYoungGen(mb * 1024 * 1024);
}
