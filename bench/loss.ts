/**
 * Loss accounting: a fork/exec storm in its own mount namespace (storm -u:
 * every process is followed, so each exec also sends a fork and an exit)
 * overruns a deliberately small ring buffer (the addon's ringBytes 4096–16384,
 * drained only every `drainMs`, forced wake-ups off). Every record the kernel
 * programs made must be either received or counted as dropped:
 *
 *   received + dropped = produced, per record type, exactly.
 *
 * "Produced" is known independently of the small sensor's own counters:
 * - the storm prints how many execs it made (its children exit 0 only after
 *   exec'ing storm-child);
 * - a reference sensor (the same programs, a 64 MiB ring drained every 10 ms,
 *   loaded once for the whole part; its drops must be 0) sees every record the
 *   node produced meanwhile — the storm's and those of every other process
 *   (other sessions exec too) — with its kernel timestamp.
 *
 * The window is the time between two reads of the small sensor's counters
 * (c0 right after a drain, before the storm; c1 after the storm). At the end
 * the ring is drained once more and the counters read again until nothing was
 * sent in between, so the small sensor's received total must equal its sent
 * total exactly. Records of the reference whose kernel time falls within
 * MARGIN of either counter read are ambiguous (they may be on either side) and
 * counted apart; there are usually none.
 */
import pino from 'pino';
import type { DecodedBatch } from '../src/decode/records';
import { DecodeStage } from '../src/decode/stage';
import { KernelSensor, type KernelCounters } from '../src/kernel/sensor';
import { display, runStorm, sleep, stormCommand, summarize, type StormBuild, type StormResult, type Summary } from './lib';

export interface LossConfig {
  ringSizes: number[];
  rounds: number;
  seconds: number;
  workers: number;
  drainMs: number;
  storm: StormBuild;
  log: (msg: string) => void;
}

const TYPES = ['fork', 'exec', 'exit', 'cgroup_mkdir', 'cgroup_rmdir', 'cgroup_attach', 'syscall'] as const;
type Type = (typeof TYPES)[number];
const kindType = (k: string): Type => (k === 'cgroup_attach' ? 'cgroup_attach' : (k as Type));

/** Kernel time slack around a counter read: a record's ktime is taken a little before it is counted. */
const MARGIN_NS = 50_000n;

export interface TypeBalance {
  /** Small sensor: records of this type received whose ktime is in the window. */
  received: number;
  /** Small sensor: sent_<type> delta over the window (its counters). */
  sent: number;
  /** Small sensor: dropped_<type> delta over the window. */
  dropped: number;
  /** Reference sensor: records of this type with ktime in the window. */
  produced: number;
  /** Reference records within MARGIN of a window edge: could be on either side. */
  ambiguous: number;
  /** received + dropped − produced. */
  mismatch: number;
}

export interface LossRun {
  round: number;
  ringBytes: number;
  storm?: StormResult;
  /** The storm's mount namespace inode (from its execs of storm-child). */
  stormMnt?: number;
  /** Storm: execs it counted itself; the reference sensor's exec records in its namespace; the small sensor's received ones. */
  stormExecs?: number;
  refStormExecs?: number;
  receivedStormExecs?: number;
  /** Of the small sensor's exec drops, the storm's (stormExecs − receivedStormExecs) and the other processes' (the rest). */
  droppedStormExecs?: number;
  droppedOtherExecs?: number;
  /** Execs of other processes in the window (reference sensor). */
  otherExecs?: number;
  types?: Record<Type, TypeBalance>;
  /** Σ over types of |mismatch| beyond the ambiguous count. */
  unexplained?: number;
  /** Small sensor, its whole life: records received − Σ sent (must be 0), and its drops. */
  receivedMinusSent?: number;
  totalDropped?: number;
  /** Fraction of the window's records dropped. */
  dropFraction?: number;
  refDropped?: number;
  error?: string;
}

export interface LossResult {
  config: Omit<LossConfig, 'log' | 'storm'>;
  command: string;
  runs: LossRun[];
  /** Per run: Σ|received + dropped − produced| not covered by ambiguous records, plus |storm execs − reference's|. */
  unexplained: Summary;
  dropFraction: Summary;
  wallS: number;
}

interface Rec {
  type: Type;
  ktime: bigint;
  mnt: number;
  storm: boolean;
}

const sentOf = (c: KernelCounters) => TYPES.reduce((s, t) => s + (c.kernel[`sent_${t}`] ?? 0), 0);

function collect(into: Rec[], child: string): (b: DecodedBatch) => void {
  return (b) => {
    for (const r of b.records) {
      into.push({ type: kindType(r.kind), ktime: r.ktime, mnt: r.task.ns.mnt, storm: r.kind === 'exec' && r.filename === child });
    }
  };
}

