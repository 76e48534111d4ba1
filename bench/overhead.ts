/**
 * Overhead: rounds of fork/exec storms. In each round every variant runs once,
 * paired with a baseline storm (storm alone) right before or right after it
 * (the side alternates from pair to pair and round to round; the order of the
 * variants rotates from round to round). A variant's figure for a round is its
 * storm throughput ÷ its pair's baseline throughput, so that slow drifts of
 * the machine's load cancel.
 *
 * Per run: start the variant's command, wait until its BPF programs are
 * attached (and, for sensor-proc, its ready line), let it settle, run a
 * warm-up storm (every run, baselines too, so that pairs stay alike), settle
 * again, snapshot its counters (SIGUSR2, or its metrics) and its process
 * tree's CPU time, run the storm, snapshot again, stop it (SIGTERM; SIGKILL
 * to its process group after 10 s). Why the warm-up: a sensor runs for days,
 * and a just-started node process spends its first seconds of load compiling
 * its hot code; the warm-up storm's own figures are kept as the cold ones.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  attachedCount,
  display,
  exited,
  foreignSensors,
  machineBusyS,
  OUT,
  progIds,
  ROOT,
  runStorm,
  sleep,
  stormCommand,
  summarize,
  track,
  treeCpu,
  type StormBuild,
  type StormResult,
  type Summary,
} from './lib';
import type { Scenario, Variant } from './variants';

export interface OverheadConfig {
  rounds: number;
  seconds: number;
  workers: number;
  settleMs: number;
  /** Seconds of the warm-up storm before the measured one (0: none). */
  warmupS: number;
  storm: StormBuild;
  variants: Variant[];
  log: (msg: string) => void;
}

interface CounterLine {
  counters: { kernel: Record<string, number>; records: number; batches: number; decodeErrors: number; dropped: number };
  decoded: number;
  rawBytes: number;
  final: boolean;
}

export interface Run {
  round: number;
  position: number;
  scenario: Scenario;
  variant: string;
  storm?: StormResult;
  /** ms from spawn to attached. */
  startupMs?: number;
  /** CPU seconds (utime+stime) of the variant's process tree during the storm. */
  cpuS?: number;
  /** Deltas of the sensor's counters during the storm. */
  records?: number;
  /** The warm-up storm: the variant's CPU then, and the records it decoded (counters or metrics). */
  cold?: { cpuS: number; records?: number; execs: number };
  batches?: number;
  decoded?: number;
  wakeups?: number;
  dropped?: number;
  decodeErrors?: number;
  /** CPU of everything else on the machine during the storm, in cores (busy − storm − variant). */
  otherCores?: number;
  /** Index of the pair (within the round) this run belongs to. */
  pair: number;
  /** ctrwatch sensors of others (cw_exec programs not ours) loaded when the storm started. */
  foreignSensors: number;
  error?: string;
  log?: string;
}

export interface Pair {
  round: number;
  pair: number;
  scenario: Scenario;
  variant: string;
  /** Variant's execs/s ÷ its baseline's. */
  ratio: number;
  /** (Storm CPU + variant CPU) per exec ÷ baseline storm CPU per exec. */
  cpuRatio: number;
  /** The larger of the two runs' other load, in cores. */
  otherCores: number;
}

export interface VariantFigures {
  scenario: Scenario;
  variant: string;
  description: string;
  command: string;
  target?: Variant['target'];
  /** Throughput with ÷ without, per pair (one pair a round). */
  ratio: Summary;
  ratios: number[];
  /** The same over the pairs in which other load stayed under QUIET_CORES in both runs. */
  quietRatio: Summary;
  /** CPU cost with ÷ without per exec: (storm + variant CPU) ÷ baseline storm CPU. */
  cpuRatio: Summary;
  /** Other load during the variant's runs, cores. */
  otherCores: Summary;
  execsPerS: Summary;
  /** Storm CPU (user+sys, all its processes) per exec, µs. */
  stormCpuUsPerExec: Summary;
  /** Variant's CPU ms per 1,000 records (counters protocol only). */
  cpuMsPer1kRecords?: Summary;
  /** Variant's CPU ms per 1,000 execs of the storm. */
  cpuMsPer1kExecs?: Summary;
  recordsPerExec?: Summary;
  wakeupsPerS?: Summary;
  batchesPerS?: Summary;
  droppedTotal?: number;
  decodeErrorsTotal?: number;
  failedRuns: number;
}

