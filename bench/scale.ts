/**
 * Scale and throughput of the real pipeline (src/pipeline.ts), each in a
 * process of its own (bench/pipeline-proc.ts):
 *
 * - scale: resident memory with N tracked containers (synthetic runc create →
 *   pivot_root → exec sequences, each in its own mount namespace) and M
 *   processes inside each; then event-loop lag while 10 ms batches of a steady
 *   mix arrive (health-check processes in running containers, host execs, short
 *   container lives), with the 5-second sweep inside; then the /proc prune that
 *   every 6th sweep runs. Runs: the Pipeline as `ctrwatch run` builds it, and
 *   (full run) the same with the process table's bound raised so that every
 *   process is kept, and containers alone (to split the memory by kind).
 * - throughput: decode → correlate → detect → encode (protobuf, then the JSON line) on one
 *   thread, records per CPU-second, over synthetic container lives and over
 *   the batches recorded by bench/decode.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CODE, ROOT, track, exited, treeCommit, type Summary } from './lib';
import { YOUNG_MB_DEFAULT } from '../src/young-gen';
import { HEAP_GROWTH_DEFAULT } from '../src/heap-growth';

export interface ScaleConfig {
  containers: number;
  inside: number;
  lagSeconds: number;
  /** Seconds without records after the steady phase, in the default, small-heap, young-uncapped, growth-off, no-trim and no-quiet-gc runs (0: none). */
  idleSeconds: number;
  /** Also the runs with every process kept and with containers alone. */
  full: boolean;
  reps: number;
  repMs: number;
  /** Pairs of the GC A/B (0: none). */
  gcPairs: number;
  /** A built tree of an earlier commit (BENCH_PIPE_BEFORE): its throughput against this one's, in pairs. */
  before?: string;
  beforePairs?: number;
  log: (msg: string) => void;
}

export interface ScaleRun {
  name: string;
  description: string;
  config: { containers: number; inside: number; lagSeconds: number; idleSeconds?: number; maxEntries?: number };
  records: number;
  stats: { records: number; events: number; detections: number; processes: number; containers: number };
  /** The process table's bounds in that run: followed processes, recent host processes. */
  tableBound: number;
  recentBound: number;
  buildS: number;
  memoryBefore: { rssMb: number; heapUsedMb: number };
  memory: { rssMb: number; heapUsedMb: number; heapTotalMb: number; externalMb: number; arrayBuffersMb: number };
  steady: {
    ticks: number;
    records: number;
    recordsPerS: number;
    batchMs: { p50: number; p99: number; max: number };
    /** The process's CPU over the phase (making the input included) per record. */
    cpuUsPerRecord: number;
    /** Sampled once a second during the phase, no forced collection. */
    rssMb: Summary;
    heapTotalMb: Summary;
    samples: number;
  };
  /** After the steady phase, no records for that long (the upkeep goes on): the last sample, and the lowest. */
  idle?: {
    seconds: number;
    rssMb: number;
    heapTotalMb: number;
    rssMbMin: number;
    /** V8's young generation at the end, MB committed (absent in reports before it was read). */
    youngMb?: number;
    /** Each upkeep of the idle time: its duration, and whether the quiet heap collected in it. */
    upkeeps?: { ms: number; collected: boolean }[];
  };
  /** Full collections the upkeep made while quiet (absent in reports before it made any). */
  quietCollections?: number;
  lag: { p50Ms: number; p99Ms: number; maxMs: number; meanMs: number; samples: number };
  sweepMs: number;
  pruneMs: number;
  procsBeforePrune: number;
}

export interface ThroughputMix {
  name: string;
  description: string;
  records: number;
  batches: number;
  kinds: Record<string, number>;
  eventsPerPass: number;
  /** The first pass's events by kind, detections by rule (absent from trees before it was added). */
  eventKinds?: Record<string, number>;
  bytesPerPass: number;
  /** Share of wall time spent encoding, and µs per event encoded. */
  encodeShare: number;
  encodeUsPerEvent: number;
  rates: number[];
  rate: Summary;
  wallRate: Summary;
  eventsPerS: Summary;
}

/**
 * The throughput mode again in pairs of fresh processes, interleaved: as `ctrwatch run` tunes
 * the collector (src/heap-tuning.ts) and with node's --allocation-site-pretenuring (V8's
 * default). One process's repetitions all run at one speed, so the sides are compared by
 * process: each entry is one process's median.
 */
export interface GcAb {
  pairs: number;
  command: string;
  defaultFlag: string;
  mixes: { name: string; tuned: number[]; v8Default: number[] }[];
}

