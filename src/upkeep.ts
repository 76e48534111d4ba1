import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Logger } from 'pino';
import { QuietHeap } from './heap-tuning';
import { trimCHeap } from './malloc-trim';
import type { Pipeline } from './pipeline';

export interface UpkeepSteps {
  /** The /proc prune step of the sweep (off only where the pids are synthetic: the bench). */
  prune: boolean;
  /** The heap given back when the sensor was quiet (src/heap-tuning.ts). */
  quiet?: QuietHeap;
  /** The C heap's trim (src/malloc-trim.ts). */
  trim?: () => boolean;
  /** Where each quiet collection is logged (debug: its pause, the heap it left committed) and that step's failure (warn). */
  log?: Pick<Logger, 'debug' | 'warn'>;
}

/**
 * `ctrwatch run`'s 5-second upkeep: the pipeline's sweep, then what the heaps can give back:
 * V8's heap when the sensor was quiet, then the C heap's free pages.
 */
export function upkeep(pipeline: Pick<Pipeline, 'sweep' | 'recordCount'>, steps: UpkeepSteps): void {
  pipeline.sweep(undefined, steps.prune);
  if (steps.quiet) {
    try {
      quietTick(steps.quiet, pipeline.recordCount(), steps.log);
    } catch (err) {
      // A throw in the upkeep's timer would end the sensor: the step goes instead.
      steps.quiet.stop();
      steps.log?.warn({ err }, 'quiet heap off: its collection failed');
    }
  }
  steps.trim?.();
}

function quietTick(quiet: QuietHeap, records: number, log: UpkeepSteps['log']): void {
  const heap = () => Math.round(getHeapStatistics().total_heap_size / (1 << 20));
  const before = log ? heap() : 0;
  const t = performance.now();
  if (quiet.tick(records) && log)
    log.debug({ pauseMs: Math.round(performance.now() - t), heapMiB: before, heapAfterMiB: heap() }, 'quiet: heap given back');
}

/** `ctrwatch run`'s upkeep task, with every step: one set of them for its life. */
export function runUpkeep(
  pipeline: Pick<Pipeline, 'sweep' | 'recordCount'>,
  log: Pick<Logger, 'debug' | 'warn'>,
  trim: () => boolean = trimCHeap,
  quiet = new QuietHeap(),
): () => void {
  const steps: UpkeepSteps = { prune: true, quiet, trim, log };
  return () => upkeep(pipeline, steps);
}