export interface OverheadResult {
  config: Omit<OverheadConfig, 'log' | 'variants' | 'storm'> & { storm: StormBuild; stormCommand: Record<Scenario, string> };
  runs: Run[];
  pairs: Pair[];
  quietCores: number;
  figures: VariantFigures[];
  /** Rounds in which another ctrwatch sensor was loaded during some storm. */
  roundsWithForeignSensors: number;
  wallS: number;
}

class Lines {
  private buf: unknown[] = [];
  private waiters: ((o: unknown) => void)[] = [];
  constructor(p: ChildProcess) {
    createInterface({ input: p.stdout! }).on('line', (l) => {
      let o: unknown;
      try {
        o = JSON.parse(l);
      } catch {
        return;
      }
      const w = this.waiters.shift();
      if (w) w(o);
      else this.buf.push(o);
    });
  }
  next(timeoutMs: number, what: string): Promise<unknown> {
    if (this.buf.length) return Promise.resolve(this.buf.shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (o: unknown) => {
        clearTimeout(t);
        resolve(o);
      };
      this.waiters.push(done);
    });
  }
}

async function waitAttached(p: ChildProcess, min: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let prev = -1;
  for (;;) {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`exited (${p.exitCode ?? p.signalCode}) before attaching`);
    const n = attachedCount(p.pid!);
    if (n >= min && n === prev) return;
    prev = n;
    if (Date.now() > until) throw new Error(`only ${n} BPF attachments after ${timeoutMs} ms (want ≥ ${min})`);
    await sleep(100);
  }
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  const t = setTimeout(() => {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, 10_000);
  await exited(p);
  clearTimeout(t);
}

/** Runs the storm, measuring the rest of the machine's load meanwhile. */
async function measuredStorm(run: Run, cmd: string[]): Promise<void> {
  const b0 = machineBusyS();
  run.storm = await runStorm(cmd);
  const busy = machineBusyS() - b0;
  run.otherCores = Math.max(0, busy - run.storm.cpu_user_s - run.storm.cpu_sys_s - (run.cpuS ?? 0)) / run.storm.elapsed_s;
}

/** Records the variant has decoded so far, from its counters line or its metrics; undefined when it has neither. */
type RecordsNow = () => Promise<number | undefined>;

