/**
 * The figures issue 15 (performance) asks for that no single part computes alone, the shipping
 * and idle-footprint sections, and the SVG plots beside REPORT.md. Every value comes from the run's results.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FOOTPRINT_PART_TEXT, FOOTPRINT_PARTS, type FootprintResult, type FootprintRun, type LoadedRead } from './footprint';
import { LATENCY_TARGET } from './latency';
import { summarize, type Summary } from './lib';
import { barSvg, cdfSvg, intervalSvg, lineSvg } from './plots';
import type { BenchReport, Figure } from './report-types';
import { MEMORY_TARGET_MB } from './scale';
import { EVASION_PREFIXES } from './variants';

const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const sumFig = (x: Summary) => ({ rounds: x.n, median: x.median, q1: x.q1, q3: x.q3 });

/** Issue 15's shipping goals, by output kind. */
export const SHIP_GOALS: { match: RegExp; kind: string; eventsPerS: number }[] = [
  { match: /^grpc/, kind: 'gRPC', eventsPerS: 50_000 },
  { match: /JetStream R3/, kind: 'JetStream R3', eventsPerS: 20_000 },
  { match: /^otlp/, kind: 'OTLP/HTTP', eventsPerS: 50_000 },
];

/** µs of sensor CPU per record, per container:ctrwatch-run run: CPU in the storm window ÷ records of the run's life. */
export function containerCpuPerRecord(r: BenchReport, cold = false): Summary | undefined {
  const o = r.overhead;
  if (!o) return undefined;
  const xs: number[] = [];
  for (const run of o.runs.filter((x) => x.scenario === 'container' && x.variant === 'ctrwatch-run' && !x.error)) {
    if (cold) {
      if (run.cold?.records) xs.push((run.cold.cpuS * 1e6) / run.cold.records);
      continue;
    }
    // Reports before the metrics window: the records of the whole life, from the "sensor stopped" line.
    const records = run.records ?? r.ctrwatchCounters?.find((k) => k.round === run.round && k.scenario === 'container')?.records;
    if (run.cpuS !== undefined && records) xs.push((run.cpuS * 1e6) / records);
  }
  return xs.length ? summarize(xs) : undefined;
}

/** Kernel ns per exec of the programs issue 11 added, from the bpf_stats pass of host:sensor, and its share of a baseline exec's CPU. */
export function evasionKernelCost(r: BenchReport): { nsPerExec: number; share: number; programs: string[] } | undefined {
  const v = r.bpfStats?.variants.find((x) => x.scenario === 'host' && x.variant === 'sensor');
  const execs = v?.storm?.execs;
  const base = r.overhead?.figures.find((x) => x.scenario === 'host' && x.variant === 'baseline')?.stormCpuUsPerExec.median;
  if (!v || !execs || !base) return undefined;
  const mine = v.programs.filter((p) => EVASION_PREFIXES.some((pre) => p.name.startsWith(pre)));
  const ns = mine.reduce((a, p) => a + p.runs * p.nsPerRun, 0) / execs;
  return { nsPerExec: ns, share: ns / (base * 1000), programs: mine.map((p) => `${p.name} ${f0(p.runs)}× ${f0(p.nsPerRun)} ns`) };
}

/** Per round: 1 − ratio(host:sensor) ÷ ratio(host:sensor-noevasion), the throughput the evasion hooks cost. */
export function evasionThroughputCost(r: BenchReport): Summary | undefined {
  const p = r.overhead?.pairs ?? [];
  const xs: number[] = [];
  for (const a of p.filter((x) => x.scenario === 'host' && x.variant === 'sensor')) {
    const b = p.find((x) => x.scenario === 'host' && x.variant === 'sensor-noevasion' && x.round === a.round);
    if (b) xs.push(1 - a.ratio / b.ratio);
  }
  return xs.length ? summarize(xs) : undefined;
}

