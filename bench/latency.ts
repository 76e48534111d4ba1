/**
 * Container start latency: from the entrypoint's exec to the `containerStarted`
 * line arriving in the process that reads `ctrwatch run`'s stdout, per runtime
 * (runc, crun, containerd via ctr, podman, docker, all through RuntimeLab); and
 * the same for a detection (`escape.privileged-container`, every third
 * container is privileged).
 *
 * The clocks. The reader (ctrwatch-reader.ts, a process of its own that does
 * nothing else) stamps each line with process.hrtime() (CLOCK_MONOTONIC) when
 * its chunk arrives: A. The event's timeUnixNano is the kernel's exec time E
 * (monotonic ktime) plus the sensor's wall offset S, taken once from Date.now()
 * and so up to 1 ms short: T = E + S. The entrypoint is bench/stamp.c, whose
 * first instructions read CLOCK_MONOTONIC (M) and CLOCK_REALTIME (R) and write
 * them to a bind-mounted file: R − M is the true wall offset O, and M comes
 * d ≥ 0 after E (d is µs, unless the entrypoint is preempted right after its
 * exec — e.g. by the sensor it just woke).
 *
 *   skew = R − T = d + (O − S);  err = min over the run of skew = (O − S) + min d
 *   latency = A − (T − O) − err = (A − E) − min d
 *
 * so the figure is measured from the kernel's own exec timestamp, short by the
 * smallest d of the run (µs). A − M (from the entrypoint's stamp alone) is kept
 * as a cross-check; it is short by each sample's own d.
 *
 * Rounds go over the runtimes in turn (order rotated), so that slow spells of
 * the shared machine spread over all of them; one warm-up container per
 * runtime (daemon start, image import) is not counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildStamp, CtrwatchRun, loadLab, type Lab, type RuntimeName, type SensorStopped, type Started } from './lab';
import { display, OUT, quantile, sleep, stormCommand, track, treeCommit, type StormBuild } from './lib';

export interface Dist {
  n: number;
  p50: number;
  p99: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
}

export function dist(xs: number[]): Dist {
  const v = xs.filter((x) => Number.isFinite(x));
  return {
    n: v.length,
    p50: quantile(v, 0.5),
    p99: quantile(v, 0.99),
    q1: quantile(v, 0.25),
    q3: quantile(v, 0.75),
    min: v.length ? Math.min(...v) : NaN,
    max: v.length ? Math.max(...v) : NaN,
  };
}

export interface LatencyConfig {
  perRuntime: number;
  runtimes: RuntimeName[];
  /** When set, every runtime also gets perRuntime samples while a busy-container storm runs. */
  storm?: { build: StormBuild; workers: number };
  /** More `ctrwatch run` options (BENCH_LATENCY_ARGS). */
  sensorArgs?: string[];
  /** The reader's SCHED_FIFO priority, 0 for none (BENCH_LATENCY_READER_FIFO; CtrwatchRun). */
  readerFifo: number;
  /**
   * A built tree of an earlier commit (BENCH_LATENCY_BEFORE): its `ctrwatch run` runs beside this
   * one's through the whole part, each with its own reader, and every sample is timed in both.
   */
  before?: string;
  log: (msg: string) => void;
}

export interface LatencySample {
  runtime: RuntimeName;
  id: string;
  privileged: boolean;
  /** Started while the busy-container storm ran. */
  underStorm: boolean;
  /** Kernel exec time to containerStarted line arrival, ms: A − (T − O) − err (err: the run's minimum skew). */
  startedMs?: number;
  /** The same for the escape.privileged-container line. */
  detectionMs?: number;
  /** A − (T − O) before the correction, ms. */
  startedRawMs?: number;
  detectionRawMs?: number;
  /** Stamp (entrypoint's first CLOCK_MONOTONIC read) to containerStarted line arrival, A − M, ms. */
  startedStampMs?: number;
  /** skew = R − T, ms: the entrypoint's delay after its exec plus the sensor's wall-offset error. */
  clockSkewMs?: number;
  /** skew − err: how long after the kernel's exec the entrypoint's first instruction ran, ms. */
  stampDelayMs?: number;
  /** How long the runtime's start command took (RuntimeLab.start), ms: context only. */
  startCmdMs: number;
  /** Which `ctrwatch run` process timed it (each takes its wall offset once): 0, or 1 after the restart of a before/after run. */
  run: number;
  /** The same container timed by the tree before (BENCH_LATENCY_BEFORE). */
  before?: Timed;
  error?: string;
}

