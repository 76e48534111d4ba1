/**
 * The kernel side before and after (bpfstats part, BENCH_BPF_BEFORE): the same sensor variant
 * run from a built tree of an earlier commit and from the code measured, in pairs, the order
 * alternating. Every value comes from the run's results.
 */
import type { BpfStatsBeforeAfter, BpfStatsPair, BpfStatsVariant } from './bpfstats';
import { summarize } from './lib';
import type { BenchReport, Figure } from './report-types';

const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');

const ok = (v: BpfStatsVariant) => !v.error && v.nsPerExec !== undefined && v.nsPerExec > 0;

/** This code's ns per exec ÷ the tree before's, one per pair where both sides measured. */
export function pairRatios(pairs: BpfStatsPair[]): number[] {
  return pairs.filter((p) => ok(p.before) && ok(p.after)).map((p) => p.after.nsPerExec! / p.before.nsPerExec!);
}

/** A program's ns per run on each side, and after ÷ before, over the pairs where both ran it. */
export function programRatios(
  pairs: BpfStatsPair[],
): { name: string; runs: number[]; before: number[]; after: number[]; ratios: number[] }[] {
  const names = new Set(pairs.flatMap((p) => [...p.before.programs, ...p.after.programs].map((x) => x.name)));
  const out = [];
  for (const name of names) {
    const runs: number[] = [];
    const before: number[] = [];
    const after: number[] = [];
    const ratios: number[] = [];
    for (const p of pairs) {
      const b = p.before.programs.find((x) => x.name === name);
      const a = p.after.programs.find((x) => x.name === name);
      if (!b || !a || !(b.nsPerRun > 0)) continue;
      runs.push(b.runs);
      before.push(b.nsPerRun);
      after.push(a.nsPerRun);
      ratios.push(a.nsPerRun / b.nsPerRun);
    }
    if (ratios.length) out.push({ name, runs, before, after, ratios });
  }
  // The most time first: the before side's runs × ns per run.
  const time = (x: { runs: number[]; before: number[] }) => summarize(x.runs).median * summarize(x.before).median;
  return out.sort((x, y) => time(y) - time(x));
}

const treeName = (ba: BpfStatsBeforeAfter) => (ba.beforeCommit ? ba.beforeCommit.slice(0, 10) : ba.beforeDir);
const key = (p: BpfStatsPair) => `${p.scenario}:${p.variant}`;
const groups = (ba: BpfStatsBeforeAfter) => [...new Set(ba.pairs.map(key))];

export function bpfBeforeAfterFigures(r: BenchReport): Figure[] {
  const ba = r.bpfStats?.beforeAfter;
  if (!ba) return [];
  const out: Figure[] = [];
  for (const g of groups(ba)) {
    const pairs = ba.pairs.filter((p) => key(p) === g);
    const xs = pairRatios(pairs);
    if (!xs.length) continue;
    const s = summarize(xs);
    out.push({
      id: `bpfstats.before-after.${g}`,
      title: `kernel side, ${pairs[0].scenario} storm, ${pairs[0].variant}: BPF ns per exec of its programs, this code ÷ the tree at ${treeName(ba)} (BENCH_BPF_BEFORE), pair by pair, the order alternating`,
      command: pairs[0].after.command,
      unit: 'ratio',
      rounds: s.n,
      median: s.median,
      q1: s.q1,
      q3: s.q3,
    });
  }
  return out;
}

export function renderBpfBeforeAfter(r: BenchReport, L: string[]): void {
  const ba = r.bpfStats?.beforeAfter;
  if (!ba) return;
  L.push(`## Kernel side, this code against the tree at ${treeName(ba)}`, '');
  L.push(
    `Each sensor-proc variant run from the tree at ${ba.beforeCommit ? `\`${treeName(ba)}\`` : ba.beforeDir} (BENCH_BPF_BEFORE, built: its \`dist/bench/sensor-proc.js\` and so its BPF object) and from the code measured, one storm each, in pairs, the order alternating (AB: before first), kernel.bpf_stats_enabled on. Storms on this machine run at whatever speed its fork has that minute: compare ns per run within a pair, not across pairs or reports.`,
    '',
  );
  L.push(
    '| Variant | pair | order | storm execs/s before / after | BPF ns per exec before | after | after ÷ before |',
    '|---|---|---|---|---|---|---|',
  );
  for (const p of ba.pairs) {
    const both = ok(p.before) && ok(p.after);
    L.push(
      `| ${key(p)} | ${p.pair} | ${p.order} | ${f0(p.before.storm?.execs_per_s ?? NaN)} / ${f0(p.after.storm?.execs_per_s ?? NaN)} | ${p.before.error ? `error: ${p.before.error}` : f0(p.before.nsPerExec ?? NaN)} | ${p.after.error ? `error: ${p.after.error}` : f0(p.after.nsPerExec ?? NaN)} | ${both ? f3(p.after.nsPerExec! / p.before.nsPerExec!) : '—'} |`,
    );
  }
  for (const g of groups(ba)) {
    const progs = programRatios(ba.pairs.filter((p) => key(p) === g));
    if (!progs.length) continue;
    L.push('', `${g}, per program over the pairs (medians):`, '');
    L.push('| Program | pairs | runs a storm (before) | ns per run before | after | after ÷ before (Q1–Q3) |', '|---|---|---|---|---|---|');
    for (const x of progs) {
      const s = summarize(x.ratios);
      L.push(
        `| ${x.name} | ${x.ratios.length} | ${f0(summarize(x.runs).median)} | ${f0(summarize(x.before).median)} | ${f0(summarize(x.after).median)} | ${f3(s.median)} (${f3(s.q1)}–${f3(s.q3)}) |`,
      );
    }
  }
  if (ba.errors.length) L.push('', `Errors: ${ba.errors.join('; ')}`);
  L.push('');
}
