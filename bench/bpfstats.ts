/**
 * Kernel-side cost, not timed against anything: with kernel.bpf_stats_enabled
 * set for the duration of one storm per variant, the run time and run count of
 * each BPF program the variant holds (found through its fds' fdinfo). The
 * sysctl is global and adds a little to every BPF program on the machine, so
 * this runs after the overhead rounds and restores the previous value.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
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

export interface BpfStatsResult {
  enabledBefore: boolean;
  seconds: number;
  variants: BpfStatsVariant[];
  error?: string;
}

async function one(v: Variant, storm: StormBuild, workers: number, seconds: number): Promise<BpfStatsVariant> {
  const res: BpfStatsVariant = { scenario: v.scenario, variant: v.name, command: display(v.cmd), programs: [] };
  mkdirSync(join(OUT, 'logs'), { recursive: true });
  const logFd = openSync(join(OUT, 'logs', `bpfstats-${v.scenario}-${v.name}.log`), 'w');
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

export async function runBpfStats(variants: Variant[], storm: StormBuild, workers: number, seconds: number): Promise<BpfStatsResult> {
  let before: string;
  try {
    before = readFileSync(SYSCTL, 'utf8').trim();
    writeFileSync(SYSCTL, '1');
  } catch (err) {
    return { enabledBefore: false, seconds, variants: [], error: `cannot enable ${SYSCTL}: ${(err as Error).message}` };
  }
  const out: BpfStatsResult = { enabledBefore: before !== '0', seconds, variants: [] };
  try {
    for (const v of variants) if (v.cmd.length) out.variants.push(await one(v, storm, workers, seconds));
  } finally {
    writeFileSync(SYSCTL, before);
  }
  return out;
}