/** One sensor's timing of a sample (the before side of a before/after run). */
export interface Timed {
  run: number;
  startedRawMs?: number;
  detectionRawMs?: number;
  clockSkewMs?: number;
  startedMs?: number;
  detectionMs?: number;
  error?: string;
}

/** Both sensors over the same samples (BENCH_LATENCY_BEFORE). */
export interface LatencyBeforeAfter {
  beforeDir: string;
  beforeCommit?: string;
  /** Which sensor loaded its programs first in each half (the kernel runs a tracepoint's programs in that order). */
  firstLoaded: ('after' | 'before')[];
  /** The tree before's err for each of its processes. */
  offsetErrsMs: number[];
  sides: Record<'before' | 'after', LatencySide>;
}

export interface LatencySide {
  started: Dist;
  startedStorm: Dist;
  detection: Dist;
  detectionStorm: Dist;
  /** Its detection line after its own start line, per privileged sample, ms. */
  gap: Dist;
  gapStorm: Dist;
  sensor: SensorStopped[];
}

export interface RuntimeLatency {
  runtime: RuntimeName;
  skipped?: string;
  started: Dist;
  startCmdMs: Dist;
  failures: number;
  /** The same while the busy-container storm ran (when the run had one). */
  startedStorm?: Dist;
  failuresStorm?: number;
}

export interface LatencyResult {
  config: { perRuntime: number; runtimes: RuntimeName[]; readerFifo?: number };
  command: string;
  /** The busy-container storm's command (stopped with SIGSTOP between its samples), if any. */
  stormCommand?: string;
  stampKind: string;
  samples: LatencySample[];
  runtimes: RuntimeLatency[];
  /** Detection latency of the samples taken idle; detectionStorm: under the storm. */
  detection: Dist;
  detectionStorm?: Dist;
  beforeAfter?: LatencyBeforeAfter;
  /** A − M: from the entrypoint's own stamp, all runtimes. */
  startedStamp: Dist;
  clockSkewMs: Dist;
  /** err: the minimum skew of the run, ms (the sensor's wall-offset error, plus the smallest entrypoint delay). */
  offsetErrMs: number;
  /** The same for each `ctrwatch run` process in turn (more than one after a before/after run's restart). */
  offsetErrsMs?: number[];
  stampDelayMs: Dist;
  sensor: SensorStopped;
  wallS: number;
  /** RuntimeLab's temp dir (for the leftover check: every process it started names it). */
  labDir?: string;
  error?: string;
}

/** Issue 15: start → line p99 at most 10 ms, idle and while a busy-container storm runs. */
const TARGET_MS = 10;
export const LATENCY_TARGET = { ms: TARGET_MS, text: `p99 ≤ ${TARGET_MS} ms` };

async function readStamp(file: string, ms = 3000): Promise<{ mono: bigint; real: bigint } | undefined> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const m = /^(\d+) (\d+)\n$/.exec(readFileSync(file, 'utf8'));
      if (m) return { mono: BigInt(m[1]), real: BigInt(m[2]) };
    } catch {
      /* not yet */
    }
    if (Date.now() > until) return undefined;
    await sleep(10);
  }
}

const nsToMs = (ns: bigint) => Number(ns) / 1e6;

/** Pause between stopping the storm and an idle sample. */
const IDLE_SETTLE_MS = 1500;

/**
 * A busy-container storm (bench/storm -u: every fork, exec and exit followed and sent) that runs
 * for the whole part, stopped (SIGSTOP to its process group) between the samples taken idle.
 */
