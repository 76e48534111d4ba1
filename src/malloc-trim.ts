import { loadBinding, type NativeBinding } from './native';

/**
 * At every 5-second sweep of `ctrwatch run`: malloc_trim (native/malloc_trim.cc). What glibc
 * keeps of the C heap once V8's memory reducer has collected an idle sensor's heap is about
 * 10 MB at 10,000 containers (bench/REPORT.md, the scale part's no-trim run); under a steady
 * load the pages are reused and it changes nothing. True when it released some.
 */
export function trimCHeap(binding: Pick<NativeBinding, 'trimMalloc'> = loadBinding()): boolean {
  return binding.trimMalloc();
}
