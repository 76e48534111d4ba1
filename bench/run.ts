/**
 * `make bench` = node dist/bench/run.js: snapshots the built code into
 * bench/out/snap and re-runs itself from there (others may rebuild the shared
 * tree meanwhile), builds the storm, runs the parts, then writes
 * bench/REPORT.md and bench/report.json. Needs root (BPF, containers).
 *
 * Parts, in this order: decode (records bench/out/batches.bin), scale
 * (pipeline memory, event-loop lag, throughput), rules (Detector cost), loss
 * (small ring: received + dropped = produced), latency (container start and
 * detection, per runtime), churn (500 short-lived containers), overhead
 * (storm rounds), bpfstats (kernel side), ship (events/s to each remote output), footprint
 * (`ctrwatch run` idle: its resident memory by mapping), images (the image first-seen store's cost),
 * sockets (the runtime-socket scan with container processes on the node).
 *
 * Environment (defaults in brackets; BENCH_QUICK=1 or --quick for a < 3 min run):
 *   BENCH_ONLY [all of the above]     parts to run, comma-separated
 *   BENCH_ROUNDS [10; quick 3]        overhead rounds
 *   BENCH_SECONDS [2]                 seconds per storm
 *   BENCH_WORKERS [online CPUs]       storm workers
 *   BENCH_SETTLE_MS [500]             pause between attach and storm
 *   BENCH_DECODE_REPS [15; quick 10]  decode repetitions
 *   BENCH_DECODE_REP_MS [200; quick 100]
 *   BENCH_VARIANTS [all but opt-in; quick: control,host:ctrwatch-run]
 *   BENCH_SCENARIOS, BENCH_SENSOR_CMD, BENCH_CHILD: see variants.ts, lib.ts
 *   BENCH_LATENCY_N [30; quick 5]     measured containers per runtime
 *   BENCH_LATENCY_READER_FIFO [10]    the line reader's SCHED_FIFO priority (0: none)
 *   BENCH_RUNTIMES [runc,crun,containerd,podman,docker]
 *   BENCH_CHURN_N [500; quick 100], BENCH_CHURN_PARALLEL [4]
 *   BENCH_SCALE_CONTAINERS [10000], BENCH_SCALE_INSIDE [9] (processes per container besides init)
 *   BENCH_LAG_SECONDS [30; quick 2]
 *   BENCH_IDLE_SECONDS [20; quick 0]
 *   BENCH_PIPE_REPS [15; quick 5], BENCH_PIPE_REP_MS [200; quick 100]  throughput and rules
 *   BENCH_PIPE_BEFORE, BENCH_PIPE_PAIRS [5]  a built tree of an earlier commit: pipeline throughput before/after pairs
 *   BENCH_LOSS_RINGS [4096,8192,16384; quick 4096], BENCH_LOSS_ROUNDS [2; quick 1],
 *   BENCH_LOSS_SECONDS [2; quick 1], BENCH_LOSS_DRAIN_MS [1000]
 *   BENCH_LATENCY_STORM [1]           0: no samples under the busy-container storm
 *   BENCH_LATENCY_ARGS                more `ctrwatch run` options for the latency part (e.g. '--nice off')
 *   BENCH_LATENCY_BEFORE              a built tree of an earlier commit: its `ctrwatch run` beside this one's, every sample timed in both
 *   BENCH_SHIP_EVENTS [200000; quick 50000]  events per output in the ship part
 *   BENCH_SHIP_BEFORE, BENCH_SHIP_PAIRS [3]  a built tree of an earlier commit: gRPC before/after pairs
 *   BENCH_FOOTPRINT_SECONDS [20; quick 5]  how long the idle sensor runs before it is measured
 *   BENCH_FOOTPRINT_BEFORE, BENCH_FOOTPRINT_PAIRS [3]  a built tree of an earlier commit: footprint before/after pairs
 *   BENCH_FOOTPRINT_IDLE_SECONDS [10; quick 3]  after the memory read, the window of each idle sensor's CPU and wake-ups
 *   BENCH_FOOTPRINT_CONTAINERS [250,1000,2500; quick none]  real runc containers started in steps under one more sensor, its memory read at each ('0': none)
 *   BENCH_FOOTPRINT_OPTIONS [none]  sets of ctrwatch run options, ';' between sets: one more sensor of this code with each, under the same containers
 *   BENCH_FOOTPRINT_SETTLE_SECONDS [10; quick 3]  from a step's last reported start to its read
 *   BENCH_IMAGES_BEFORE               a built tree of an earlier commit: its image store measured beside this one's
 *   BENCH_IMAGES_REPS [5; quick 2]    repetitions per store size (1,000, 5,000 and 10,000 images held), 50 new images each
 *   BENCH_SOCKETS_INSIDE [2000; quick 200], BENCH_SOCKETS_REPS [10; quick 4]  sockets part: processes in a mount namespace, scans of each kind
 *   BENCH_BPF_BEFORE, BENCH_BPF_PAIRS [3]  a built tree of an earlier commit: bpfstats before/after pairs of the sensor-proc variants
 *   BENCH_REPORT_NAME                 write bench/out/<name>.md/.json instead (side runs)
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { runBpfStats } from './bpfstats';
import { runChurn } from './churn';
import { runDecode } from './decode';
import { runFootprint } from './footprint';
import { runImages } from './images';
import { runSockets } from './sockets';
import { RUNTIMES, type RuntimeName } from './lab';
import { runLatency } from './latency';
import {
  buildStorm,
  CODE,
  ensureTracefs,
  envNum,
  killAll,
  killChildrenOnExit,
  leftovers,
  machine,
  ROOT,
  sleep,
  snapshot,
  type BuildIdentity,
} from './lib';
import { runLoss } from './loss';
import { runOverhead, type OverheadResult } from './overhead';
import { writeReport } from './report';
import { PART_RESULTS, type BenchReport, type RunCounters } from './report-types';
import { runRules } from './rules';
import { runScale } from './scale';
import { runShip } from './ship';
import { selectedVariants } from './variants';

/** Variants of a quick run unless BENCH_VARIANTS says otherwise. */
const QUICK_VARIANTS = 'control,host:ctrwatch-run';
const PARTS = Object.keys(PART_RESULTS);