class BackgroundStorm {
  private p?: ChildProcess;
  constructor(readonly cmd: string[]) {}
  start(): void {
    this.p = track(spawn(this.cmd[0], this.cmd.slice(1), { stdio: 'ignore', detached: true }));
    this.signal('SIGSTOP');
  }
  signal(sig: NodeJS.Signals): void {
    if (this.p?.pid && this.p.exitCode === null) process.kill(-this.p.pid, sig);
  }
  stop(): void {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
  }
}

/** The other sensor of a before/after run, and which process of each side is running. */
interface Beside {
  cw: CtrwatchRun;
  run: number;
}

/** A sensor's start (and detection) lines for container id, timed against the entrypoint's stamp. */
async function timeLines(
  cw: CtrwatchRun,
  from: number,
  id: string,
  privileged: boolean,
  stamp: { real: bigint; mono: bigint },
): Promise<Timed & { startedStampMs: number }> {
  const started = await cw.waitFor((e) => e.containerStarted?.container?.id === id, 10_000, from);
  const offset = stamp.real - stamp.mono; // O
  const kernelMono = (line: { e: Record<string, string> }, what: string) => {
    const raw = line.e.timeUnixNano;
    if (raw === undefined) throw new Error(`${what} line without timeUnixNano`);
    return BigInt(raw) - offset; // T − O = E − (O − S)
  };
  const t: Timed & { startedStampMs: number } = {
    run: 0,
    startedRawMs: nsToMs(started.t - kernelMono(started, 'containerStarted')),
    startedStampMs: nsToMs(started.t - stamp.mono),
    clockSkewMs: nsToMs(stamp.real - BigInt(started.e.timeUnixNano)),
  };
  if (privileged) {
    const det = await cw.waitFor(
      (e) => e.detection?.ruleId === 'escape.privileged-container' && e.detection.container?.id === id,
      10_000,
      from,
    );
    t.detectionRawMs = nsToMs(det.t - kernelMono(det, 'detection'));
  }
  return t;
}

async function one(
  lab: Lab,
  cw: CtrwatchRun,
  rt: RuntimeName,
  name: string,
  privileged: boolean,
  dir: string,
  underStorm = false,
  run = 0,
  beside?: Beside,
): Promise<LatencySample> {
  const s: LatencySample = { runtime: rt, id: name, privileged, underStorm, startCmdMs: NaN, run };
  const stampFile = join(dir, 'out', name);
  const from = cw.lines.length;
  const fromBeside = beside?.cw.lines.length ?? 0;
  const t0 = Date.now();
  let c: Started | undefined;
  try {
    c = await lab.start(rt, {
      name,
      privileged,
      args: ['/cwbench/stamp', `/cwbench/out/${name}`],
      mounts: [{ source: dir, destination: '/cwbench' }],
      timeoutMs: 60_000,
    });
    s.startCmdMs = Date.now() - t0;
    s.id = c.id;
    const id = c.id;
    // Each reader stamped its lines as they came: waiting here for one after the other adds nothing.
    await cw.waitFor((e) => e.containerStarted?.container?.id === id, 10_000, from);
    const stamp = await readStamp(stampFile);
    if (!stamp) throw new Error('no stamp written');
    const mine = await timeLines(cw, from, id, privileged, stamp);
    s.startedRawMs = mine.startedRawMs;
    s.startedStampMs = mine.startedStampMs;
    s.clockSkewMs = mine.clockSkewMs;
    s.detectionRawMs = mine.detectionRawMs;
    if (beside) {
      try {
        const b = await timeLines(beside.cw, fromBeside, id, privileged, stamp);
        s.before = { run: beside.run, startedRawMs: b.startedRawMs, detectionRawMs: b.detectionRawMs, clockSkewMs: b.clockSkewMs };
      } catch (e) {
        s.before = { run: beside.run, error: (e as Error).message.split('\n')[0] };
      }
    }
  } catch (e) {
    s.error = (e as Error).message.split('\n')[0];
  } finally {
    if (c) await lab.stop(c).catch((e: Error) => (s.error ??= `stop: ${e.message.split('\n')[0]}`));
  }
  return s;
}

