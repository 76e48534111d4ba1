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
}

/**
 * `ctrwatch run`'s 5-second upkeep: the pipeline's sweep, then what the heaps can give back:
 * V8's heap when the sensor was quiet, then the C heap's free pages.
 */
export function upkeep(pipeline: Pick<Pipeline, 'sweep' | 'recordCount'>, steps: UpkeepSteps): void {
  pipeline.sweep(undefined, steps.prune);
  steps.quiet?.tick(pipeline.recordCount());
  steps.trim?.();
}

/** `ctrwatch run`'s upkeep task, with every step: one set of them for its life. */
export function runUpkeep(pipeline: Pick<Pipeline, 'sweep' | 'recordCount'>): () => void {
  const steps: UpkeepSteps = { prune: true, quiet: new QuietHeap(), trim: trimCHeap };
  return () => upkeep(pipeline, steps);
}