/** The kernel counters `ctrwatch run` logged when it stopped, per overhead run (its protocol has no counters line). */
function ctrwatchCounters(o: OverheadResult): RunCounters[] {
  const out: RunCounters[] = [];
  for (const r of o.runs.filter((x) => x.variant === 'ctrwatch-run' && x.log)) {
    try {
      const line = readFileSync(join(ROOT, r.log!), 'utf8')
        .split('\n')
        .find((l) => l.includes('"sensor stopped"'));
      const j = line ? (JSON.parse(line) as { counters?: { records: number; dropped: number; decodeErrors: number } }) : undefined;
      out.push({
        round: r.round,
        scenario: r.scenario,
        records: j?.counters?.records,
        dropped: j?.counters?.dropped,
        decodeErrors: j?.counters?.decodeErrors,
      });
    } catch {
      out.push({ round: r.round, scenario: r.scenario });
    }
  }
  return out;
}

/** BENCH_FOOTPRINT_CONTAINERS: ascending counts of real containers; '0' or empty: none. */
function containerSteps(quick: boolean): number[] {
  const v = process.env.BENCH_FOOTPRINT_CONTAINERS ?? (quick ? '0' : '250,1000,2500');
  if (v.trim() === '' || v.trim() === '0') return [];
  const steps = v.split(',').map((x) => Number(x.trim()));
  if (steps.some((n, i) => !Number.isInteger(n) || n < 1 || (i > 0 && n <= steps[i - 1]!)))
    throw new RangeError(`BENCH_FOOTPRINT_CONTAINERS must be ascending positive integers separated by commas, got ${v}`);
  return steps;
}

