/**
 * bench/REPORT.md from the results (bench/report.json): every figure printed
 * here is computed from measured values, none is typed by hand.
 *   node dist/bench/report.js   re-renders REPORT.md from report.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LATENCY_TARGET, type Dist, type LatencySample, type Timed } from './latency';
import { BENCH, quantile, summarize, type Summary } from './lib';
import type { VariantFigures } from './overhead';
import { RULES_TARGET_NS } from './rules';
import { MEMORY_TARGET_MB, THROUGHPUT_TARGET, type GcAb, type GrowthAb, type ScaleRun, type YoungAb } from './scale';
import { bpfBeforeAfterFigures, renderBpfBeforeAfter } from './report-bpf';
import { perfFigures, renderFootprint, renderShip, writePlots } from './report-perf';
import { imagesFigures, renderImages } from './images';
import { renderSockets, socketsFigures } from './sockets';
import { PART_RESULTS, type BenchReport, type Figure } from './report-types';

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const pct = (ratio: number) => (Number.isFinite(ratio) ? `${((1 - ratio) * 100).toFixed(1)}%` : 'n/a');
const code = (s: string) => '`' + s.replace(/`/g, "'").replace(/\|/g, '\\|') + '`';

/** What each scenario's storm is, for the overhead part's command list. */
const STORM_SHAPES = {
  host: 'host',
  container:
    "container scenario: own mount namespace, then exec'd again there as a container's entry is, so every process is followed; forks held back, execs and exits sent",
  sandbox:
    "sandbox scenario: own mount namespace and no exec after it, so every fork, exec and exit is sent; the container scenario's storm before forks were held back",
};

function name(f: { scenario: string; variant: string }): string {
  return `${f.scenario}:${f.variant}`;
}

/** Fewer quiet pairs than this say nothing about the target. */
const MIN_QUIET = 5;

const distFig = (d: Dist) => ({ rounds: d.n, median: d.p50, q1: d.q1, q3: d.q3, p99: d.p99 });
/** After ÷ before, pair by pair, of a before/after mix (BENCH_PIPE_BEFORE). */
const pairRatios = (m: { before: number[]; after: number[] }) => m.after.map((a, i) => a / m.before[i]!);
const sumFig = (x: Summary) => ({ rounds: x.n, median: x.median, q1: x.q1, q3: x.q3 });
const single = (v: number, n: number) => ({ rounds: n, median: v, q1: NaN, q3: NaN });

/** The headline figures, in the order of the table: ctrwatch run's overhead first, comparisons last. */
export function headline(r: BenchReport): Figure[] {
  const out: Figure[] = [];
  const o = r.overhead;
  const ratioFig = (v: VariantFigures): Figure => ({
    id: `ratio.${name(v)}`,
    title: `throughput ratio, ${name(v)}: ${v.description}`,
    command: `${o!.config.stormCommand[v.scenario]} alongside ${v.command}`,
    rounds: v.ratio.n,
    unit: 'with ÷ without',
    median: v.ratio.median,
    q1: v.ratio.q1,
    q3: v.ratio.q3,
    target: v.target?.text,
    met: v.target ? v.ratio.median >= v.target.minRatio : undefined,
  });
  if (o) {
    for (const v of o.figures.filter((x) => x.target)) out.push(ratioFig(v));
    for (const v of o.figures.filter((x) => x.target)) {
      out.push({
        id: `quietRatio.${name(v)}`,
        title: `throughput ratio, ${name(v)}, quiet pairs only (other load < ${o.quietCores} cores in both runs)`,
        command: `as above`,
        rounds: v.quietRatio.n,
        unit: 'with ÷ without',
        median: v.quietRatio.median,
        q1: v.quietRatio.q1,
        q3: v.quietRatio.q3,
        target: `${v.target!.text}; judged from ${MIN_QUIET} pairs`,
        met: v.quietRatio.n >= MIN_QUIET ? v.quietRatio.median >= v.target!.minRatio : undefined,
      });
      out.push({
        id: `cpuRatio.${name(v)}`,
        title: `CPU cost ratio, ${name(v)}: (storm + sensor CPU) per exec ÷ baseline storm CPU per exec`,
        command: `as above`,
        rounds: v.cpuRatio.n,
        unit: 'with ÷ without, CPU',
        median: v.cpuRatio.median,
        q1: v.cpuRatio.q1,
        q3: v.cpuRatio.q3,
        target: 'CPU cost < 3% (ratio ≤ 1.03)',
        met: v.cpuRatio.median <= 2 - v.target!.minRatio,
      });
    }
  }
  out.push(
    ...containerFigures(r),
    ...perfFigures(r),
    ...imagesFigures(r),
    ...socketsFigures(r),
    ...bpfBeforeAfterFigures(r),
    ...pipelineFigures(r),
  );
  if (o) {
    for (const v of o.figures.filter((x) => x.variant !== 'baseline' && !x.target)) out.push(ratioFig(v));
    // A variant that gets almost no records (the host storm, filtered in the kernel) has no CPU per record to speak of.
    for (const v of o.figures.filter((x) => x.cpuMsPer1kRecords && (x.recordsPerExec?.median ?? 0) >= 0.01)) {
      const s = v.cpuMsPer1kRecords!;
      out.push({
        id: `cpu.${name(v)}`,
        title: `sensor CPU per 1,000 records, ${name(v)}`,
        command: v.command,
        rounds: s.n,
        unit: 'ms CPU / 1k records',
        median: s.median,
        q1: s.q1,
        q3: s.q3,
      });
    }
  }
  for (const d of r.decode?.figures ?? []) {
    out.push({
      id: `decode.${d.name}`,
      title: `decodeBatch rate, ${d.name} (${d.description})`,
      command: 'decodeBatch (dist/src/decode/decode.js) in node',
      rounds: d.rate.n,
      unit: 'records per CPU-second',
      median: d.rate.median,
      q1: d.rate.q1,
      q3: d.rate.q3,
      target: '> 1,000,000 records/s',
      met: d.rate.median > 1_000_000,
    });
  }
  return out;
}