export async function runLatency(cfg: LatencyConfig): Promise<LatencyResult> {
  const t0 = Date.now();
  if (cfg.before && !existsSync(join(cfg.before, 'dist', 'src', 'cli.js')))
    throw new Error(`BENCH_LATENCY_BEFORE=${cfg.before}: no dist/src/cli.js there (build that tree first)`);
  const stamp = buildStamp();
  const stateDir = mkdtempSync('/tmp/ctrwatch-bench-state-');
  const args = ['--state-dir', stateDir, ...(cfg.sensorArgs ?? [])];
  const res = emptyResult(cfg, args, stamp.kind);
  const RuntimeLab = loadLab();
  const dir = mkdtempSync('/tmp/ctrwatch-bench-stamp-');
  mkdirSync(join(dir, 'out'));
  copyFileSync(stamp.path, join(dir, 'stamp'));
  chmodSync(join(dir, 'stamp'), 0o755);
  mkdirSync(join(OUT, 'logs'), { recursive: true });
  let cw = new CtrwatchRun(args, join(OUT, 'logs', 'latency-ctrwatch.log'), cfg.readerFifo);
  // Before/after: the tree before runs beside this one, with a state directory of its own. Which
  // of the two loads first is swapped at half time (a tracepoint runs its programs in the order
  // they were attached, so the first sensor's record is written, and its reader woken, first).
  const beforeBin = cfg.before ? join(cfg.before, 'bin', 'ctrwatch') : undefined;
  const stateDirB = beforeBin ? mkdtempSync('/tmp/ctrwatch-bench-state-before-') : undefined;
  const argsB = stateDirB ? ['--state-dir', stateDirB, ...(cfg.sensorArgs ?? [])] : [];
  const beforeLog = (run: number) => join(OUT, 'logs', `latency-ctrwatch-before-${run}.log`);
  let cwB = beforeBin ? new CtrwatchRun(argsB, beforeLog(0), cfg.readerFifo, beforeBin) : undefined;
  const firstLoaded: ('after' | 'before')[] = [];
  const stopped: Record<'before' | 'after', SensorStopped[]> = { before: [], after: [] };
  const done = new Set<CtrwatchRun>();
  /** Each sensor process stopped once, its counters kept (a failure at half time leaves the rest to finally). */
  const stopOnce = async (x: CtrwatchRun | undefined, side: 'before' | 'after'): Promise<void> => {
    if (!x || done.has(x)) return;
    done.add(x);
    stopped[side].push(await x.stop().catch(() => ({})));
  };
  let run = 0;
  const startBoth = async (first: 'after' | 'before') => {
    firstLoaded.push(first);
    for (const side of cwB && first === 'before' ? (['before', 'after'] as const) : (['after', 'before'] as const))
      if (side === 'after') await cw.start();
      else if (cwB) await cwB.start();
  };
  const storm = cfg.storm ? new BackgroundStorm(stormCommand(cfg.storm.build, cfg.storm.workers, 36_000, 'container')) : undefined;
  if (storm) res.stormCommand = display(storm.cmd);
  let lab: Lab | undefined;
  const skipped = new Map<RuntimeName, string>();
  try {
    lab = await RuntimeLab.open();
    res.labDir = lab.dir;
    await startBoth('after');
    const beside = () => (cwB ? { cw: cwB, run } : undefined);
    const usable: RuntimeName[] = [];
    for (const rt of cfg.runtimes) {
      const av = RuntimeLab.available(rt);
      if (!av.ok) {
        skipped.set(rt, av.reason);
        continue;
      }
      // Warm-up: starts the runtime's daemon, imports the image; not counted.
      const w = await one(lab, cw, rt, `cwb-warm-${rt}`, false, dir, false, run, beside());
      if (w.error) {
        skipped.set(rt, `warm-up failed: ${w.error}`);
        cfg.log(`latency: ${rt} skipped: ${w.error}`);
        continue;
      }
      usable.push(rt);
    }
    const failuresInARow = new Map<string, number>();
    if (storm) storm.start();
    for (let i = 0; i < cfg.perRuntime; i++) {
      if (cwB && i === Math.floor(cfg.perRuntime / 2) && i > 0) {
        // Half time: both sensors again, the other one loading first.
        await stopOnce(cw, 'after');
        await stopOnce(cwB, 'before');
        run++;
        cw = new CtrwatchRun(args, join(OUT, 'logs', `latency-ctrwatch-${run}.log`), cfg.readerFifo);
        cwB = new CtrwatchRun(argsB, beforeLog(run), cfg.readerFifo, beforeBin);
        await startBoth('before');
        cfg.log('latency: both sensors restarted, the tree before loading first');
      }
      const order = usable.map((_, k) => usable[(k + i) % usable.length]);
      let taken = 0;
      for (const rt of order) {
        // Idle and under storm interleaved, the side alternating by round.
        for (const busy of storm ? (i % 2 ? [true, false] : [false, true]) : [false]) {
          const key = `${rt}${busy ? ':storm' : ''}`;
          if ((failuresInARow.get(key) ?? 0) >= 3) continue;
          storm?.signal(busy ? 'SIGCONT' : 'SIGSTOP');
          // Under storm: the storm at full speed before the container starts. Idle: the sensor
          // catches up with the storm's records first (a backlog would count as idle latency).
          if (storm) await sleep(busy ? 200 : IDLE_SETTLE_MS);
          const s = await one(lab, cw, rt, `cwb-${rt}-${i}${busy ? 's' : ''}`, i % 3 === 2, dir, busy, run, beside());
          storm?.signal('SIGSTOP');
          res.samples.push(s);
          taken++;
          failuresInARow.set(key, s.error ? (failuresInARow.get(key) ?? 0) + 1 : 0);
          if (s.error) cfg.log(`latency: ${key} #${i}: ${s.error}`);
        }
      }
      const last = res.samples
        .slice(-taken)
        .map((s) => `${s.runtime}${s.underStorm ? ' (storm)' : ''} ${s.startedRawMs?.toFixed(1) ?? 'x'}`)
        .join(', ');
      cfg.log(`latency round ${i + 1}/${cfg.perRuntime} (before the offset correction): ${last} ms`);
    }
    for (const rt of usable) if ((failuresInARow.get(rt) ?? 0) >= 3) skipped.set(rt, 'stopped after 3 failures in a row');
  } catch (e) {
    res.error = (e as Error).message;
    cfg.log(`latency failed: ${res.error}`);
  } finally {
    storm?.stop();
    await stopOnce(cw, 'after');
    await stopOnce(cwB, 'before');
    // One process: its counters are the part's. Two (a before/after run's restart): each is listed in that section.
    res.sensor = stopped.after.length === 1 ? stopped.after[0] : {};
    if (stateDirB) rmSync(stateDirB, { recursive: true, force: true });
    if (lab) await lab.close().catch((e: Error) => cfg.log(`latency: RuntimeLab.close: ${e.message}`));
    rmSync(dir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
  res.offsetErrsMs = correctOffsets(res.samples);
  res.offsetErrMs = res.offsetErrsMs[0] ?? NaN;
  if (cfg.before) res.beforeAfter = beforeAfterOf(res.samples, cfg.before, firstLoaded, stopped);
  for (const rt of cfg.runtimes) {
    const mine = res.samples.filter((s) => s.runtime === rt && !s.underStorm);
    const busy = res.samples.filter((s) => s.runtime === rt && s.underStorm);
    res.runtimes.push({
      runtime: rt,
      skipped: skipped.get(rt),
      started: dist(mine.map((s) => s.startedMs ?? NaN)),
      startCmdMs: dist(mine.map((s) => s.startCmdMs)),
      failures: mine.filter((s) => s.error).length,
      ...(storm ? { startedStorm: dist(busy.map((s) => s.startedMs ?? NaN)), failuresStorm: busy.filter((s) => s.error).length } : {}),
    });
  }
  res.detection = dist(res.samples.filter((s) => !s.underStorm).map((s) => s.detectionMs ?? NaN));
  if (storm) res.detectionStorm = dist(res.samples.filter((s) => s.underStorm).map((s) => s.detectionMs ?? NaN));
  res.clockSkewMs = dist(res.samples.map((s) => s.clockSkewMs ?? NaN));
  res.startedStamp = dist(res.samples.map((s) => s.startedStampMs ?? NaN));
  res.stampDelayMs = dist(res.samples.map((s) => s.stampDelayMs ?? NaN));
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}

/** The tree before's side of a before/after run: its offsets corrected, both sides over the samples both timed. */
function beforeAfterOf(
  samples: LatencySample[],
  before: string,
  firstLoaded: ('after' | 'before')[],
  stopped: Record<'before' | 'after', SensorStopped[]>,
): LatencyBeforeAfter {
  const bs = samples.filter((s) => s.before && !s.before.error).map((s) => s.before!);
  const errsB = errsByRun(bs);
  for (const b of bs) {
    const err = errsB[b.run] ?? NaN;
    if (b.startedRawMs !== undefined) b.startedMs = b.startedRawMs - err;
    if (b.detectionRawMs !== undefined) b.detectionMs = b.detectionRawMs - err;
  }
  // Only the samples both sensors timed, so that the two sides describe the same containers.
  const both = samples.filter((s) => !s.error && s.before && !s.before.error && s.startedMs !== undefined);
  const side = (get: (s: LatencySample) => Timed | undefined, who: 'before' | 'after'): LatencySide => {
    const pick = (storm: boolean, f: (t: Timed) => number | undefined) =>
      dist(both.filter((s) => s.underStorm === storm).map((s) => f(get(s)!) ?? NaN));
    const gap = (t: Timed) =>
      t.detectionRawMs !== undefined && t.startedRawMs !== undefined ? t.detectionRawMs - t.startedRawMs : undefined;
    return {
      started: pick(false, (t) => t.startedMs),
      startedStorm: pick(true, (t) => t.startedMs),
      detection: pick(false, (t) => t.detectionMs),
      detectionStorm: pick(true, (t) => t.detectionMs),
      gap: pick(false, gap),
      gapStorm: pick(true, gap),
      sensor: stopped[who],
    };
  };
  return {
    beforeDir: before,
    beforeCommit: treeCommit(before),
    offsetErrsMs: errsB,
    firstLoaded,
    sides: { after: side((s) => s, 'after'), before: side((s) => s.before, 'before') },
  };
}

/** err: the smallest skew of one sensor process (it takes its wall offset once) over its samples. */
function errOf(ts: { clockSkewMs?: number }[]): number {
  const skews = ts.map((t) => t.clockSkewMs).filter((x): x is number => x !== undefined && Number.isFinite(x));
  return skews.length ? Math.min(...skews) : NaN;
}

/** err by sensor process: index = run. */
function errsByRun(ts: { run: number; clockSkewMs?: number }[]): number[] {
  const runs = Math.max(-1, ...ts.map((t) => t.run)) + 1;
  return Array.from({ length: runs }, (_, r) => errOf(ts.filter((t) => t.run === r)));
}

/** Corrects each sample by the err of the process that timed it; returns each process's err. */
function correctOffsets(samples: LatencySample[]): number[] {
  const errs = errsByRun(samples);
  for (const s of samples) {
    const err = errs[s.run] ?? NaN;
    if (s.startedRawMs !== undefined) s.startedMs = s.startedRawMs - err;
    if (s.detectionRawMs !== undefined) s.detectionMs = s.detectionRawMs - err;
    if (s.clockSkewMs !== undefined) s.stampDelayMs = s.clockSkewMs - err;
  }
  return errs;
}

function emptyResult(cfg: LatencyConfig, args: string[], stampKind: string): LatencyResult {
  return {
    config: { perRuntime: cfg.perRuntime, runtimes: cfg.runtimes, readerFifo: cfg.readerFifo },
    command: `ctrwatch run ${args.join(' ')} (stdout piped to node dist/bench/ctrwatch-reader.js); containers via RuntimeLab: entrypoint bench/out/stamp (${stampKind}), every 3rd --privileged`,
    stampKind,
    samples: [],
    runtimes: [],
    detection: dist([]),
    startedStamp: dist([]),
    clockSkewMs: dist([]),
    offsetErrMs: NaN,
    stampDelayMs: dist([]),
    sensor: {},
    wallS: 0,
  };
}
