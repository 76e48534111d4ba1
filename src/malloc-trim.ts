import { loadBinding, type NativeBinding } from './native';

/**
 * At the end of every 5-second upkeep of `ctrwatch run` (src/upkeep.ts): malloc_trim
 * (native/malloc_trim.cc). Under a steady load the C heap's freed pages are soon reused and this
 * changes little; once the load stops, the pages that Buffers and V8's threads freed leave the
 * process's RSS instead of staying resident (bench/REPORT.md's scale part: the default and
 * no-trim runs). True when it released some.
 */
export function trimCHeap(binding: Pick<NativeBinding, 'trimMalloc'> = loadBinding()): boolean {
  return binding.trimMalloc();
}