/** Latency (per runtime, detection) and churn. */
function containerFigures(r: BenchReport): Figure[] {
  const out: Figure[] = [];
  const l = r.latency;
  if (l) {
    l.runtimes.forEach((x, i) => {
      out.push({
        id: `latency.started.${x.runtime}`,
        title: `container start latency, ${x.runtime}: kernel's exec of the entrypoint → containerStarted line read by the reading process${x.skipped ? ` (${x.skipped})` : ''}`,
        command: i === 0 ? l.command : 'as above',
        unit: 'ms',
        ...distFig(x.started),
        target: LATENCY_TARGET.text,
        met: x.started.n ? x.started.p99 <= LATENCY_TARGET.ms : undefined,
      });
    });
    out.push({
      id: 'latency.detection',
      title:
        "detection latency, all runtimes, idle: kernel's exec of a privileged container's entrypoint → escape.privileged-container line read",
      command: 'as above',
      unit: 'ms',
      ...distFig(l.detection),
      target: LATENCY_TARGET.text,
      met: l.detection.n ? l.detection.p99 <= LATENCY_TARGET.ms : undefined,
    });
    const ba = l.beforeAfter;
    if (ba) {
      const tree = ba.beforeCommit?.slice(0, 10) ?? ba.beforeDir;
      for (const [who, name] of [
        ['after', 'the code measured'],
        ['before', `the tree at ${tree}`],
      ] as const) {
        const x = ba.sides[who];
        out.push({
          id: `latency.before-after.detection-storm.${who}`,
          title: `detection latency while the busy-container storm runs, ${name}, its sensor beside the other's (BENCH_LATENCY_BEFORE): the same containers timed by both`,
          command: 'as above',
          unit: 'ms',
          ...distFig(x.detectionStorm),
        });
        out.push({
          id: `latency.before-after.gap-storm.${who}`,
          title: `a privileged container's detection line after its start line, while the storm runs, ${name} (BENCH_LATENCY_BEFORE)`,
          command: 'as above',
          unit: 'ms',
          ...distFig(x.gapStorm),
        });
      }
    }
  }
  const c = r.churn;
  if (c) {
    const expected = c.expected.containerCreated + c.expected.containerStarted + c.expected.containerExited;
    out.push({
      id: 'churn.lost',
      title: `churn: container records lost (created/started/exited expected ${f0(expected)} for ${f0(c.ran)} containers at ${f2(c.rate)}/s)`,
      command: c.command,
      unit: 'records',
      ...single(c.lost, c.ran),
      target: '0 lost',
      met: c.error ? false : c.lost === 0,
    });
    const dups = c.duplicates.containerCreated + c.duplicates.containerStarted + c.duplicates.containerExited;
    out.push({
      id: 'churn.duplicates',
      title: 'churn: duplicate container records',
      command: 'as above',
      unit: 'records',
      ...single(dups, c.ran),
      target: '0',
      met: c.error ? false : dups === 0,
    });
    out.push({
      id: 'churn.dropped',
      title: 'churn: records the kernel dropped meanwhile (sensor counters, all types)',
      command: 'as above',
      unit: 'records',
      ...single(c.droppedKernel, c.ran),
      target: '0',
      met: Number.isFinite(c.droppedKernel) ? c.droppedKernel === 0 : undefined,
    });
  }
  return out;
}

/** An A/B of throughput processes (bench/scale.ts abPairs): heading, what it compares, one row a mix. */
function abLines(title: string, intro: string, columns: [string, string, string], mixes: GcAb['mixes']): string[] {
  return [
    `### ${title}`,
    '',
    intro,
    '',
    `| Mix | ${columns.join(' | ')} |`,
    '|---|---|---|---|',
    ...mixes.map(
      (m) =>
        `| ${m.name} | ${m.tuned.map(f0).join(', ')} | ${m.v8Default.map(f0).join(', ')} | ${f3(quantile(m.tuned, 0.5) / quantile(m.v8Default, 0.5))} |`,
    ),
    '',
  ];
}

const PAIRS_TEXT = 'pairs of fresh processes, interleaved (the first of each pair alternating):';

/** An A/B of bench/scale.ts (gcAb, youngAb, growthAb): its section, none when not run. */
function abSection<T extends Omit<GcAb, 'defaultFlag'>>(
  ab: T | undefined,
  title: string,
  sides: (ab: T) => string,
  columns: [string, string, string],
): string[] {
  if (!ab?.mixes.length) return [];
  return abLines(title, `Command: ${code(ab.command)} in ${f0(ab.pairs)} ${PAIRS_TEXT} ${sides(ab)}`, columns, ab.mixes);
}

const gcAbLines = (ab: GcAb | undefined) =>
  abSection(
    ab,
    'Garbage collector A/B',
    (x) =>
      `as \`ctrwatch run\` tunes V8's collector (allocation-site pretenuring off, src/heap-tuning.ts), and the same with node's ${code(x.defaultFlag)} (V8's default). Each entry is one process's median records per CPU-second over its repetitions; a process's repetitions all run at one speed, so the sides are compared process by process.`,
    ['tuned, per process', 'V8 default, per process', 'ratio of medians (tuned ÷ default)'],
  );

const youngAbLines = (ab: YoungAb | undefined) =>
  abSection(
    ab,
    'Young generation A/B',
    (x) =>
      `V8's young generation capped at ${f0(x.capMb)} MiB as \`ctrwatch run\` does by default (src/young-gen.ts), and the same with PIPELINE_YOUNG=off (\`ctrwatch run --young-mb=off\`: V8 sizes it alone, up to 32 MiB). A smaller young generation is collected more often. Each entry is one process's median records per CPU-second.`,
    ['capped, per process', 'V8 sizing, per process', 'ratio of medians (capped ÷ V8 sizing)'],
  );

const growthAbLines = (ab: GrowthAb | undefined) =>
  abSection(
    ab,
    'Heap growth A/B',
    (x) =>
      `V8's old generation let grow by ${f0(x.percent)}% past what a full collection left, as \`ctrwatch run\` does by default (src/heap-growth.ts), and the same with PIPELINE_GROWTH=off (\`ctrwatch run --heap-growth=off\`: V8 chooses the factor, up to 4). A smaller growth means more full collections. Each entry is one process's median records per CPU-second.`,
    ['limited, per process', 'V8 factor, per process', 'ratio of medians (limited ÷ V8 factor)'],
  );