/** `ctrwatch_records_decoded_total` from a Prometheus text page. */
async function scrapeRecords(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const m = /^ctrwatch_records_decoded_total(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
  if (!m) throw new Error(`no ctrwatch_records_decoded_total at ${url}`);
  return Number(m[1]);
}

/** The warm-up storm and a settle after it; its CPU and records become the run's cold figures. */
async function warmUp(run: Run, v: Variant, cfg: OverheadConfig, pid: number | undefined, records: RecordsNow): Promise<void> {
  if (cfg.warmupS <= 0) return;
  const r0 = await records();
  const cpu0 = pid ? treeCpu(pid) : 0;
  const s = await runStorm(stormCommand(cfg.storm, cfg.workers, cfg.warmupS, v.scenario));
  const cpuS = pid ? treeCpu(pid) - cpu0 : 0;
  const r1 = await records();
  run.cold = { cpuS, execs: s.execs, records: r0 !== undefined && r1 !== undefined ? r1 - r0 : undefined };
  await sleep(cfg.settleMs);
}

async function runOne(v: Variant, round: number, pair: number, position: number, cfg: OverheadConfig): Promise<Run> {
  const run: Run = { round, pair, position, scenario: v.scenario, variant: v.name, foreignSensors: 0 };
  const storm = stormCommand(cfg.storm, cfg.workers, cfg.seconds, v.scenario);
  if (!v.cmd.length) {
    await sleep(cfg.settleMs);
    await warmUp(run, v, cfg, undefined, async () => undefined);
    run.foreignSensors = foreignSensors();
    await measuredStorm(run, storm);
    return run;
  }
  const logDir = join(OUT, 'logs');
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `r${round}-${v.scenario}-${v.name}.log`);
  run.log = logPath.slice(ROOT.length + 1);
  const logFd = openSync(logPath, 'w');
  const t0 = Date.now();
  const stdout = v.protocol === 'counters' ? 'pipe' : v.stdout === 'null' ? 'ignore' : logFd;
  const p = track(spawn(v.cmd[0], v.cmd.slice(1), { cwd: ROOT, detached: true, stdio: ['ignore', stdout, logFd] }));
  closeSync(logFd);
  const lines = v.protocol === 'counters' ? new Lines(p) : undefined;
  try {
    if (lines) {
      const ready = (await Promise.race([
        lines.next(60_000, 'the ready line'),
        exited(p).then((c) => Promise.reject(new Error(`exited (${c}) before its ready line`))),
      ])) as { ready?: boolean };
      if (!ready.ready) throw new Error(`unexpected first line ${JSON.stringify(ready)}`);
    }
    await waitAttached(p, v.minAttached, 60_000);
    run.startupMs = Date.now() - t0;
    await sleep(cfg.settleMs);
    const snap = async () => {
      if (!lines) return undefined;
      p.kill('SIGUSR2');
      return (await lines.next(10_000, 'a counters line')) as CounterLine;
    };
    const records: RecordsNow = async () =>
      lines ? (await snap())!.counters.records : v.metricsUrl ? scrapeRecords(v.metricsUrl) : undefined;
    await warmUp(run, v, cfg, p.pid!, records);
    run.foreignSensors = foreignSensors(progIds(p.pid!));
    const c0 = await snap();
    const m0 = v.metricsUrl ? await scrapeRecords(v.metricsUrl) : undefined;
    const cpu0 = treeCpu(p.pid!);
    const b0 = machineBusyS();
    run.storm = await runStorm(storm);
    const busy = machineBusyS() - b0;
    const c1 = await snap();
    const cpu1 = treeCpu(p.pid!);
    if (m0 !== undefined) run.records = (await scrapeRecords(v.metricsUrl!)) - m0;
    run.cpuS = cpu1 - cpu0;
    run.otherCores = Math.max(0, busy - run.storm.cpu_user_s - run.storm.cpu_sys_s - run.cpuS) / run.storm.elapsed_s;
    if (c0 && c1) {
      run.records = c1.counters.records - c0.counters.records;
      run.batches = c1.counters.batches - c0.counters.batches;
      run.decoded = c1.decoded - c0.decoded;
      run.wakeups = (c1.counters.kernel.wakeups ?? 0) - (c0.counters.kernel.wakeups ?? 0);
      run.dropped = c1.counters.dropped - c0.counters.dropped;
      run.decodeErrors = c1.counters.decodeErrors - c0.counters.decodeErrors;
    }
  } catch (err) {
    run.error = (err as Error).message;
    const tail = readFileSync(logPath, 'utf8').split('\n').slice(-5).join('\n');
    cfg.log(`  ${v.scenario}:${v.name} round ${round} failed: ${run.error}\n${tail}`);
  } finally {
    await stop(p);
  }
  return run;
}

/** Pairs with other load under this many cores in both runs count as quiet. */
export const QUIET_CORES = 0.25;