export function perfFigures(r: BenchReport): Figure[] {
  const out: Figure[] = [];
  const l = r.latency;
  if (l) {
    l.runtimes
      .filter((x) => x.startedStorm)
      .forEach((x, i) => {
        out.push({
          id: `latency.startedStorm.${x.runtime}`,
          title: `container start latency while the busy-container storm runs, ${x.runtime} (samples interleaved with the idle ones above)`,
          command: i === 0 ? `${l.command}; storm: ${l.stormCommand ?? '?'}` : 'as above',
          unit: 'ms',
          rounds: x.startedStorm!.n,
          median: x.startedStorm!.p50,
          q1: x.startedStorm!.q1,
          q3: x.startedStorm!.q3,
          p99: x.startedStorm!.p99,
          target: LATENCY_TARGET.text,
          met: x.startedStorm!.n ? x.startedStorm!.p99 <= LATENCY_TARGET.ms : undefined,
        });
      });
  }
  if (l?.detectionStorm)
    out.push({
      id: 'latency.detectionStorm',
      title: 'detection latency, all runtimes, while the busy-container storm runs',
      command: 'as above',
      unit: 'ms',
      rounds: l.detectionStorm.n,
      median: l.detectionStorm.p50,
      q1: l.detectionStorm.q1,
      q3: l.detectionStorm.q3,
      p99: l.detectionStorm.p99,
      target: LATENCY_TARGET.text,
      met: l.detectionStorm.n ? l.detectionStorm.p99 <= LATENCY_TARGET.ms : undefined,
    });
  const cpu = containerCpuPerRecord(r);
  const warm = r.overhead?.config.warmupS;
  if (cpu)
    out.push({
      id: 'cpu.container:ctrwatch-run.perRecord',
      title: warm
        ? `sensor CPU per in-container record, end to end, running sensor: container:ctrwatch-run, its CPU during the measured storm (after a ${warm} s warm-up storm) ÷ the records it decoded meanwhile (its metrics, read before and after) (decode, process table, lifecycle, rules; JSON lines to /dev/null)`
        : 'sensor CPU per in-container record, end to end: container:ctrwatch-run, its CPU during the storm ÷ the records its "sensor stopped" counters say it received (decode, process table, lifecycle, rules; JSON lines to /dev/null)',
      command: 'the overhead rounds of container:ctrwatch-run',
      unit: 'µs CPU per record',
      ...sumFig(cpu),
      target: '≤ 2 µs',
      met: cpu.median <= 2,
    });
  const cold = warm ? containerCpuPerRecord(r, true) : undefined;
  if (cold)
    out.push({
      id: 'cpu.container:ctrwatch-run.perRecordCold',
      title: `the same in the warm-up storm, the sensor's first ${warm} s of load (its code still being compiled) [context]`,
      command: 'the warm-up storms of container:ctrwatch-run',
      unit: 'µs CPU per record',
      ...sumFig(cold),
    });
  const ev = evasionKernelCost(r);
  if (ev)
    out.push({
      id: 'kernel.evasion.share',
      title: `kernel-side cost of the issue-11 programs (${EVASION_PREFIXES.join(', ')}) on the host exec storm: their BPF ns per exec (bpf_stats pass of host:sensor) ÷ a baseline storm exec's CPU; ${f0(ev.nsPerExec)} ns per exec`,
      command: 'kernel.bpf_stats_enabled pass, host:sensor',
      unit: 'share of an exec',
      rounds: 1,
      median: ev.share,
      q1: NaN,
      q3: NaN,
      target: '≤ 1%',
      met: ev.share <= 0.01,
    });
  const evt = evasionThroughputCost(r);
  if (evt)
    out.push({
      id: 'ratio.evasion',
      title:
        'throughput cost of the issue-11 programs on the host exec storm: per round, 1 − ratio(host:sensor) ÷ ratio(host:sensor-noevasion) (each ratio against its own baseline); read beside the A/A spread',
      command: 'the overhead rounds of host:sensor and host:sensor-noevasion',
      unit: 'share of throughput',
      ...sumFig(evt),
      target: '— (a difference of two noisy ratios: it resolves 1% only when the A/A IQR is far narrower than 1%)',
    });
  for (const s of r.ship?.outputs ?? []) {
    const goal = SHIP_GOALS.find((g) => g.match.test(s.output));
    out.push({
      id: `ship.${s.output}`,
      title: `shipping rate, ${s.output}: ${f0(s.events)} synthetic events offered to the sink, end to end to acknowledged (${s.tool})`,
      command: s.tool === 'delivery.js' ? r.ship!.commands[0]! : r.ship!.commands[1]!,
      unit: 'events/s',
      rounds: 1,
      median: s.eventsPerS,
      q1: NaN,
      q3: NaN,
      target: goal ? `≥ ${f0(goal.eventsPerS)} events/s` : undefined,
      met: goal ? s.eventsPerS >= goal.eventsPerS : undefined,
    });
  }
  const mine = r.footprint?.runs.filter((x) => x.tree === 'this') ?? [];
  if (mine.length)
    out.push({
      id: 'footprint.idle',
      title: `resident memory of \`ctrwatch run\` idle on this node, ${r.footprint!.seconds} s after its start (by mapping: the idle sensor's section below)`,
      command: r.footprint!.command,
      unit: 'MB',
      ...sumFig(summarize(mine.map((x) => x.rssMb))),
    });
  const idle = mine.filter((x) => x.idle).map((x) => x.idle!);
  if (idle.length) {
    const window = `${r.footprint!.idleSeconds} s after the memory read`;
    out.push({
      id: 'footprint.idle.cpu',
      title: `CPU of the same idle sensors, every thread (\`/proc/PID/task/*/schedstat\`), over ${window}`,
      command: r.footprint!.command,
      unit: 'ms per s',
      ...sumFig(summarize(idle.map((x) => x.cpuMsPerS))),
    });
    out.push({
      id: 'footprint.idle.wakeups',
      title: `wake-ups of their main thread (the ring reader: context switches), over ${window}`,
      command: r.footprint!.command,
      unit: 'per s',
      ...sumFig(summarize(idle.map((x) => x.wakeupsPerS))),
    });
  }
  out.push(...loadFigures(r));
  const charged = mine.filter((x) => x.memcg).map((x) => x.memcg!.chargedMb);
  if (charged.length)
    out.push({
      id: 'footprint.idle.memcg',
      title: `the same sensors' memory cgroup charge (anonymous, page cache and kernel memory; node's binary cached and charged elsewhere: the section below)`,
      command: r.footprint!.command,
      unit: 'MB',
      ...sumFig(summarize(charged)),
    });
  return out;
}