/** The same pairs for the young generation's cap: tuned = capped as ctrwatch run does, v8Default = PIPELINE_YOUNG=off. */
export type YoungAb = Omit<GcAb, 'defaultFlag'> & { capMb: number };

/** The same pairs for the old generation's growth: tuned = limited as ctrwatch run does, v8Default = PIPELINE_GROWTH=off. */
export type GrowthAb = Omit<GcAb, 'defaultFlag'> & { percent: number };

/**
 * The throughput mode of a built tree of an earlier commit (BENCH_PIPE_BEFORE) and of the code
 * measured, in pairs of fresh processes, the order alternating: on a shared machine a process's
 * speed varies from one to the next by more than a change, so the trees are compared pair by pair.
 */
export interface PipeBeforeAfter {
  beforeDir: string;
  beforeCommit?: string;
  command: string;
  mixes: { name: string; before: number[]; after: number[]; order: ('AB' | 'BA')[] }[];
}

export interface ScaleResult {
  command: string;
  runs: ScaleRun[];
  throughput: ThroughputMix[];
  throughputCommand: string;
  gcAb?: GcAb;
  youngAb?: YoungAb;
  growthAb?: GrowthAb;
  beforeAfter?: PipeBeforeAfter;
  errors: string[];
  wallS: number;
}

export const MEMORY_TARGET_MB = 100;
export const THROUGHPUT_TARGET = 200_000;