export async function runOverhead(cfg: OverheadConfig): Promise<OverheadResult> {
  const t0 = Date.now();
  const runs: Run[] = [];
  const pairs: Pair[] = [];
  const baselines = new Map(cfg.variants.filter((v) => v.name === 'baseline').map((v) => [v.scenario, v]));
  const vs = cfg.variants.filter((v) => v.name !== 'baseline' && baselines.has(v.scenario));
  for (let r = 0; r < cfg.rounds; r++) {
    const order = vs.map((_, i) => vs[(i + r) % vs.length]);
    const parts: string[] = [];
    let position = 0;
    for (let i = 0; i < order.length; i++) {
      const v = order[i];
      const base = baselines.get(v.scenario)!;
      const baseFirst = (r + i) % 2 === 0;
      const a = await runOne(baseFirst ? base : v, r, i, position++, cfg);
      const b = await runOne(baseFirst ? v : base, r, i, position++, cfg);
      runs.push(a, b);
      const [bRun, vRun] = baseFirst ? [a, b] : [b, a];
      const label = `${v.scenario === 'host' ? '' : v.scenario + ':'}${v.name}`;
      if (bRun.storm && vRun.storm && !vRun.error) {
        const per = (x: Run) => (x.storm!.cpu_user_s + x.storm!.cpu_sys_s + (x.cpuS ?? 0)) / x.storm!.execs;
        const p: Pair = {
          round: r,
          pair: i,
          scenario: v.scenario,
          variant: v.name,
          ratio: vRun.storm.execs_per_s / bRun.storm.execs_per_s,
          cpuRatio: per(vRun) / per(bRun),
          otherCores: Math.max(bRun.otherCores ?? 0, vRun.otherCores ?? 0),
        };
        pairs.push(p);
        parts.push(`${label} ${p.ratio.toFixed(3)}`);
      } else parts.push(`${label} FAILED`);
    }
    cfg.log(`round ${r + 1}/${cfg.rounds} ratios: ${parts.join(', ')}`);
  }
  return {
    config: {
      rounds: cfg.rounds,
      seconds: cfg.seconds,
      workers: cfg.workers,
      settleMs: cfg.settleMs,
      warmupS: cfg.warmupS,
      storm: cfg.storm,
      stormCommand: {
        host: display(stormCommand(cfg.storm, cfg.workers, cfg.seconds, 'host')),
        container: display(stormCommand(cfg.storm, cfg.workers, cfg.seconds, 'container')),
        sandbox: display(stormCommand(cfg.storm, cfg.workers, cfg.seconds, 'sandbox')),
      },
    },
    runs,
    pairs,
    quietCores: QUIET_CORES,
    figures: figures(runs, pairs, cfg.variants),
    roundsWithForeignSensors: new Set(runs.filter((x) => x.foreignSensors > 0).map((x) => x.round)).size,
    wallS: (Date.now() - t0) / 1000,
  };
}

function figures(runs: Run[], pairs: Pair[], vs: Variant[]): VariantFigures[] {
  const out: VariantFigures[] = [];
  for (const v of vs) {
    const mine = runs.filter((x) => x.scenario === v.scenario && x.variant === v.name);
    const ok = mine.filter((x) => x.storm && !x.error);
    const ps = pairs.filter((p) => p.scenario === v.scenario && p.variant === v.name);
    const ratios = ps.map((p) => p.ratio);
    const f: VariantFigures = {
      scenario: v.scenario,
      variant: v.name,
      description: v.description,
      command: v.cmd.length ? display(v.cmd) : '(none)',
      target: v.target,
      ratio: summarize(ratios),
      ratios,
      quietRatio: summarize(ps.filter((p) => p.otherCores < QUIET_CORES).map((p) => p.ratio)),
      cpuRatio: summarize(ps.map((p) => p.cpuRatio)),
      otherCores: summarize(ok.map((x) => x.otherCores ?? NaN)),
      execsPerS: summarize(ok.map((x) => x.storm!.execs_per_s)),
      stormCpuUsPerExec: summarize(ok.map((x) => ((x.storm!.cpu_user_s + x.storm!.cpu_sys_s) / x.storm!.execs) * 1e6)),
      failedRuns: mine.length - ok.length,
    };
    if (v.cmd.length) {
      f.cpuMsPer1kExecs = summarize(ok.map((x) => ((x.cpuS ?? NaN) * 1e6) / x.storm!.execs));
    }
    if (v.protocol === 'counters' || v.metricsUrl) {
      f.cpuMsPer1kRecords = summarize(ok.map((x) => ((x.cpuS ?? NaN) * 1e6) / (x.records ?? NaN)));
      f.recordsPerExec = summarize(ok.map((x) => (x.records ?? NaN) / x.storm!.execs));
    }
    if (v.protocol === 'counters') {
      f.wakeupsPerS = summarize(ok.map((x) => (x.wakeups ?? NaN) / x.storm!.elapsed_s));
      f.batchesPerS = summarize(ok.map((x) => (x.batches ?? NaN) / x.storm!.elapsed_s));
      f.droppedTotal = ok.reduce((s, x) => s + (x.dropped ?? 0), 0);
      f.decodeErrorsTotal = ok.reduce((s, x) => s + (x.decodeErrors ?? 0), 0);
    }
    out.push(f);
  }
  return out;
}