async function oneRun(
  cfg: LossConfig,
  ringBytes: number,
  round: number,
  refRecs: Rec[],
  ref: KernelSensor,
  hostMnt: number,
): Promise<LossRun> {
  const run: LossRun = { round, ringBytes };
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const recs: Rec[] = [];
  let received = 0;
  const onSmall = collect(recs, cfg.storm.child);
  const small = new KernelSensor(
    { logger, ringBytes, drainMs: cfg.drainMs, wakeGapNs: 1e18 },
    new DecodeStage(logger, (b) => {
      received += b.records.length + b.errors.length;
      onSmall(b);
    }).push,
  );
  try {
    small.start();
    await sleep(300);
    // Window start: both rings emptied, then the small sensor's counters.
    ref.drain();
    small.drain();
    const t0a = process.hrtime.bigint();
    const c0 = small.counters();
    const t0b = process.hrtime.bigint();
    run.storm = await runStorm(stormCommand(cfg.storm, cfg.workers, cfg.seconds, 'sandbox'));
    await sleep(20);
    // Window end: counters, drain, counters again, until nothing was sent between the two reads.
    let c1: KernelCounters;
    let t1a: bigint;
    let t1b: bigint;
    for (let i = 0; ; i++) {
      t1a = process.hrtime.bigint();
      c1 = small.counters();
      t1b = process.hrtime.bigint();
      small.drain();
      const c2 = small.counters();
      if (sentOf(c2) === sentOf(c1)) break;
      if (i >= 50) throw new Error('the node never went quiet for one drain');
    }
    await sleep(100);
    ref.drain();
    run.receivedMinusSent = received - sentOf(c1);
    run.totalDropped = c1.dropped;
    run.refDropped = ref.counters().dropped;

    const inWin = (k: bigint) => k > t0b + MARGIN_NS && k < t1a - MARGIN_NS;
    const edge = (k: bigint) => (k >= t0a - MARGIN_NS && k <= t0b + MARGIN_NS) || (k >= t1a - MARGIN_NS && k <= t1b + MARGIN_NS);
    const stormMnts = new Set(refRecs.filter((r) => r.storm && inWin(r.ktime) && r.mnt !== hostMnt).map((r) => r.mnt));
    if (stormMnts.size !== 1) throw new Error(`expected the storm's execs in one mount namespace, found ${stormMnts.size}`);
    const mnt = [...stormMnts][0];
    run.stormMnt = mnt;
    const types = {} as Record<Type, TypeBalance>;
    let unexplained = 0;
    let windowRecords = 0;
    let windowDropped = 0;
    for (const t of TYPES) {
      const b: TypeBalance = {
        received: recs.filter((r) => r.type === t && inWin(r.ktime)).length,
        sent: (c1.kernel[`sent_${t}`] ?? 0) - (c0.kernel[`sent_${t}`] ?? 0),
        dropped: (c1.kernel[`dropped_${t}`] ?? 0) - (c0.kernel[`dropped_${t}`] ?? 0),
        produced: refRecs.filter((r) => r.type === t && inWin(r.ktime)).length,
        ambiguous: refRecs.filter((r) => r.type === t && edge(r.ktime)).length,
        mismatch: 0,
      };
      b.mismatch = b.received + b.dropped - b.produced;
      unexplained += Math.max(0, Math.abs(b.mismatch) - b.ambiguous);
      windowRecords += b.produced;
      windowDropped += b.dropped;
      types[t] = b;
    }
    run.types = types;
    run.stormExecs = run.storm.execs;
    run.refStormExecs = refRecs.filter((r) => r.type === 'exec' && r.mnt === mnt && inWin(r.ktime)).length;
    run.receivedStormExecs = recs.filter((r) => r.type === 'exec' && r.mnt === mnt && inWin(r.ktime)).length;
    run.droppedStormExecs = run.stormExecs - run.receivedStormExecs;
    run.droppedOtherExecs = types.exec.dropped - run.droppedStormExecs;
    run.otherExecs = types.exec.produced - run.refStormExecs;
    unexplained += Math.abs(run.stormExecs - run.refStormExecs) + Math.abs(run.receivedMinusSent);
    run.unexplained = unexplained;
    run.dropFraction = windowRecords ? windowDropped / windowRecords : NaN;
    if (run.refDropped) run.error = `the reference sensor dropped ${run.refDropped} records: produced is not known`;
  } catch (e) {
    run.error = (e as Error).message;
  } finally {
    small.close();
  }
  return run;
}

export async function runLoss(cfg: LossConfig): Promise<LossResult> {
  const t0 = Date.now();
  const refRecs: Rec[] = [];
  const refLog = pino({ level: 'warn' }, pino.destination(2));
  const ref = new KernelSensor(
    { logger: refLog, ringBytes: 64 << 20, drainMs: 10 },
    new DecodeStage(refLog, collect(refRecs, cfg.storm.child)).push,
  );
  const runs: LossRun[] = [];
  ref.start();
  const hostMnt = ref.host.hostNs[0];
  try {
    for (let r = 0; r < cfg.rounds; r++) {
      for (let i = 0; i < cfg.ringSizes.length; i++) {
        const size = cfg.ringSizes[(i + r) % cfg.ringSizes.length];
        refRecs.length = 0;
        const run = await oneRun(cfg, size, r, refRecs, ref, hostMnt);
        runs.push(run);
        const ex = run.types?.exec;
        cfg.log(
          `loss: ring ${size} B: ${run.error ? `error: ${run.error}` : `storm ${run.stormExecs} execs (reference saw ${run.refStormExecs}), small ring received ${run.receivedStormExecs}; exec received ${ex!.received} + dropped ${ex!.dropped} − produced ${ex!.produced} = ${ex!.mismatch} (ambiguous ${ex!.ambiguous}); unexplained ${run.unexplained}, ${((run.dropFraction ?? NaN) * 100).toFixed(1)}% dropped`}`,
        );
      }
    }
  } finally {
    ref.close();
  }
  const ok = runs.filter((x) => !x.error);
  const { log: _l, storm: _s, ...rest } = cfg;
  return {
    config: rest,
    command: `${display(stormCommand(cfg.storm, cfg.workers, cfg.seconds, 'sandbox'))} beside KernelSensor({ ringBytes: ${cfg.ringSizes.join('|')}, drainMs: ${cfg.drainMs}, wakeGapNs: 1e18 }) and a reference KernelSensor({ ringBytes: 64 MiB, drainMs: 10 })`,
    runs,
    unexplained: summarize(runs.map((x) => (x.error ? NaN : x.unexplained!))),
    dropFraction: summarize(ok.map((x) => x.dropFraction!)),
    wallS: (Date.now() - t0) / 1000,
  };
}