/** The loaded sensor's figures: its RSS, and its charge, at each count of real containers. */
function loadFigures(r: BenchReport): Figure[] {
  const out: Figure[] = [];
  for (const x of r.footprint?.load?.reads.filter((y) => y.tree === 'this' && !y.options) ?? [])
    out.push(
      {
        id: `footprint.loaded.${x.containers}`,
        title: `resident memory of \`ctrwatch run\` with ${f0(x.containers)} real runc containers running on this node, every one reported (the loaded sensor's section below)`,
        command: r.footprint!.load!.command,
        unit: 'MB',
        rounds: 1,
        median: x.rssMb,
        q1: NaN,
        q3: NaN,
        ...(x.containers >= 10_000 ? { target: `≤ ${MEMORY_TARGET_MB} MB`, met: x.rssMb <= MEMORY_TARGET_MB } : {}),
      },
      ...(x.memcg
        ? [
            {
              id: `footprint.loaded.${x.containers}.memcg`,
              title: `the same sensor's memory cgroup charge at ${f0(x.containers)} containers`,
              command: r.footprint!.load!.command,
              unit: 'MB',
              rounds: 1,
              median: x.memcg.chargedMb,
              q1: NaN,
              q3: NaN,
            },
          ]
        : []),
    );
  return out;
}

