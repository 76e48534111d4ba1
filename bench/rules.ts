/**
 * Rule engine cost: ns per record that the Detector (src/detect/detector.ts)
 * adds to the pipeline. Two Pipelines in one process (bench/pipeline-proc.ts
 * rules), the second with its detector replaced by one that finds nothing
 * (monkeypatched, bench only), fed the same decoded batches side by side:
 * repetitions alternate A-then-B and B-then-A, each ≥ repMs of whole passes,
 * CPU time per record; the figure is the median of the per-pair differences.
 * What the Detector adds includes the detection events it causes (built,
 * stamped and encoded: protobuf, then the JSON line), as `ctrwatch run` would.
 *
 * Mixes: the batches bench/decode.ts recorded from the kernel (storms: host
 * execs and a storm in its own mount namespace, no container starts), and
 * synthetic container lives (every 17 records a container is created,
 * started, runs 3 processes and exits: start rules run for each).
 */
import { pipelineProc, procCommand } from './scale';
import type { Summary } from './lib';

export interface RulesConfig {
  reps: number;
  repMs: number;
  log: (msg: string) => void;
}

export interface RulesMix {
  name: string;
  description: string;
  records: number;
  kinds: Record<string, number>;
  eventsPerPassWith: number;
  eventsPerPassWithout: number;
  encodeAddedNs: number;
  withNs: Summary;
  withoutNs: Summary;
  addedNs: Summary;
  added: number[];
  /** The rules run, what they find dropped (no detection event made). */
  rulesOnlyNs?: Summary;
  /** rules only − without: evaluating the rules. */
  evalNs?: Summary;
  /** with − rules only: building, stamping and encoding the detection events. */
  detectionEventsNs?: Summary;
}

export interface RulesResult {
  command: string;
  mixes: RulesMix[];
  error?: string;
  wallS: number;
}

export const RULES_TARGET_NS = 1000;

export async function runRules(cfg: RulesConfig): Promise<RulesResult> {
  const t0 = Date.now();
  const c = { reps: cfg.reps, repMs: cfg.repMs };
  const res: RulesResult = { command: procCommand('rules', c), mixes: [], wallS: 0 };
  try {
    res.mixes = (await pipelineProc('rules', c)) as RulesMix[];
    for (const m of res.mixes)
      cfg.log(
        `rules ${m.name}: detector adds ${m.addedNs.median.toFixed(0)} ns/record (IQR ${m.addedNs.q1.toFixed(0)}–${m.addedNs.q3.toFixed(0)}); with ${m.withNs.median.toFixed(0)}, without ${m.withoutNs.median.toFixed(0)} ns/record`,
      );
  } catch (e) {
    res.error = (e as Error).message;
    cfg.log(`rules failed: ${res.error}`);
  }
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}