/** Runs pipeline-proc.js in a child; its one JSON line. */
export async function pipelineProc(
  mode: string,
  cfg: object,
  gc = false,
  nodeFlags: string[] = [],
  env: Record<string, string> = {},
  tree = CODE,
): Promise<unknown> {
  const args = [...(gc ? ['--expose-gc'] : []), ...nodeFlags, join(tree, 'dist', 'bench', 'pipeline-proc.js'), mode, JSON.stringify(cfg)];
  const p = track(
    spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }),
  );
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const code = await exited(p);
  if (code !== 0) throw new Error(`pipeline-proc ${mode} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(out.trim().split('\n').pop()!);
}

export function procCommand(mode: string, cfg: object, gc = false): string {
  return `node ${gc ? '--expose-gc ' : ''}dist/bench/pipeline-proc.js ${mode} '${JSON.stringify(cfg)}'`;
}

export async function runScale(cfg: ScaleConfig): Promise<ScaleResult> {
  const t0 = Date.now();
  const base = { containers: cfg.containers, inside: cfg.inside, lagSeconds: cfg.lagSeconds };
  const plan: { name: string; description: string; c: ScaleRun['config']; flags?: string[]; env?: Record<string, string> }[] = [
    {
      name: 'default',
      description: `${cfg.containers.toLocaleString('en-US')} containers × ${cfg.inside + 1} processes, Pipeline as ctrwatch run builds it (the process table's default bound)`,
      c: { ...base, idleSeconds: cfg.idleSeconds },
    },
  ];
  if (cfg.full) {
    plan.push(
      {
        name: 'all-processes',
        description: `the same with the process table's bound raised to 200,000 (bench only): every process kept`,
        c: { ...base, maxEntries: 200_000 },
      },
      {
        name: 'small-heap',
        description: `the default run as ctrwatch run --small-heap (V8's --optimize-for-size, set at start: src/heap-tuning.ts)`,
        c: { ...base, idleSeconds: cfg.idleSeconds },
        env: { PIPELINE_HEAP: 'small' },
      },
      {
        name: 'young-uncapped',
        description: `the default run with V8 sizing its young generation alone (ctrwatch run --young-mb=off; the default caps it at ${YOUNG_MB_DEFAULT} MiB: src/young-gen.ts)`,
        c: { ...base, idleSeconds: cfg.idleSeconds },
        env: { PIPELINE_YOUNG: 'off' },
      },
      {
        name: 'growth-off',
        description: `the default run with V8 choosing the old generation's growth alone (ctrwatch run --heap-growth=off; the default limits it to ${HEAP_GROWTH_DEFAULT}% past what a full collection left: src/heap-growth.ts)`,
        c: { ...base, idleSeconds: cfg.idleSeconds },
        env: { PIPELINE_GROWTH: 'off' },
      },
      {
        name: 'young-8',
        description: `the default run with the young generation capped at 8 MiB (ctrwatch run --young-mb=8)`,
        c: { ...base },
        env: { PIPELINE_YOUNG: '8' },
      },
      {
        name: 'no-trim',
        description: `the default run without the C heap's trim after each sweep (src/malloc-trim.ts trimCHeap; bench only: PIPELINE_TRIM=0)`,
        c: { ...base, idleSeconds: cfg.idleSeconds },
        env: { PIPELINE_TRIM: '0' },
      },
      {
        name: 'no-quiet-gc',
        description: `the default run without the heap given back when quiet (src/heap-tuning.ts QuietHeap; bench only: PIPELINE_QUIET=0)`,
        c: { ...base, idleSeconds: cfg.idleSeconds },
        env: { PIPELINE_QUIET: '0' },
      },
      {
        name: 'containers-only',
        description: `${cfg.containers.toLocaleString('en-US')} containers, their init only`,
        c: { ...base, inside: 0 },
      },
    );
  }
  // RSS against container count: the default run at fewer containers (no steady phase).
  if (cfg.full) {
    for (const n of [1000, 2500, 5000].filter((k) => k < cfg.containers))
      plan.push({
        name: `curve-${n}`,
        description: `${n.toLocaleString('en-US')} containers × ${cfg.inside + 1} processes, as default (RSS curve)`,
        c: { ...base, containers: n, lagSeconds: 1 },
      });
  }
  const res: ScaleResult = {
    command: procCommand('scale', base, true),
    runs: [],
    throughput: [],
    errors: [],
    throughputCommand: procCommand('throughput', { reps: cfg.reps, repMs: cfg.repMs }),
    wallS: 0,
  };
  for (const x of plan) {
    try {
      const r = (await pipelineProc('scale', x.c, true, x.flags, x.env)) as ScaleRun;
      r.name = x.name;
      r.description = x.description;
      res.runs.push(r);
      cfg.log(
        `scale ${x.name}: ${r.stats.containers} containers, ${r.stats.processes} processes: RSS ${r.memory.rssMb.toFixed(0)} MB (heap ${r.memory.heapUsedMb.toFixed(0)} MB), under the steady mix ${r.steady.rssMb.median.toFixed(0)} MB (max ${r.steady.rssMb.max.toFixed(0)})${r.idle ? `, idle ${r.idle.seconds} s ${r.idle.rssMb.toFixed(0)} MB` : ''}; lag p99 ${r.lag.p99Ms.toFixed(1)} ms, max ${r.lag.maxMs.toFixed(1)} ms; sweep ${r.sweepMs.toFixed(1)} ms, prune ${r.pruneMs.toFixed(0)} ms`,
      );
    } catch (e) {
      res.errors.push(`${x.name}: ${(e as Error).message}`);
      cfg.log(`scale ${x.name} failed: ${(e as Error).message}`);
    }
  }
  try {
    res.throughput = (await pipelineProc('throughput', { reps: cfg.reps, repMs: cfg.repMs })) as ThroughputMix[];
    for (const m of res.throughput)
      cfg.log(
        `throughput ${m.name}: ${Math.round(m.rate.median).toLocaleString('en-US')} records/CPU-s, ${Math.round(m.eventsPerS.median).toLocaleString('en-US')} events/s (encode ${(m.encodeShare * 100).toFixed(0)}% of the time)`,
      );
  } catch (e) {
    res.errors.push(`throughput: ${(e as Error).message}`);
    cfg.log(`throughput failed: ${(e as Error).message}`);
  }
  if (cfg.before) {
    try {
      res.beforeAfter = await beforeAfter(cfg.before, cfg);
    } catch (e) {
      res.errors.push(`before/after: ${(e as Error).message}`);
      cfg.log(`before/after failed: ${(e as Error).message}`);
    }
  }
  if (cfg.gcPairs > 0) {
    try {
      res.gcAb = await gcAb(cfg);
    } catch (e) {
      res.errors.push(`gc A/B: ${(e as Error).message}`);
      cfg.log(`gc A/B failed: ${(e as Error).message}`);
    }
    try {
      res.youngAb = await youngAb(cfg);
    } catch (e) {
      res.errors.push(`young A/B: ${(e as Error).message}`);
      cfg.log(`young A/B failed: ${(e as Error).message}`);
    }
    try {
      res.growthAb = await growthAb(cfg);
    } catch (e) {
      res.errors.push(`growth A/B: ${(e as Error).message}`);
      cfg.log(`growth A/B failed: ${(e as Error).message}`);
    }
  }
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}