export function renderShip(r: BenchReport, L: string[]): void {
  const s = r.ship;
  if (!s) return;
  L.push('## Shipping rate per output', '');
  L.push(
    `Commands: ${s.commands.map((c) => '`' + c + '`').join(', then ')} (no root; one output at a time, each in fresh processes, on the same 2 shared cores as everything else: the receiver, collector or NATS cluster competes with the sender). Rate = events ÷ seconds from the first offer to the last acknowledgement. The events are synthetic and of one size; these are rates of the shipping path alone (encode, spool, send, receive, ack), not of the kernel or the pipeline.`,
    '',
  );
  L.push('| Output | events | seconds | events/s | delivered | goal (issue 15) |', '|---|---|---|---|---|---|');
  for (const o of s.outputs) {
    const g = SHIP_GOALS.find((x) => x.match.test(o.output));
    L.push(
      `| ${o.output} | ${f0(o.events)} | ${f2(o.seconds)} | ${f0(o.eventsPerS)} | ${o.delivered === undefined ? '—' : f0(o.delivered)} | ${g ? `≥ ${f0(g.eventsPerS)}: ${o.eventsPerS >= g.eventsPerS ? 'met' : '**not met**'}` : '—'} |`,
    );
  }
  if (s.errors.length) L.push('', `Errors: ${s.errors.join('; ')}`);
  const ba = s.grpcBeforeAfter;
  if (ba?.pairs.length) {
    const r = summarize(ba.ratios);
    L.push(
      '',
      `gRPC before and after: \`delivery.js\` (sinks part, ${f0(ba.events)} events) of the tree at ${ba.beforeCommit ? `\`${ba.beforeCommit.slice(0, 10)}\`` : ba.beforeDir} (BENCH_SHIP_BEFORE, built) and of the code measured, in ${ba.pairs.length} pairs, the order alternating: ${ba.pairs.map((p) => `${f0(p.before)} → ${f0(p.after)}`).join(', ')} events/s; after ÷ before median ${f2(r.median)} (range ${f2(r.min)}–${f2(r.max)}).`,
    );
  } else L.push('', 'gRPC before and after: not measured in this run (BENCH_SHIP_BEFORE unset).');
  L.push('', `Part took ${f0(s.wallS)} s.`, '');
}

/** A memory cgroup's charge as the footprint tables show it: all of it (anonymous / file / kernel). */
const charge = (m: FootprintRun['memcg']) => (m ? `${f2(m.chargedMb)} (${f2(m.anonMb)} / ${f2(m.fileMb)} / ${f2(m.kernelMb)})` : '—');

export function renderFootprint(r: BenchReport, L: string[]): void {
  const f = r.footprint;
  if (!f) return;
  L.push("## The idle sensor's resident memory and CPU", '');
  L.push(
    `Command: \`${f.command}\` (one sensor at a time; nothing else of the bench running). Resident memory from \`/proc/PID/smaps\`, each mapping's Rss counted in one part: ${FOOTPRINT_PARTS.map((p) => `${p}: ${FOOTPRINT_PART_TEXT[p]}`).join('; ')}. The addon file: ${f0(f.addonBytes.this)} bytes${f.addonBytes.before !== undefined ? ` (${f0(f.addonBytes.before)} in the tree before)` : ''}.`,
    '',
  );
  const before = f.beforeCommit ? `\`${f.beforeCommit.slice(0, 10)}\`` : f.beforeDir;
  const cg = f.runs.find((x) => x.memcg)?.memcg;
  if (cg)
    L.push(
      `Memory cgroup: each sensor ran in a cgroup v${cg.version} of its own, made for it and removed after; "charged" is what the kernel counted against it (${cg.version === 2 ? 'memory.current' : 'memory.usage_in_bytes'}), split into anonymous, file (page cache) and the rest, kernel memory (the BPF maps among it). Pages already in the page cache stay charged to the cgroup that first read them: a node binary that earlier processes read is not in this cgroup's file share.`,
      '',
    );
  if (f.idleSeconds)
    L.push(
      `Idle cost: after the memory read each sensor ran ${f.idleSeconds} s more, and its CPU over that window (every thread's time on a CPU, \`/proc/PID/task/*/schedstat\`) and its main thread's wake-ups (voluntary and involuntary context switches: the thread that reads the rings, runs the pipeline and writes stdout) were read. The node was otherwise quiet: what the sensor does when there is nothing to report.`,
      '',
    );
  L.push(
    `| Tree | pair | RSS MB | ${FOOTPRINT_PARTS.join(' | ')} | charged MB (anonymous / file / kernel) | BPF links | idle CPU ms/s | wake-ups/s |`,
    `|---|---|---|${FOOTPRINT_PARTS.map(() => '---|').join('')}---|---|---|---|`,
  );
  for (const x of f.runs)
    L.push(
      `| ${x.tree === 'this' ? 'this code' : `before (${before})`} | ${x.pair} | ${f2(x.rssMb)} | ${FOOTPRINT_PARTS.map((p) => f2(x.parts[p])).join(' | ')} | ${charge(x.memcg)} | ${x.attached} | ${x.idle ? f2(x.idle.cpuMsPerS) : '—'} | ${x.idle ? f2(x.idle.wakeupsPerS) : '—'} |`,
    );
  const side = (t: 'this' | 'before') => f.runs.filter((x) => x.tree === t);
  if (side('before').length) {
    const med = (t: 'this' | 'before', g: (x: FootprintRun) => number) => summarize(side(t).map(g).filter(Number.isFinite)).median;
    L.push(
      '',
      `Medians, this code against the tree before: RSS ${f2(med('this', (x) => x.rssMb))} against ${f2(med('before', (x) => x.rssMb))} MB; ${FOOTPRINT_PARTS.map((p) => `${p} ${f2(med('this', (x) => x.parts[p]))} against ${f2(med('before', (x) => x.parts[p]))}`).join(', ')}${cg ? `; charged ${f2(med('this', (x) => x.memcg?.chargedMb ?? NaN))} against ${f2(med('before', (x) => x.memcg?.chargedMb ?? NaN))}, of it kernel ${f2(med('this', (x) => x.memcg?.kernelMb ?? NaN))} against ${f2(med('before', (x) => x.memcg?.kernelMb ?? NaN))}` : ''}${f.idleSeconds ? `; idle CPU ${f2(med('this', (x) => x.idle?.cpuMsPerS ?? NaN))} against ${f2(med('before', (x) => x.idle?.cpuMsPerS ?? NaN))} ms per second, wake-ups ${f2(med('this', (x) => x.idle?.wakeupsPerS ?? NaN))} against ${f2(med('before', (x) => x.idle?.wakeupsPerS ?? NaN))} per second` : ''}.`,
    );
  }
  if (f.errors.length) L.push('', `Errors: ${f.errors.join('; ')}`);
  L.push('', `Part took ${f0(f.wallS)} s.`, '');
  renderLoad(f, L);
}

