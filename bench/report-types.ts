// The report's shapes: what run.ts collects and report.ts / report-perf.ts render.

import type { BpfStatsResult } from './bpfstats';
import type { ChurnResult } from './churn';
import type { DecodeResult } from './decode';
import type { FootprintResult } from './footprint';
import type { ImagesResult } from './images';
import type { SocketsResult } from './sockets';
import type { LatencyResult } from './latency';
import type { BuildIdentity, Machine } from './lib';
import type { LossResult } from './loss';
import type { OverheadResult } from './overhead';
import type { RulesResult } from './rules';
import type { ScaleResult } from './scale';
import type { ShipResult } from './ship';

/** What `ctrwatch run` logged when it stopped, per overhead run. */
export interface RunCounters {
  round: number;
  scenario: string;
  records?: number;
  dropped?: number;
  decodeErrors?: number;
}

export interface BenchReport {
  generatedAt: string;
  command: string;
  env: Record<string, string>;
  machine: Machine;
  /** What was measured: the build snapshot's identity. */
  build?: BuildIdentity;
  wallS: number;
  overhead?: OverheadResult;
  ctrwatchCounters?: RunCounters[];
  decode?: DecodeResult;
  bpfStats?: BpfStatsResult;
  latency?: LatencyResult;
  churn?: ChurnResult;
  scale?: ScaleResult;
  rules?: RulesResult;
  loss?: LossResult;
  ship?: ShipResult;
  footprint?: FootprintResult;
  images?: ImagesResult;
  sockets?: SocketsResult;
  leftovers: string[];
}

/** The bench's parts, in the order they run, and where each puts its result in the report. */
export const PART_RESULTS = {
  decode: 'decode',
  scale: 'scale',
  rules: 'rules',
  loss: 'loss',
  latency: 'latency',
  churn: 'churn',
  overhead: 'overhead',
  bpfstats: 'bpfStats',
  ship: 'ship',
  footprint: 'footprint',
  images: 'images',
  sockets: 'sockets',
} as const satisfies Record<string, keyof BenchReport>;

export interface Figure {
  id: string;
  title: string;
  command: string;
  /** Rounds, repetitions or samples behind the figure. */
  rounds: number;
  unit: string;
  /** Median (p50 for distributions; the value itself for a single count). */
  median: number;
  q1: number;
  q3: number;
  /** Distributions of samples: the 99th percentile, which the target is about. */
  p99?: number;
  target?: string;
  met?: boolean;
}