/** Scale, throughput, loss, rules. */
function pipelineFigures(r: BenchReport): Figure[] {
  const out: Figure[] = [];
  const sc = r.scale;
  if (sc) {
    for (const x of sc.runs.filter(
      (y) =>
        ![
          'containers-only',
          'optimize-for-size',
          'small-heap',
          'no-trim',
          'no-quiet-gc',
          'young-uncapped',
          'young-8',
          'growth-off',
        ].includes(y.name) && !y.name.startsWith('curve-'),
    )) {
      out.push({
        id: `scale.rss.${x.name}`,
        title: `pipeline resident memory, ${f0(x.stats.containers)} containers and ${f0(x.stats.processes)} processes tracked (${x.name}: ${x.description})`,
        command: `${sc.command.replace(/'.*'/, `'${JSON.stringify(x.config)}'`)}`,
        unit: 'MB RSS',
        ...single(x.memory.rssMb, 1),
        target: `< ${MEMORY_TARGET_MB} MB`,
        met: x.memory.rssMb < MEMORY_TARGET_MB,
      });
    }
    const d = sc.runs.find((y) => y.name === 'default');
    if (d?.steady.rssMb) {
      out.push({
        id: 'scale.rss-steady.default',
        title: `pipeline resident memory under the steady mix, the default run (${f0(d.stats.containers)} containers tracked; ${f0(d.steady.recordsPerS)} records/s for ${f0(d.config.lagSeconds)} s, the upkeep every 5 s as ctrwatch run has it; sampled once a second, no forced collection)`,
        command: 'as above',
        unit: 'MB RSS',
        ...sumFig(d.steady.rssMb),
        target: `< ${MEMORY_TARGET_MB} MB`,
        met: d.steady.rssMb.median < MEMORY_TARGET_MB,
      });
    }
    if (d?.idle) {
      out.push({
        id: 'scale.rss-idle.default',
        title: `pipeline resident memory ${f0(d.idle.seconds)} s after the steady mix stopped, the default run (no records; the upkeep goes on: sweeps, the heap given back when quiet, the C heap's trim)`,
        command: 'as above',
        unit: 'MB RSS',
        ...single(d.idle.rssMb, 1),
        target: `< ${MEMORY_TARGET_MB} MB`,
        met: d.idle.rssMb < MEMORY_TARGET_MB,
      });
    }
    if (d) {
      out.push({
        id: 'scale.lag',
        title: `event-loop lag at that scale (default run), 10 ms batches of ${f0(d.steady.recordsPerS)} records/s, the upkeep every 5 s`,
        command: 'as above',
        unit: 'ms',
        rounds: d.lag.samples,
        median: d.lag.p50Ms,
        q1: NaN,
        q3: NaN,
        p99: d.lag.p99Ms,
      });
    }
    for (const m of sc.throughput) {
      out.push({
        id: `throughput.${m.name}`,
        title: `pipeline throughput (decode → correlate → detect → encode), ${m.name}: ${m.description}; ${f0(m.eventsPerS.median)} events/s`,
        command: sc.throughputCommand,
        unit: 'records per CPU-second',
        ...sumFig(m.rate),
        target: `> ${f0(THROUGHPUT_TARGET)} records/s`,
        met: m.rate.median > THROUGHPUT_TARGET,
      });
    }
    const ba = sc.beforeAfter;
    for (const m of ba?.mixes ?? []) {
      const ratios = pairRatios(m);
      out.push({
        id: `throughput.before-after.${m.name}`,
        title: `pipeline throughput, ${m.name} mix, the code measured ÷ the tree at ${ba!.beforeCommit?.slice(0, 10) ?? ba!.beforeDir} (BENCH_PIPE_BEFORE), pair by pair of fresh processes`,
        command: ba!.command,
        unit: 'ratio of records per CPU-second',
        ...sumFig(summarize(ratios)),
      });
    }
  }
  const lo = r.loss;
  if (lo) {
    out.push({
      id: 'loss.unexplained',
      title: `loss accounting: abs(received + dropped − produced) summed over record types, plus abs(storm's own exec count − execs the reference saw), per run (${f0(lo.runs.length)} runs, ring ${lo.config.ringSizes.join('/')} B, ${f3(lo.dropFraction.median)} of records dropped)`,
      command: lo.command,
      unit: 'records',
      ...sumFig(lo.unexplained),
      target: '0 in every run',
      met: lo.runs.length ? lo.runs.every((x) => !x.error && x.unexplained === 0) : undefined,
    });
  }
  const ru = r.rules;
  for (const m of ru?.mixes ?? []) {
    // The rule cost is evaluating the rules (a third Pipeline runs them and drops what they find);
    // making the detection events they raise is the same encoding work as any event's, shown beside it.
    if (m.evalNs?.n)
      out.push({
        id: `rules.eval.${m.name}`,
        title: `rule cost per record (evaluating the rules), ${m.name} mix (${m.description})`,
        command: ru!.command,
        unit: 'ns per record',
        ...sumFig(m.evalNs),
        target: `≤ ${f0(RULES_TARGET_NS)} ns`,
        met: m.evalNs.median <= RULES_TARGET_NS,
      });
    out.push({
      id: `rules.${m.name}`,
      title: `Detector cost per record, ${m.name} mix: evaluating the rules and making, stamping and encoding the detection events they raise (${f0(m.eventsPerPassWith - m.eventsPerPassWithout)} a pass)`,
      command: ru!.command,
      unit: 'ns per record',
      ...sumFig(m.addedNs),
      ...(m.evalNs?.n ? {} : { target: `≤ ${f0(RULES_TARGET_NS)} ns`, met: m.addedNs.median <= RULES_TARGET_NS }),
    });
  }
  return out;
}

function fmt(f: Figure, x: number): string {
  if (f.unit.startsWith('records') || f.unit.startsWith('ns') || f.unit === 'events/s') return f0(x);
  if (f.unit.startsWith('share of')) return Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : 'n/a';
  if (f.unit.startsWith('with ÷ without')) return f3(x);
  if (f.unit === 'MB RSS') return f0(x);
  return f2(x);
}

function sumCell(s: Summary | undefined, fn: (x: number) => string): string {
  return s && s.n ? `${fn(s.median)} (${fn(s.q1)}–${fn(s.q3)})` : '—';
}

/** Which parts the report holds, and what may be compared. */
function scopeNote(r: BenchReport): string {
  const present = Object.entries(PART_RESULTS)
    .filter(([, key]) => r[key] !== undefined)
    .map(([part]) => part);
  return `Parts in this report: ${r.env.BENCH_ONLY ?? `all that run had (${present.join(', ')})`}. The machine is shared and noisy (other sessions run VMs, builds and tests on the same 2 cores; the "other load" column below says how much): only ratios from runs interleaved in this one run are comparable, never absolute rates across runs, and a ratio means nothing finer than the A/A control's spread.`;
}