/** The sensors with real containers running: one row a sensor and step, and one a sensor after they all left. */
function renderLoad(f: FootprintResult, L: string[]): void {
  const d = f.load;
  if (!d) return;
  const before = f.beforeCommit ? `\`${f.beforeCommit.slice(0, 10)}\`` : f.beforeDir;
  const both = d.reads.some((x) => x.tree === 'before');
  const sets = [...new Set(d.reads.flatMap((x) => (x.options ? [x.options] : [])))];
  const more = [
    both ? `the tree before's (${before})` : '',
    ...sets.map((o, i) => `this code's with \`${o}\` (${String.fromCharCode(65 + i)})`),
  ].filter(Boolean);
  const many = more.length > 0;
  L.push('## The sensor with real containers', '');
  L.push(
    `Command: \`${d.command}\`. ${many ? `${more.length + 1} more sensors, this code's and ${more.join(' and ')}, side by side` : 'One more sensor of this code'}, each in a memory cgroup of its own as above, ${f.seconds} s after ${many ? 'their' : 'its'} start; then real runc containers started one after another until ${d.counts.map(f0).join(', then ')} ran. Each step was read once ${many ? 'every sensor' : 'the sensor'} had written a containerStarted line for every container running and ${d.settleSeconds} s more had passed (the upkeep sweeps every 5 s); then every container was deleted (\`runc delete --force\`), and each sensor was read again once it had reported every exit and ${d.settleSeconds} s more had passed. The containers' own memory is charged to their cgroups, not a sensor's. Parts as above.`,
    '',
  );
  L.push(
    `| Tree | containers | reported | runc start, s | RSS MB | ${FOOTPRINT_PARTS.join(' | ')} | charged MB (anonymous / file / kernel) |`,
    `|---|---|---|---|---|${FOOTPRINT_PARTS.map(() => '---|').join('')}---|`,
  );
  const row = (label: string, x: LoadedRead, reported: string) =>
    L.push(
      `| ${x.tree === 'this' ? `this code${x.options ? `, ${String.fromCharCode(65 + sets.indexOf(x.options))}: \`${x.options}\`` : ''}` : `before (${before})`} | ${label} | ${reported} | ${x.startS ? f2(x.startS) : '—'} | ${f2(x.rssMb)} | ${FOOTPRINT_PARTS.map((p) => f2(x.parts[p])).join(' | ')} | ${charge(x.memcg)} |`,
    );
  for (const x of d.reads) row(f0(x.containers), x, `${f0(x.reported)} started`);
  for (const x of d.after) row('0, after they left', x, `${f0(x.reported)} exited`);
  if (d.errors.length) L.push('', `Errors: ${d.errors.join('; ')}`);
  L.push('', `Part took ${f0(d.wallS)} s.`, '');
}