/** BENCH_FOOTPRINT_OPTIONS: sets of `ctrwatch run` options separated by ';', each set's words by spaces; empty: none. */
function sensorOptionSets(): string[] {
  const v = process.env.BENCH_FOOTPRINT_OPTIONS ?? '';
  const sets = v
    .split(';')
    .map((x) => x.trim().replace(/\s+/g, ' '))
    .filter(Boolean);
  const bad = sets.find((x) => !x.startsWith('-') || /--state-dir\b/.test(x));
  if (bad !== undefined)
    throw new RangeError(
      `BENCH_FOOTPRINT_OPTIONS: each set must be options of ctrwatch run (starting with -, not --state-dir), got '${bad}'`,
    );
  return sets;
}

/** The footprint part's options: BENCH_FOOTPRINT_SECONDS, _IDLE_SECONDS, _BEFORE, _PAIRS, _CONTAINERS, _OPTIONS, _SETTLE_SECONDS. */
const footprintOptions = (quick: boolean) => ({
  seconds: envNum('BENCH_FOOTPRINT_SECONDS', quick ? 5 : 20),
  idleSeconds: envNum('BENCH_FOOTPRINT_IDLE_SECONDS', quick ? 3 : 10),
  before: process.env.BENCH_FOOTPRINT_BEFORE,
  pairs: Math.round(envNum('BENCH_FOOTPRINT_PAIRS', 3)),
  containers: containerSteps(quick),
  options: sensorOptionSets(),
  settleSeconds: envNum('BENCH_FOOTPRINT_SETTLE_SECONDS', quick ? 3 : 10),
});

/** The images part's options: BENCH_IMAGES_REPS, BENCH_IMAGES_BEFORE. */
const imagesOptions = (quick: boolean) => ({
  held: [1000, 5000, 10_000],
  reps: Math.round(envNum('BENCH_IMAGES_REPS', quick ? 2 : 5)),
  fresh: 50,
  before: process.env.BENCH_IMAGES_BEFORE,
});

/** The sockets part's options: BENCH_SOCKETS_INSIDE, BENCH_SOCKETS_REPS. */
const socketsOptions = (quick: boolean) => ({
  inside: Math.round(envNum('BENCH_SOCKETS_INSIDE', quick ? 200 : 2000)),
  reps: Math.round(envNum('BENCH_SOCKETS_REPS', quick ? 4 : 10)),
});

/** Words of the command lines of every process the bench starts: any still running at the end is a leftover. */
const benchProcesses = (report: BenchReport): string[] => [
  'bench/out/storm',
  'dist/bench/sensor-proc.js',
  'printf("fork %d %d %s',
  'dist/bench/ctrwatch-reader.js',
  'dist/bench/pipeline-proc.js',
  'dist/bench/delivery.js',
  'dist/bench/fleet.js',
  join(CODE, 'bin', 'ctrwatch'),
  'cwbench/stamp',
  'sleep 600.25',
  ...(process.env.BENCH_FOOTPRINT_BEFORE ? [join(process.env.BENCH_FOOTPRINT_BEFORE, 'bin', 'ctrwatch')] : []),
  ...[report.latency?.labDir, report.churn?.labDir].filter((d): d is string => !!d),
];

const log = (msg: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);