export function renderMarkdown(r: BenchReport, plots: string[] = []): string {
  const L: string[] = [];
  const m = r.machine;
  L.push('# ctrwatch benchmarks', '');
  L.push(
    `Generated by \`${r.command}\` at ${r.generatedAt} (wall time ${f0(r.wallS)} s); do not edit: re-run instead. Raw values: ${rawValues()}.`,
    '',
  );
  L.push(
    `Machine: ${m.cores} cores (${m.cpuModel}), Linux ${m.kernel}, node ${m.node}, ${m.bpftrace}, perf hardware counters ${m.perfInstructions ? 'available' : 'not supported'}.`,
  );
  if (r.build) {
    L.push(
      `Code measured: git ${r.build.gitHead}, addon sha256 ${r.build.addonSha256} (built ${r.build.addonMtime})${r.build.dirty.length ? `, with uncommitted changes in ${r.build.dirty.map((d) => d.replace(/^\s*\S+\s+/, '')).join(', ')}` : ''}; run from a snapshot in bench/out/snap.`,
    );
  }
  const env = Object.entries(r.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  L.push(`Configuration: ${env || 'defaults'}.`, '');
  L.push(scopeNote(r), '');
  const o = r.overhead;
  if (o) {
    L.push(
      `Overhead: ${o.config.rounds} interleaved rounds; in each, every variant runs once next to a baseline storm (storm alone) run right before or after it (side alternating), variant order rotated each round. Storms of ${o.config.seconds} s with ${o.config.workers} workers, exec'd child \`${o.config.storm.childKind}\`; settle ${o.config.settleMs} ms after the variant attached${o.config.warmupS ? `, then a warm-up storm of ${o.config.warmupS} s (every run, baselines too; not measured but for the cold CPU figure: a sensor runs for days, and a just-started node process compiles its hot code during its first seconds of load) and another settle` : ''}. Throughput ratio = the variant's execs/s ÷ its pair's baseline execs/s (< 1 is overhead). CPU cost ratio = (storm CPU + variant CPU) per exec ÷ the baseline storm's CPU per exec (> 1 is overhead): CPU time is hardly changed by other processes taking turns on the CPUs, so on a shared machine it is the steadier of the two.`,
      '',
    );
  }

  L.push('## Figures', '');
  L.push(
    'Rounds/n: rounds, repetitions or samples. Median is the p50 of a distribution; p99 is given for latency distributions (the targets are about it). A single count has no IQR.',
    '',
  );
  L.push('| Figure | Command | Rounds/n | Median (p50) | IQR (Q1–Q3) | p99 | Target | Met |', '|---|---|---|---|---|---|---|---|');
  for (const f of headline(r)) {
    const extra =
      f.unit === 'with ÷ without'
        ? ` (overhead ${pct(f.median)})`
        : f.unit === 'with ÷ without, CPU'
          ? ` (+${((f.median - 1) * 100).toFixed(1)}% CPU)`
          : '';
    const iqr = Number.isFinite(f.q1) ? `${fmt(f, f.q1)}–${fmt(f, f.q3)}` : '—';
    const p99 = f.p99 !== undefined && Number.isFinite(f.p99) ? fmt(f, f.p99) : '—';
    L.push(
      `| ${f.title.replace(/\|/g, '\\|')} [${f.unit}] | ${f.command === 'as above' ? 'as above' : code(f.command)} | ${f.rounds} | ${fmt(f, f.median)}${extra} | ${iqr} | ${p99} | ${f.target ?? '—'} | ${f.met === undefined ? '—' : f.met ? 'yes' : '**no**'} |`,
    );
  }
  L.push('');
  if (plots.length) L.push('Plots (SVG, drawn by bench/plots.ts from this run):', '', ...plots, '');
  renderContainers(r, L);
  renderPipeline(r, L);
  for (const render of [renderShip, renderFootprint, renderImages, renderSockets]) render(r, L);

  if (o) {
    L.push('## Overhead details', '');
    L.push(
      "Median (Q1–Q3) over rounds. Storm CPU includes the BPF programs on its exec path; sensor CPU is the variant's process tree (utime+stime), during the storm only.",
      '',
    );
    L.push(
      '| Variant | throughput ratio | same, quiet pairs (n) | CPU cost ratio | execs/s | other load, cores | storm CPU µs/exec | sensor CPU ms/1k execs | sensor CPU ms/1k records | records/exec | wake-ups/s | batches/s | dropped | failed runs |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const v of o.figures as VariantFigures[]) {
      const base = v.variant === 'baseline';
      L.push(
        `| ${name(v)} | ${base ? '—' : sumCell(v.ratio, f3)} | ${base ? '—' : `${sumCell(v.quietRatio, f3)} (${v.quietRatio.n})`} | ${base ? '—' : sumCell(v.cpuRatio, f3)} | ${sumCell(v.execsPerS, f0)} | ${sumCell(v.otherCores, f2)} | ${sumCell(v.stormCpuUsPerExec, f0)} | ${sumCell(v.cpuMsPer1kExecs, f2)} | ${!v.cpuMsPer1kRecords ? '—' : (v.recordsPerExec?.median ?? 0) >= 0.01 ? sumCell(v.cpuMsPer1kRecords, f2) : 'n/a (no records)'} | ${sumCell(v.recordsPerExec, f2)} | ${sumCell(v.wakeupsPerS, f0)} | ${sumCell(v.batchesPerS, f0)} | ${v.droppedTotal ?? '—'} | ${v.failedRuns} |`,
      );
    }
    L.push('');
    const ctl = o.figures.find((x) => x.variant === 'control');
    const base = o.figures.find((x) => x.scenario === 'host' && x.variant === 'baseline');
    L.push('Noise on this machine:', '');
    if (ctl)
      L.push(
        `- A/A control (storm alone vs. storm alone, as a pair): throughput ratio ${f3(ctl.ratio.median)}, IQR ${f3(ctl.ratio.q1)}–${f3(ctl.ratio.q3)}, range ${f3(ctl.ratio.min)}–${f3(ctl.ratio.max)}; CPU cost ratio ${f3(ctl.cpuRatio.median)}, IQR ${f3(ctl.cpuRatio.q1)}–${f3(ctl.cpuRatio.q3)}. Differences smaller than these spreads are not resolved.`,
      );
    if (base)
      L.push(
        `- Host baseline: ${f0(base.execsPerS.median)} execs/s, range ${f0(base.execsPerS.min)}–${f0(base.execsPerS.max)} across runs; other load during baseline storms ${f2(base.otherCores.median)} cores median, up to ${f2(base.otherCores.max)}.`,
      );
    L.push(
      `- Rounds in which another ctrwatch sensor (a cw_exec program not ours, e.g. kernel tests of another session) was loaded during some storm: ${o.roundsWithForeignSensors} of ${o.config.rounds}.`,
    );
    L.push(`- Overhead rounds took ${f0(o.wallS)} s.`);
    const cc = r.ctrwatchCounters ?? [];
    if (cc.length) {
      const dropped = cc.reduce((a, x) => a + (x.dropped ?? 0), 0);
      const missing = cc.filter((x) => x.dropped === undefined).length;
      L.push(
        `- \`ctrwatch run\` runs: ${cc.length}; records its kernel side dropped, summed over them (from each run's "sensor stopped" log line): ${f0(dropped)}${missing ? `; ${missing} runs left no such line` : ''}.`,
      );
    }
    L.push('');
    L.push('Commands:', '');
    // Reports made before the sandbox scenario have no such command.
    for (const [k, what] of Object.entries(STORM_SHAPES) as [keyof typeof STORM_SHAPES, string][])
      if (o.config.stormCommand[k]) L.push(`- storm (${what}): ${code(o.config.stormCommand[k])}`);
    for (const v of o.figures.filter((x) => x.command !== '(none)')) L.push(`- ${name(v)}: ${code(v.command)}`);
    L.push('');
  }

  const b = r.bpfStats;
  if (b) {
    L.push('## Kernel side (kernel.bpf_stats_enabled, one storm per variant, not interleaved)', '');
    if (b.error) L.push(`Not measured: ${b.error}`, '');
    else {
      L.push('| Variant | storm execs/s | BPF ns per exec (all its programs) | programs: runs, ns/run |', '|---|---|---|---|');
      for (const v of b.variants) {
        const progs = v.programs.map((p) => `${p.name} ${f0(p.runs)}× ${f0(p.nsPerRun)} ns`).join('; ');
        L.push(
          `| ${v.scenario}:${v.variant} | ${v.storm ? f0(v.storm.execs_per_s) : '—'} | ${v.nsPerExec !== undefined ? f0(v.nsPerExec) : '—'} | ${v.error ? `error: ${v.error}` : progs || '—'} |`,
        );
      }
      L.push('');
    }
    renderBpfBeforeAfter(r, L);
  }

  const d = r.decode;
  if (d) {
    L.push('## Decode details', '');
    L.push(
      `${d.config.reps} repetitions of ≥ ${d.config.repMs} ms each (whole passes over the input), after 5 warm-up passes, in the bench process. The rate is records ÷ the process's CPU time (process.cpuUsage, user+sys), which other load on a shared machine inflates far less than wall time; the wall-time rate is shown beside it. Recorded input: ${d.recorded.storms.map(code).join(', ')}; dropped while recording: ${d.recorded.dropped}.`,
      '',
    );
    L.push(
      '| Input | records | batches | bytes | kinds | records/CPU-s median (Q1–Q3) | records/wall-s median (Q1–Q3) | CPU ns/record |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const x of d.figures) {
      const kinds = Object.entries(x.kinds)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      L.push(
        `| ${x.name} | ${x.records} | ${x.batches} | ${x.bytes} | ${kinds} | ${sumCell(x.rate, f0)} | ${sumCell(x.wallRate, f0)} | ${f0(1e9 / x.rate.median)} |`,
      );
    }
    L.push('');
  }
  L.push(`Left running after the bench (processes of ours): ${r.leftovers.length ? r.leftovers.map(code).join(', ') : 'none'}.`, '');
  return L.join('\n');
}

const ms = (x: number) => f2(x);
/** Over the samples both sensors timed: median of (this code − before), and how often this code was sooner. */
function pairedRow(samples: LatencySample[], storm: boolean): string {
  const both = samples.filter((x) => !x.error && x.before && !x.before.error && x.underStorm === storm);
  const cell = (get: (t: Timed) => number | undefined) => {
    const d = both.map((x) => [get(x), get(x.before!)]).flatMap(([a, b]) => (a !== undefined && b !== undefined ? [a - b] : []));
    return d.length ? `${ms(quantile(d, 0.5))} (sooner in ${d.filter((x) => x < 0).length} of ${d.length})` : '—';
  };
  const gap = (t: Timed) =>
    t.detectionRawMs !== undefined && t.startedRawMs !== undefined ? t.detectionRawMs - t.startedRawMs : undefined;
  return `| ${storm ? 'under the storm' : 'idle'} | ${cell((t) => t.startedMs)} | ${cell((t) => t.detectionMs)} | ${cell(gap)} |`;
}

const distCell = (d: Dist) => (d.n ? `${ms(d.p50)} / ${ms(d.p99)} (${ms(d.q1)}–${ms(d.q3)}; ${ms(d.min)}–${ms(d.max)})` : '—');

function renderContainers(r: BenchReport, L: string[]): void {
  const l = r.latency;
  if (l) {
    L.push('## Container start and detection latency', '');
    L.push(
      `Command: ${code(l.command)}. ${l.config.perRuntime} measured containers per runtime after one warm-up each, rounds over the runtimes in rotating order. The reader process (node dist/bench/ctrwatch-reader.js, which does nothing else${l.config.readerFifo ? `; its main thread SCHED_FIFO priority ${l.config.readerFifo}, set after it started ctrwatch, which keeps its own policy, so that the instrument's own wait for a CPU under the storm is not counted` : '; normal priority'}) stamps each line of \`ctrwatch run\`'s stdout with process.hrtime() (CLOCK_MONOTONIC) when its chunk arrives: A. The event's timeUnixNano T is the kernel's exec time E (monotonic) plus the sensor's wall offset S. The entrypoint (bench/stamp.c, ${l.stampKind}) reads CLOCK_MONOTONIC M and CLOCK_REALTIME R as its first instructions and writes them to a bind-mounted file; R − M is the true offset O. Latency = A − (T − O) − err, where err = ${(l.offsetErrsMs?.length ?? 1) > 1 ? `each sensor process's smallest R − T over its samples (${l.offsetErrsMs!.map((x) => f3(x)).join(', then ')} ms)` : `the run's smallest R − T = ${f3(l.offsetErrMs)} ms`} (the sensor's offset error, from Date.now()'s millisecond, plus the smallest delay between an exec and its entrypoint's first instruction): the kernel's exec timestamp to the line, short by that smallest delay only.${l.error ? ` **Error: ${l.error}**` : ''}`,
      '',
    );
    if (l.stormCommand)
      L.push(
        `Each round takes one sample idle and one while a busy-container storm runs (\`${l.stormCommand}\`, in its own mount namespace and exec'd again there as a container's entry, so that every process is followed, its exec and exit sent; SIGSTOPped between its samples, an idle sample 1.5 s after the stop), the order alternating by round.`,
        '',
      );
    L.push(
      '| Runtime | n idle | idle: p50 / p99 (Q1–Q3; min–max), ms | failures | n storm | under storm: p50 / p99 (Q1–Q3; min–max), ms | failures | runtime start command p50, ms (context) |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const x of l.runtimes)
      L.push(
        `| ${x.runtime}${x.skipped ? ` (${x.skipped})` : ''} | ${x.started.n} | ${distCell(x.started)} | ${x.failures} | ${x.startedStorm?.n ?? '—'} | ${x.startedStorm ? distCell(x.startedStorm) : '—'} | ${x.failuresStorm ?? '—'} | ${x.startCmdMs.n ? f0(x.startCmdMs.p50) : '—'} |`,
      );
    L.push(
      `| detection escape.privileged-container (every 3rd container, all runtimes) | ${l.detection.n} | ${distCell(l.detection)} | — | ${l.detectionStorm?.n ?? '—'} | ${l.detectionStorm ? distCell(l.detectionStorm) : '—'} | — | — |`,
      '',
    );
    L.push(
      `Cross-checks, ms as p50 / p99 (IQR; range): from the entrypoint's own stamp, A − M = ${distCell(l.startedStamp)} (all runtimes; short by each sample's exec-to-first-instruction delay); that delay, (R − T) − err = ${distCell(l.stampDelayMs)}; R − T = ${distCell(l.clockSkewMs)}.`,
    );
    const k = l.sensor.counters;
    if (k)
      L.push(
        `Sensor meanwhile: ${f0(k.records)} records, ${f0(k.dropped)} dropped, ${f0(k.decodeErrors)} decode errors; ${l.sensor.pipeline ? `${f0(l.sensor.pipeline.events)} events` : ''}. Part took ${f0(l.wallS)} s.`,
      );
    else L.push(`Part took ${f0(l.wallS)} s.`);
    const ba = l.beforeAfter;
    if (ba) {
      const tree = ba.beforeCommit ? code(ba.beforeCommit.slice(0, 10)) : ba.beforeDir;
      const timed = l.samples.filter((x) => x.before && !x.before.error && !x.error).length;
      L.push(
        '',
        '### Before and after, the two sensors beside each other',
        '',
        `The \`ctrwatch run\` of the tree at ${tree} (BENCH_LATENCY_BEFORE, built) ran beside this one through the whole part, with its own reader and state directory; each container was timed by both, from its own lines (${timed} samples timed by both; the tables above are this code's alone, all its samples). Both sensors load the same programs: the kernel runs a tracepoint's programs in the order they were attached, and the sensor that loaded first wrote its records first. So both were restarted at half time, the other loading first (first: ${ba.firstLoaded.join(', then ')}). Each sensor process's own err corrects its samples (the tree before: ${ba.offsetErrsMs.map((x) => f3(x)).join(', then ')} ms). Two sensors on the machine's cores mean more load than one: the figures compare the two trees, not either with the table above. Gap: a privileged container's escape.privileged-container line after its own containerStarted line, both read by the same reader.`,
        '',
        '| Sensor | start idle | start under storm | detection idle | detection under storm | gap idle | gap under storm |',
        '|---|---|---|---|---|---|---|',
      );
      for (const [who, name] of [
        ['before', `before (${tree})`],
        ['after', 'this code'],
      ] as const) {
        const x = ba.sides[who];
        L.push(
          `| ${name} | ${distCell(x.started)} | ${distCell(x.startedStorm)} | ${distCell(x.detection)} | ${distCell(x.detectionStorm)} | ${distCell(x.gap)} | ${distCell(x.gapStorm)} |`,
        );
      }
      L.push('', 'Cells: ms as p50 / p99 (Q1–Q3; min–max).', '');
      L.push(
        'Paired, container by container (both sensors timed the same start): the median of this code − before, and in how many containers this code was the sooner.',
        '',
        '| | start | detection | gap |',
        '|---|---|---|---|',
      );
      for (const storm of [false, true]) L.push(pairedRow(l.samples, storm));
      L.push('');
      for (const who of ['before', 'after'] as const) {
        const stops = ba.sides[who].sensor.map((k) => k.counters).filter((k): k is NonNullable<typeof k> => !!k);
        if (stops.length)
          L.push(
            `${who === 'before' ? 'The tree before' : 'This code'}: ${stops.map((k) => `${f0(k.records)} records, ${f0(k.dropped)} dropped, ${f0(k.decodeErrors)} decode errors`).join('; then ')}.`,
          );
      }
    }
    const errs = l.samples.filter((x) => x.error || x.before?.error);
    if (errs.length)
      L.push(
        `Failed samples: ${errs
          .slice(0, 5)
          .map((x) => `${x.runtime} ${x.id}: ${x.error ?? `the tree before: ${x.before?.error}`}`)
          .join('; ')}${errs.length > 5 ? ` (and ${errs.length - 5} more)` : ''}.`,
      );
    L.push('');
  }
  const c = r.churn;
  if (c) {
    L.push('## Churn', '');
    L.push(
      `Command: ${code(c.command)}. ${f0(c.ran)} of ${f0(c.config.containers)} containers ran (exit 0), ${f0(c.failed)} failed${c.failures.length ? ` (${c.failures.join('; ')})` : ''}, at ${f2(c.rate)} containers/s. Lines counted per container id after the last container exited (until all were in, or 3 s without a new line).${c.error ? ` **Error: ${c.error}**` : ''}`,
      '',
    );
    L.push('| Record | expected | received | containers missing it | duplicates |', '|---|---|---|---|---|');
    for (const k of ['containerCreated', 'containerStarted', 'containerExited'] as const)
      L.push(`| ${k} | ${f0(c.expected[k])} | ${f0(c.received[k])} | ${f0(c.missing[k])} | ${f0(c.duplicates[k])} |`);
    L.push('');
    const k = c.sensor.counters;
    if (k) {
      const drops = Object.entries(k.kernel)
        .filter(([n, v]) => n.startsWith('dropped_') && v > 0)
        .map(([n, v]) => `${n} ${f0(v)}`);
      L.push(
        `Sensor counters at stop ("sensor stopped" log line): ${f0(k.records)} records received, dropped ${drops.length ? drops.join(', ') : 'none (every dropped_* is 0)'}, ${f0(k.decodeErrors)} decode errors; lines about ids we did not run: ${f0(c.unknownIds)}. Part took ${f0(c.wallS)} s.`,
        '',
      );
    }
  }
}

/** The scale part's idle time, upkeep by upkeep, for the runs that had one. */
function idleUpkeepLines(runs: ScaleRun[]): string[] {
  const idle = runs.filter((x) => x.idle?.upkeeps?.length);
  if (!idle.length) return [];
  return [
    '',
    'The idle time, upkeep by upkeep (duration in ms; * where the quiet heap made its full collection), and the young generation committed at its end:',
    '',
    ...idle.map(
      (x) =>
        `- ${x.name}: ${x.idle!.upkeeps!.map((u) => `${f2(u.ms)}${u.collected ? '*' : ''}`).join(', ')}; young generation ${f2(x.idle!.youngMb ?? NaN)} MB (${x.quietCollections ?? 0} quiet collections)`,
    ),
  ];
}

function renderPipeline(r: BenchReport, L: string[]): void {
  const sc = r.scale;
  if (sc) {
    L.push('## Pipeline at scale', '');
    L.push(
      `Command: ${code(sc.command)} (each run a fresh process; "RSS after the build": after two forced GCs). Synthetic records in the kernel's byte layout (bench/synth.ts), decoded with decodeBatch and fed to \`Pipeline\` (lookupProcs false, policy stateDir in a temp dir, emit = the hub's protobuf encoding then the stdout sink's JSON line written into its batch buffer, as ctrwatch run with its default output): per container a runc create exec, cgroup mkdir, fork into new namespaces, pivot_root, entry exec, then N processes forked and exec'd inside. Then ${sc.runs[0]?.config.lagSeconds ?? '?'} s of 10 ms batches (health-check processes in random running containers 1,000/s, host execs 500/s, a short container life every 50 ms) with the upkeep every 5 s as \`ctrwatch run\` does (src/upkeep.ts), each batch made just before it is fed and dropped after (the input is not the pipeline's memory); memory sampled once a second without forced GCs (median, max); event-loop lag from monitorEventLoopDelay. In the default, small-heap, young-uncapped, growth-off, no-trim and no-quiet-gc runs, then ${sc.runs[0]?.config.idleSeconds ?? 0} s with no records (the upkeep goes on: sweep, the heap given back when quiet, C heap trim): RSS at the end of it. Last, the sweep with the bounded /proc prune step that \`ctrwatch run\` does every sweep.`,
      '',
    );
    L.push(
      '| Run | containers | processes tracked (table bound) | RSS MB after the build | heap used / total MB after the build | RSS MB under the steady mix, median (max) | heap committed MB, steady median | RSS / heap committed MB after the idle time | lag p50 / p99 / max, ms | batch time p99 / max, ms | CPU µs per record, steady mix | sweep, ms | sweep + prune, ms |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const x of sc.runs) {
      L.push(
        `| ${x.name}: ${x.description} | ${f0(x.stats.containers)} | ${f0(x.stats.processes)} (${f0(x.tableBound)} + ${f0(x.recentBound)} host) | ${f0(x.memory.rssMb)} | ${f0(x.memory.heapUsedMb)} / ${f0(x.memory.heapTotalMb)} | ${x.steady.rssMb ? `${f0(x.steady.rssMb.median)} (${f0(x.steady.rssMb.max)})` : '—'} | ${x.steady.heapTotalMb ? f0(x.steady.heapTotalMb.median) : '—'} | ${x.idle ? `${f0(x.idle.rssMb)} / ${f0(x.idle.heapTotalMb)}` : '—'} | ${f2(x.lag.p50Ms)} / ${f2(x.lag.p99Ms)} / ${f2(x.lag.maxMs)} | ${f2(x.steady.batchMs.p99)} / ${f2(x.steady.batchMs.max)} | ${f2(x.steady.cpuUsPerRecord)} | ${f2(x.sweepMs)} | ${f0(x.pruneMs)} (${f0(x.procsBeforePrune)} processes) |`,
      );
    }
    L.push(...idleUpkeepLines(sc.runs));
    const base = sc.runs.find((x) => x.name === 'default');
    const co = sc.runs.find((x) => x.name === 'containers-only');
    const all = sc.runs.find((x) => x.name === 'all-processes');
    if (base)
      L.push(
        '',
        `Before the pipeline existed the process used ${f0(base.memoryBefore.rssMb)} MB RSS (node, pino, the schema; heap ${f0(base.memoryBefore.heapUsedMb)} MB).`,
      );
    if (co && all) {
      const perC = ((co.memory.heapUsedMb - co.memoryBefore.heapUsedMb) * 1024) / co.stats.containers;
      const perP = ((all.memory.heapUsedMb - co.memory.heapUsedMb) * 1024) / (all.stats.processes - co.stats.processes);
      L.push(
        `Heap per kind, from these runs: ${f2(perC)} KiB per container (containers-only run: the container's facts, its enriched metadata from config.json, its init) and ${f2(perP)} KiB per further process (all-processes minus containers-only).`,
      );
    }
    if (sc.errors.length) L.push(`Errors: ${sc.errors.join('; ')}`);
    L.push('');
    if (sc.throughput.length) {
      L.push('### Throughput', '');
      L.push(
        `Command: ${code(sc.throughputCommand)}: passes over the input (decodeBatch, Pipeline.onBatch, then for every event the hub's protobuf encoding and the stdout sink's JSON line of those bytes written into its batch buffer), after 5 warm-up passes; records ÷ the process's CPU time (all its threads, GC included) per repetition.`,
        '',
      );
      L.push(
        '| Mix | records | kinds | events/pass | records/CPU-s median (Q1–Q3) | records/wall-s | events/s | encode share of time | µs per event encoded |',
        '|---|---|---|---|---|---|---|---|---|',
      );
      const eventKinds = (k?: Record<string, number>) =>
        k && Object.keys(k).length
          ? ` (${Object.entries(k)
              .map(([n, c]) => `${n} ${f0(c)}`)
              .join(', ')})`
          : '';
      for (const m of sc.throughput) {
        const kinds = Object.entries(m.kinds)
          .map(([k, n]) => `${k} ${f0(n)}`)
          .join(', ');
        L.push(
          `| ${m.name} | ${f0(m.records)} | ${kinds} | ${f0(m.eventsPerPass)}${eventKinds(m.eventKinds)} | ${sumCell(m.rate, f0)} | ${f0(m.wallRate.median)} | ${f0(m.eventsPerS.median)} | ${f3(m.encodeShare)} | ${Number.isFinite(m.encodeUsPerEvent) ? f2(m.encodeUsPerEvent) : '—'} |`,
        );
      }
      L.push('');
    }
    const ba = sc.beforeAfter;
    if (ba?.mixes.length) {
      L.push('### Before and after', '');
      L.push(
        `Command: ${code(ba.command)} of the tree at ${ba.beforeCommit ? code(ba.beforeCommit.slice(0, 10)) : ba.beforeDir} (BENCH_PIPE_BEFORE, built) and of the code measured, in pairs of fresh processes, the order alternating (AB: before first). Each entry is one process's median records per CPU-second; after ÷ before is taken pair by pair.`,
        '',
        '| Mix | before, per process | after, per process | after ÷ before, per pair | median (range) |',
        '|---|---|---|---|---|',
      );
      for (const m of ba.mixes) {
        const ratios = pairRatios(m);
        L.push(
          `| ${m.name} | ${m.before.map(f0).join(', ')} | ${m.after.map(f0).join(', ')} | ${ratios.map((x, i) => `${f3(x)} (${m.order[i]})`).join(', ')} | ${f3(quantile(ratios, 0.5))} (${f3(Math.min(...ratios))}–${f3(Math.max(...ratios))}) |`,
        );
      }
      L.push('');
    }
    L.push(...gcAbLines(sc.gcAb), ...youngAbLines(sc.youngAb), ...growthAbLines(sc.growthAb));
  }
  const ru = r.rules;
  if (ru) {
    L.push('## Rule engine cost', '');
    L.push(
      `Command: ${code(ru.command)}. Two Pipelines in one process, the second with its Detector replaced by one that finds nothing; the same pre-decoded batches, repetitions side by side in alternating order; CPU ns per record. Added = with − without, per pair; it includes building, stamping and encoding the detection events the rules cause. A third Pipeline runs the rules and drops what they find: rules only − without is evaluating the rules, with − rules only is making the detection events (each per repetition, medians).${ru.error ? ` **Error: ${ru.error}**` : ''}`,
      '',
    );
    L.push(
      '| Mix | records | with Detector, ns/record | without, ns/record | added, ns/record median (Q1–Q3) | events per pass with / without | of which encoding the extra events, ns/record | evaluating the rules, ns/record | making the detection events, ns/record |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const m of ru.mixes)
      L.push(
        `| ${m.name} | ${f0(m.records)} | ${sumCell(m.withNs, f0)} | ${sumCell(m.withoutNs, f0)} | ${sumCell(m.addedNs, f0)} | ${f0(m.eventsPerPassWith)} / ${f0(m.eventsPerPassWithout)} | ${f0(m.encodeAddedNs)} | ${m.evalNs ? sumCell(m.evalNs, f0) : '—'} | ${m.detectionEventsNs ? sumCell(m.detectionEventsNs, f0) : '—'} |`,
      );
    L.push('');
  }
  const lo = r.loss;
  if (lo) {
    L.push('## Loss accounting (small ring)', '');
    L.push(
      `Command: ${code(lo.command)}. Per run: the small sensor is loaded, its ring drained, its counters read (c0); the storm runs in its own mount namespace; the counters are read again (c1) and the ring drained, until nothing was sent between two reads. Produced = the reference sensor's records with kernel time between c0 and c1 (itself dropping nothing); received = the small sensor's records in that window; dropped = its dropped_* deltas. Records of the reference within 50 µs of a counter read are ambiguous (either side). The storm's own exec count is compared with the execs the reference saw in its namespace.`,
      '',
    );
    L.push(
      "| Round | ring B | storm execs (own count) / seen by reference / received | fork: recv + drop − prod | exec: recv + drop − prod | exit: recv + drop − prod | other types | ambiguous | other processes' execs (of them dropped) | received − sent (whole life) | dropped share | unexplained |",
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const x of lo.runs) {
      if (x.error || !x.types) {
        L.push(`| ${x.round} | ${x.ringBytes} | error: ${x.error ?? '?'} | | | | | | | | | |`);
        continue;
      }
      const t = x.types;
      const cell = (b: { received: number; dropped: number; produced: number; mismatch: number }) =>
        `${f0(b.received)} + ${f0(b.dropped)} − ${f0(b.produced)} = ${b.mismatch}`;
      const others = (['cgroup_mkdir', 'cgroup_rmdir', 'cgroup_attach', 'syscall'] as const).map((k) => t[k]);
      const amb = Object.values(t).reduce((a, b) => a + b.ambiguous, 0);
      L.push(
        `| ${x.round} | ${x.ringBytes} | ${f0(x.stormExecs!)} / ${f0(x.refStormExecs!)} / ${f0(x.receivedStormExecs!)} | ${cell(t.fork)} | ${cell(t.exec)} | ${cell(t.exit)} | ${others.reduce((a, b) => a + b.mismatch, 0)} (of ${f0(others.reduce((a, b) => a + b.produced, 0))}) | ${amb} | ${f0(x.otherExecs!)} (${f0(x.droppedOtherExecs!)}) | ${x.receivedMinusSent} | ${f3(x.dropFraction!)} | ${x.unexplained} |`,
      );
    }
    L.push('', `Part took ${f0(lo.wallS)} s.`, '');
  }
}

/** Where a report's raw values are: bench/report.json, or a side run's <name>.json beside it (BENCH_REPORT_NAME). */
function rawValues(): string {
  const n = process.env.BENCH_REPORT_NAME;
  return n ? `\`${n}.json\`, beside this file` : '`bench/report.json`';
}

/** bench/REPORT.md + bench/report.json, or with BENCH_REPORT_NAME=x (side runs) bench/out/x.md + x.json. */
export function writeReport(r: BenchReport): string {
  const n = process.env.BENCH_REPORT_NAME;
  const [md, json] = n
    ? [join(BENCH, 'out', `${n}.md`), join(BENCH, 'out', `${n}.json`)]
    : [join(BENCH, 'REPORT.md'), join(BENCH, 'report.json')];
  writeFileSync(json, JSON.stringify({ ...r, figures: headline(r) }, null, 2) + '\n');
  const plots = n ? writePlots(r, join(BENCH, 'out', `${n}-plots`), `${n}-plots`) : writePlots(r, join(BENCH, 'plots'), 'plots');
  writeFileSync(md, renderMarkdown(r, plots));
  return md;
}

if (require.main === module) {
  // BENCH_REPORT_NAME=x re-renders a side run from bench/out/x.json.
  const n = process.env.BENCH_REPORT_NAME;
  const src = n ? join(BENCH, 'out', `${n}.json`) : join(BENCH, 'report.json');
  const { figures: _old, ...r } = JSON.parse(readFileSync(src, 'utf8')) as BenchReport & { figures: unknown };
  writeReport(r);
}