/** Writes the SVG plots into dir; returns markdown lines linking them. */
export function writePlots(r: BenchReport, dir: string, rel: string): string[] {
  mkdirSync(dir, { recursive: true });
  const links: string[] = [];
  const put = (file: string, svg: string, caption: string) => {
    writeFileSync(join(dir, file), svg);
    links.push(`- [${caption}](${rel}/${file})`);
  };
  const l = r.latency;
  if (l?.samples.length) {
    const series = l.runtimes.flatMap((x) => {
      const idle = l.samples.filter((s) => s.runtime === x.runtime && !s.underStorm && s.startedMs !== undefined).map((s) => s.startedMs!);
      const busy = l.samples.filter((s) => s.runtime === x.runtime && s.underStorm && s.startedMs !== undefined).map((s) => s.startedMs!);
      return [
        { label: `${x.runtime} idle`, values: idle },
        ...(busy.length ? [{ label: `${x.runtime} storm`, values: busy, dashed: true }] : []),
      ];
    });
    put(
      'latency-cdf.svg',
      cdfSvg(series, 'Container start → containerStarted line, per runtime (dashed: under the busy-container storm)', 'ms', {
        x: LATENCY_TARGET.ms,
        label: LATENCY_TARGET.text,
      }),
      'start latency CDF per runtime, idle and under storm',
    );
  }
  const o = r.overhead;
  if (o) {
    const rows = o.figures
      .filter((v) => v.variant !== 'baseline' && v.ratio.n)
      .map((v) => ({ label: `${v.scenario}:${v.variant}`, median: v.ratio.median, q1: v.ratio.q1, q3: v.ratio.q3 }));
    put(
      'overhead-ratio.svg',
      intervalSvg(rows, 'Throughput ratio with ÷ without, per variant (dot: median; bar: IQR over rounds)', 'storm execs/s ratio', [
        { x: 1, label: '1' },
        { x: 0.97, label: '0.97' },
      ]),
      'overhead ratio per variant, with IQR',
    );
  }
  const sc = r.scale;
  const curve = sc?.runs.filter((x) => x.name === 'default' || x.name.startsWith('curve-')) ?? [];
  if (curve.length) {
    put(
      'rss-containers.svg',
      lineSvg(
        [
          { label: 'RSS', points: curve.map((x) => ({ x: x.stats.containers, y: x.memory.rssMb })) },
          { label: 'V8 heap used', points: curve.map((x) => ({ x: x.stats.containers, y: x.memory.heapUsedMb })) },
        ],
        'Pipeline memory against tracked containers (10 processes each, after two forced GCs)',
        'containers',
        'MB',
        { y: MEMORY_TARGET_MB, label: `${MEMORY_TARGET_MB} MB goal` },
      ),
      'RSS against container count',
    );
  }
  const load = r.footprint?.load;
  if (load?.reads.length) {
    const pts = (tree: LoadedRead['tree'], opts: string | undefined, g: (x: LoadedRead) => number | undefined) =>
      load.reads.filter((x) => x.tree === tree && x.options === opts && g(x) !== undefined).map((x) => ({ x: x.containers, y: g(x)! }));
    const series = (tree: LoadedRead['tree'], suffix: string, opts?: string) => [
      // Short labels: the legend's column is 190 px wide.
      { label: `RSS${suffix}`, points: pts(tree, opts, (x) => x.rssMb) },
      { label: `cgroup charge${suffix}`, points: pts(tree, opts, (x) => x.memcg?.chargedMb) },
      { label: `anonymous${suffix}`, points: pts(tree, opts, (x) => x.parts.anonymous) },
    ];
    const before = load.reads.some((x) => x.tree === 'before') ? series('before', ', before') : [];
    // Options sets lettered in the legend (A, B…), spelled out in the report's table.
    const sets = [...new Set(load.reads.flatMap((x) => (x.options ? [x.options] : [])))];
    const withOpts = sets.flatMap((o, i) => series('this', `, ${String.fromCharCode(65 + i)}`, o));
    put(
      'rss-real-containers.svg',
      lineSvg(
        [...series('this', ''), ...before, ...withOpts].filter((x) => x.points.length),
        '`ctrwatch run` memory against real runc containers running (RSS, cgroup charge, anonymous RSS)',
        'containers',
        'MB',
        { y: MEMORY_TARGET_MB, label: `${MEMORY_TARGET_MB} MB goal (at 10,000)` },
      ),
      `the sensor's RSS and charge against real containers${sets.map((o, i) => `; ${String.fromCharCode(65 + i)}: \`${o}\``).join('')}`,
    );
  }
  if (r.ship?.outputs.length) {
    put(
      'shipping-rate.svg',
      barSvg(
        r.ship.outputs.map((x) => ({ label: x.output, value: x.eventsPerS })),
        'Shipping rate per output, end to end to acknowledged',
        'events/s',
        [
          { x: 20_000, label: '20k' },
          { x: 50_000, label: '50k' },
        ],
      ),
      'shipping rate per output',
    );
  }
  return links;
}