async function beforeAfter(dir: string, cfg: ScaleConfig): Promise<PipeBeforeAfter> {
  if (!existsSync(join(dir, 'dist', 'bench', 'pipeline-proc.js')))
    throw new Error(`BENCH_PIPE_BEFORE=${dir}: no dist/bench/pipeline-proc.js there (build that tree first)`);
  const rc = { reps: cfg.reps, repMs: cfg.repMs };
  const res: PipeBeforeAfter = { beforeDir: dir, beforeCommit: treeCommit(dir), command: procCommand('throughput', rc), mixes: [] };
  const pairs = cfg.beforePairs ?? 5;
  for (let i = 0; i < pairs; i++) {
    const order = i % 2 ? 'BA' : 'AB';
    const got: Record<'before' | 'after', ThroughputMix[]> = { before: [], after: [] };
    for (const who of order === 'AB' ? (['before', 'after'] as const) : (['after', 'before'] as const))
      got[who] = (await pipelineProc('throughput', rc, false, [], {}, who === 'before' ? dir : CODE)) as ThroughputMix[];
    // Mixes both trees ran (the recorded mix needs bench/out/batches.bin, shared through BENCH_ROOT).
    for (const a of got.after) {
      const b = got.before.find((x) => x.name === a.name);
      if (!b) continue;
      let m = res.mixes.find((x) => x.name === a.name);
      if (!m) res.mixes.push((m = { name: a.name, before: [], after: [], order: [] }));
      m.before.push(b.rate.median);
      m.after.push(a.rate.median);
      m.order.push(order);
    }
    cfg.log(
      `before/after pair ${i + 1}/${pairs}: ${got.after.map((a) => `${a.name} ${Math.round(got.before.find((b) => b.name === a.name)?.rate.median ?? NaN)} → ${Math.round(a.rate.median)}`).join(', ')} records/CPU-s`,
    );
  }
  return res;
}

/**
 * Throughput processes in pairs, the first of each pair alternating: as ctrwatch run tunes V8
 * (tuned), and with the other side's node flags or environment (v8Default); each process's median.
 */
async function abPairs(cfg: ScaleConfig, other: { flags?: string[]; env?: Record<string, string> }): Promise<GcAb['mixes']> {
  const rc = { reps: cfg.reps, repMs: cfg.repMs };
  const mixes: GcAb['mixes'] = [];
  for (let i = 0; i < cfg.gcPairs; i++) {
    const order: ('tuned' | 'v8Default')[] = i % 2 ? ['v8Default', 'tuned'] : ['tuned', 'v8Default'];
    for (const side of order) {
      const tuned = side === 'tuned';
      for (const m of (await pipelineProc('throughput', rc, false, tuned ? [] : other.flags, tuned ? {} : other.env)) as ThroughputMix[]) {
        let x = mixes.find((y) => y.name === m.name);
        if (!x) mixes.push((x = { name: m.name, tuned: [], v8Default: [] }));
        x[side].push(m.rate.median);
      }
    }
  }
  return mixes;
}

const rounded = (xs: number[]) => xs.map((x) => Math.round(x)).join(' ');

/** The young generation capped as ctrwatch run caps it, and sized by V8 alone. */
async function youngAb(cfg: ScaleConfig): Promise<YoungAb> {
  const command = procCommand('throughput', { reps: cfg.reps, repMs: cfg.repMs });
  const mixes = await abPairs(cfg, { env: { PIPELINE_YOUNG: 'off' } });
  for (const m of mixes) cfg.log(`young A/B ${m.name}: capped ${rounded(m.tuned)}; V8's sizing ${rounded(m.v8Default)} records/CPU-s`);
  return { pairs: cfg.gcPairs, command, capMb: YOUNG_MB_DEFAULT, mixes };
}

/** The old generation's growth limited as ctrwatch run limits it, and chosen by V8 alone. */
async function growthAb(cfg: ScaleConfig): Promise<GrowthAb> {
  const command = procCommand('throughput', { reps: cfg.reps, repMs: cfg.repMs });
  const mixes = await abPairs(cfg, { env: { PIPELINE_GROWTH: 'off' } });
  for (const m of mixes) cfg.log(`growth A/B ${m.name}: limited ${rounded(m.tuned)}; V8's factor ${rounded(m.v8Default)} records/CPU-s`);
  return { pairs: cfg.gcPairs, command, percent: HEAP_GROWTH_DEFAULT, mixes };
}

const V8_DEFAULT_FLAG = '--allocation-site-pretenuring';

async function gcAb(cfg: ScaleConfig): Promise<GcAb> {
  const command = procCommand('throughput', { reps: cfg.reps, repMs: cfg.repMs });
  const mixes = await abPairs(cfg, { flags: [V8_DEFAULT_FLAG] });
  for (const m of mixes) cfg.log(`gc A/B ${m.name}: tuned ${rounded(m.tuned)}; ${V8_DEFAULT_FLAG} ${rounded(m.v8Default)} records/CPU-s`);
  return { pairs: cfg.gcPairs, command, defaultFlag: V8_DEFAULT_FLAG, mixes };
}
