/**
 * Kernel-side cost, not timed against anything: with kernel.bpf_stats_enabled
 * set for the duration of one storm per variant, the run time and run count of
 * each BPF program the variant holds (found through its fds' fdinfo). The
 * sysctl is global and adds a little to every BPF program on the machine, so
 * this runs after the overhead rounds and restores the previous value.
 *
 * With a built tree of an earlier commit (BENCH_BPF_BEFORE), each sensor-proc
 * variant then runs in pairs, that tree's sensor-proc (its BPF object) and this
 * one's, the order alternating: its programs' ns per run, side by side.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  attachedCount,
  display,
  exited,
  OUT,
  progIds,
  progInfo,
  ROOT,
  runStorm,
  sleep,
  stormCommand,
  track,
  treeCommit,
  type StormBuild,
  type StormResult,
} from './lib';
import type { Variant } from './variants';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

export interface ProgCost {
  name: string;
  type: string;
  runs: number;
  nsPerRun: number;
}

export interface BpfStatsVariant {
  scenario: string;
  variant: string;
  command: string;
  storm?: StormResult;
  programs: ProgCost[];
  /** Σ run time of the variant's programs ÷ execs of the storm, ns. */
  nsPerExec?: number;
  error?: string;
}

/** One pair of storms: the tree before's sensor and this one's, in the order run. */
export interface BpfStatsPair {
  scenario: string;
  variant: string;
  pair: number;
  /** AB: the tree before first. */
  order: 'AB' | 'BA';
  before: BpfStatsVariant;
  after: BpfStatsVariant;
}

export interface BpfStatsBeforeAfter {
  beforeDir: string;
  beforeCommit?: string;
  pairs: BpfStatsPair[];
  errors: string[];
}

export interface BpfStatsResult {
  enabledBefore: boolean;
  seconds: number;
  variants: BpfStatsVariant[];
  beforeAfter?: BpfStatsBeforeAfter;
  error?: string;
}

/** BENCH_BPF_BEFORE, BENCH_BPF_PAIRS. */
export interface BpfStatsBeforeOptions {
  dir: string;
  pairs: number;
}

const SENSOR_PROC = join('dist', 'bench', 'sensor-proc.js');

/** Variants run from both trees: sensor-proc's (KernelSensor and the decoder, nothing of the pipeline). */
export const runsFromBothTrees = (v: Variant): boolean => v.cmd.length > 1 && v.cmd[1].endsWith(SENSOR_PROC);

/** The same variant run by the tree at dir: its sensor-proc.js, so its BPF object. */
export function beforeVariant(v: Variant, dir: string): Variant {
  return { ...v, cmd: [v.cmd[0], join(dir, SENSOR_PROC), ...v.cmd.slice(2)] };
}

async function beforeAfter(
  variants: Variant[],
  o: BpfStatsBeforeOptions,
  storm: StormBuild,
  workers: number,
  seconds: number,
): Promise<BpfStatsBeforeAfter> {
  const out: BpfStatsBeforeAfter = { beforeDir: o.dir, beforeCommit: treeCommit(o.dir), pairs: [], errors: [] };
  if (!existsSync(join(o.dir, SENSOR_PROC))) {
    out.errors.push(`BENCH_BPF_BEFORE ${o.dir}: no dist/bench/sensor-proc.js (build that tree first)`);
    return out;
  }
  for (const v of variants.filter(runsFromBothTrees)) {
    const b = beforeVariant(v, o.dir);
    for (let pair = 0; pair < o.pairs; pair++) {
      const order = pair % 2 === 0 ? 'AB' : 'BA';
      const side = (x: Variant) => `-pair${pair}-${x === b ? 'before' : 'after'}`;
      const [x1, x2] = order === 'AB' ? [b, v] : [v, b];
      const first = await one(x1, storm, workers, seconds, side(x1));
      const second = await one(x2, storm, workers, seconds, side(x2));
      const [before, after] = order === 'AB' ? [first, second] : [second, first];
      for (const x of [before, after]) if (x.error) out.errors.push(`${v.scenario}:${v.name} pair ${pair}: ${x.error}`);
      out.pairs.push({ scenario: v.scenario, variant: v.name, pair, order, before, after });
    }
  }
  return out;
}

/** label: added to the log file's name (a before/after pair's side and number). */
async function one(v: Variant, storm: StormBuild, workers: number, seconds: number, label = ''): Promise<BpfStatsVariant> {
  const res: BpfStatsVariant = { scenario: v.scenario, variant: v.name, command: display(v.cmd), programs: [] };
  mkdirSync(join(OUT, 'logs'), { recursive: true });
  const logFd = openSync(join(OUT, 'logs', `bpfstats-${v.scenario}-${v.name}${label}.log`), 'w');
  const p = track(
    spawn(v.cmd[0], v.cmd.slice(1), {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', v.stdout === 'null' ? 'ignore' : logFd, logFd],
    }),
  );
  closeSync(logFd);
  try {
    const until = Date.now() + 60_000;
    let prev = -1;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error('exited before attaching');
      const n = attachedCount(p.pid!);
      if (n >= Math.max(1, v.minAttached) && n === prev) break;
      prev = n;
      if (Date.now() > until) throw new Error('not attached after 60 s');
      await sleep(100);
    }
    await sleep(300);
    const ids = progIds(p.pid!);
    const before = new Map(ids.map((id) => [id, progInfo(id)]));
    res.storm = await runStorm(stormCommand(storm, workers, seconds, v.scenario));
    let total = 0;
    for (const id of ids) {
      const a = before.get(id);
      const b = progInfo(id);
      if (!a || !b) continue;
      const runs = (b.run_cnt ?? 0) - (a.run_cnt ?? 0);
      const ns = (b.run_time_ns ?? 0) - (a.run_time_ns ?? 0);
      total += ns;
      if (runs > 0) res.programs.push({ name: b.name, type: b.type, runs, nsPerRun: ns / runs });
    }
    res.programs.sort((x, y) => y.runs * y.nsPerRun - x.runs * x.nsPerRun);
    res.nsPerExec = total / res.storm.execs;
  } catch (err) {
    res.error = (err as Error).message;
  } finally {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      const t = setTimeout(() => p.pid && process.kill(-p.pid, 'SIGKILL'), 10_000);
      await exited(p);
      clearTimeout(t);
    }
  }
  return res;
}

export async function runBpfStats(
  variants: Variant[],
  storm: StormBuild,
  workers: number,
  seconds: number,
  before?: BpfStatsBeforeOptions,
): Promise<BpfStatsResult> {
  let was: string;
  try {
    was = readFileSync(SYSCTL, 'utf8').trim();
    writeFileSync(SYSCTL, '1');
  } catch (err) {
    return { enabledBefore: false, seconds, variants: [], error: `cannot enable ${SYSCTL}: ${(err as Error).message}` };
  }
  const out: BpfStatsResult = { enabledBefore: was !== '0', seconds, variants: [] };
  try {
    for (const v of variants) if (v.cmd.length) out.variants.push(await one(v, storm, workers, seconds));
    if (before) out.beforeAfter = await beforeAfter(variants, before, storm, workers, seconds);
  } finally {
    writeFileSync(SYSCTL, was);
  }
  return out;
}