/** From the package root: snapshot the build, then run this file from the snapshot. */
async function fromSnapshot(): Promise<number> {
  const { dir, identity } = await snapshot();
  log(
    `bench: running from a snapshot of the build (${dir.slice(ROOT.length + 1)}; git ${identity.gitHead}, addon ${identity.addonSha256}${identity.dirty.length ? `, uncommitted: ${identity.dirty.length} files` : ''})`,
  );
  const child = spawn(process.execPath, [join(dir, 'dist', 'bench', 'run.js'), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_ROOT: ROOT, BENCH_IDENTITY: JSON.stringify(identity) },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  return new Promise((r) => child.on('exit', (code, sig) => r(code ?? (sig ? 130 : 1))));
}

/** The scale part's pairs: the GC A/B, and the throughput before/after (BENCH_PIPE_BEFORE, BENCH_PIPE_PAIRS). */
const scalePairs = (quick: boolean) => ({
  gcPairs: Math.round(envNum('BENCH_GC_PAIRS', quick ? 0 : 3)),
  before: process.env.BENCH_PIPE_BEFORE,
  beforePairs: Math.round(envNum('BENCH_PIPE_PAIRS', 5)),
});

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    log('bench: needs root (BPF programs)');
    return 2;
  }
  if (!process.env.BENCH_ROOT) return fromSnapshot();
  killChildrenOnExit();
  const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
  const t0 = Date.now();
  const only = (process.env.BENCH_ONLY ?? PARTS.join(',')).split(',').map((s) => s.trim());
  const unknown = only.filter((p) => !PARTS.includes(p));
  if (unknown.length) throw new RangeError(`BENCH_ONLY: unknown part(s) ${unknown.join(', ')}; parts: ${PARTS.join(', ')}`);
  const rounds = Math.round(envNum('BENCH_ROUNDS', quick ? 3 : 10));
  const seconds = envNum('BENCH_SECONDS', 2);
  const workers = Math.round(envNum('BENCH_WORKERS', cpus().length));
  const settleMs = envNum('BENCH_SETTLE_MS', 500);
  const warmupS = envNum('BENCH_WARMUP_S', 1);
  const storm = buildStorm();
  const m = machine();
  log(`bench: ${m.cores} cores, Linux ${m.kernel}, node ${m.node}; storm child ${storm.childKind}; ${quick ? 'quick' : 'full'} run`);

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('BENCH_') && v !== undefined && !['BENCH_ROOT', 'BENCH_IDENTITY'].includes(k)) env[k] = v;
  }
  const build = JSON.parse(process.env.BENCH_IDENTITY ?? 'null') as BuildIdentity | null;
  if (quick) env.BENCH_QUICK = '1';
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    command: `node dist/bench/run.js${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`,
    env,
    machine: m,
    build: build ?? undefined,
    wallS: 0,
    leftovers: [],
  };
  const variants = selectedVariants(quick ? QUICK_VARIANTS : undefined);

  if (only.includes('decode')) {
    report.decode = await runDecode({
      reps: Math.round(envNum('BENCH_DECODE_REPS', quick ? 10 : 15)),
      repMs: envNum('BENCH_DECODE_REP_MS', quick ? 100 : 200),
      recordSeconds: 2,
      workers,
      storm,
      log,
    });
  }
  const reps = Math.round(envNum('BENCH_PIPE_REPS', quick ? 5 : 15));
  const repMs = envNum('BENCH_PIPE_REP_MS', quick ? 100 : 200);
  if (only.includes('scale')) {
    report.scale = await runScale({
      containers: Math.round(envNum('BENCH_SCALE_CONTAINERS', 10_000)),
      inside: Math.round(envNum('BENCH_SCALE_INSIDE', 9)),
      lagSeconds: envNum('BENCH_LAG_SECONDS', quick ? 2 : 30),
      idleSeconds: envNum('BENCH_IDLE_SECONDS', quick ? 0 : 20),
      full: !quick,
      reps,
      repMs,
      ...scalePairs(quick),
      log,
    });
  }
  if (only.includes('rules')) report.rules = await runRules({ reps, repMs, log });
  if (only.includes('loss')) {
    report.loss = await runLoss({
      ringSizes: (process.env.BENCH_LOSS_RINGS ?? (quick ? '4096' : '4096,8192,16384')).split(',').map(Number),
      rounds: Math.round(envNum('BENCH_LOSS_ROUNDS', quick ? 1 : 2)),
      seconds: envNum('BENCH_LOSS_SECONDS', quick ? 1 : 2),
      drainMs: Math.round(envNum('BENCH_LOSS_DRAIN_MS', 1000)),
      workers,
      storm,
      log,
    });
  }
  if (only.includes('latency')) {
    const runtimes = (process.env.BENCH_RUNTIMES ?? RUNTIMES.join(',')).split(',').map((s) => s.trim()) as RuntimeName[];
    const bad = runtimes.filter((r) => !RUNTIMES.includes(r));
    if (bad.length) throw new RangeError(`BENCH_RUNTIMES: unknown ${bad.join(', ')}`);
    report.latency = await runLatency({
      perRuntime: Math.round(envNum('BENCH_LATENCY_N', quick ? 5 : 30)),
      runtimes,
      storm: process.env.BENCH_LATENCY_STORM === '0' ? undefined : { build: storm, workers },
      sensorArgs: (process.env.BENCH_LATENCY_ARGS ?? '').split(/\s+/).filter(Boolean),
      readerFifo: process.env.BENCH_LATENCY_READER_FIFO === '0' ? 0 : Math.round(envNum('BENCH_LATENCY_READER_FIFO', 10)),
      before: process.env.BENCH_LATENCY_BEFORE || undefined,
      log,
    });
  }
  if (only.includes('churn')) {
    report.churn = await runChurn({
      containers: Math.round(envNum('BENCH_CHURN_N', quick ? 100 : 500)),
      parallel: Math.round(envNum('BENCH_CHURN_PARALLEL', 4)),
      log,
    });
  }
  const untrace =
    (only.includes('overhead') || only.includes('bpfstats')) && variants.some((v) => v.name === 'bpftrace') ? ensureTracefs(log) : () => {};
  if (only.includes('overhead')) {
    log(
      `overhead: ${rounds} rounds of pairs (baseline, variant), storms of ${seconds} s: ${variants
        .filter((v) => v.name !== 'baseline')
        .map((v) => `${v.scenario}:${v.name}`)
        .join(', ')}`,
    );
    report.overhead = await runOverhead({ rounds, seconds, workers, settleMs, warmupS, storm, variants, log });
    report.ctrwatchCounters = ctrwatchCounters(report.overhead);
  }
  if (only.includes('bpfstats')) {
    const which = variants.filter((v) => ['sensor', 'sensor-cgroup2', 'bpftrace', 'ctrwatch-run'].includes(v.name));
    const bpfBefore = process.env.BENCH_BPF_BEFORE ? { dir: process.env.BENCH_BPF_BEFORE, pairs: envNum('BENCH_BPF_PAIRS', 3) } : undefined;
    report.bpfStats = await runBpfStats(which, storm, workers, seconds, bpfBefore);
    log(
      `bpfstats: ${report.bpfStats.error ?? report.bpfStats.variants.map((v) => `${v.scenario}:${v.variant} ${v.nsPerExec?.toFixed(0) ?? v.error} ns/exec`).join(', ')}`,
    );
    const ba = report.bpfStats.beforeAfter;
    if (ba)
      log(
        `bpfstats before/after: ${ba.pairs.map((p) => `${p.scenario}:${p.variant} ${p.before.nsPerExec?.toFixed(0) ?? p.before.error} → ${p.after.nsPerExec?.toFixed(0) ?? p.after.error}`).join(', ')}${ba.errors.length ? `; errors: ${ba.errors.join('; ')}` : ''}`,
      );
  }

  untrace();
  if (only.includes('ship'))
    report.ship = await runShip({
      events: Math.round(envNum('BENCH_SHIP_EVENTS', quick ? 50_000 : 200_000)),
      before: process.env.BENCH_SHIP_BEFORE,
      pairs: Math.round(envNum('BENCH_SHIP_PAIRS', 3)),
      log,
    });

  if (only.includes('footprint')) report.footprint = await runFootprint({ ...footprintOptions(quick), log });
  if (only.includes('images')) report.images = runImages({ ...imagesOptions(quick), log });
  if (only.includes('sockets')) report.sockets = await runSockets({ ...socketsOptions(quick), log });

  killAll();
  await sleep(200);
  report.leftovers = leftovers(benchProcesses(report));
  report.wallS = (Date.now() - t0) / 1000;
  const md = writeReport(report);
  log(`bench: wrote ${md.slice(ROOT.length + 1)} and its .json in ${report.wallS.toFixed(0)} s`);
  if (report.leftovers.length) log(`bench: still running: ${report.leftovers.join('; ')}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log(`bench failed: ${(err as Error).stack ?? err}`);
    killAll();
    process.exit(1);
  },
);
