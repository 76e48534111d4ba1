/**
 * `make bench` = node dist/bench/run.js: snapshots the built code into
 * bench/out/snap and re-runs itself from there (others may rebuild the shared
 * tree meanwhile), builds the storm, runs the decode benchmark, the overhead
 * rounds and the kernel-side pass, then writes bench/REPORT.md and
 * bench/report.json. Needs root (BPF).
 *
 * Environment (defaults in brackets; BENCH_QUICK=1 or --quick for a < 2 min run):
 *   BENCH_ROUNDS [10; quick 3]        overhead rounds
 *   BENCH_SECONDS [2]                 seconds per storm
 *   BENCH_WORKERS [online CPUs]       storm workers
 *   BENCH_SETTLE_MS [500]             pause between attach and storm
 *   BENCH_DECODE_REPS [15; quick 10]  decode repetitions
 *   BENCH_DECODE_REP_MS [200; quick 100]
 *   BENCH_ONLY [decode,overhead,bpfstats]  parts to run
 *   BENCH_VARIANTS [all; quick: control,host:sensor,bpftrace,container:sensor]
 *   BENCH_SCENARIOS, BENCH_SENSOR_CMD, BENCH_CHILD: see variants.ts, lib.ts
 *   BENCH_REPORT_NAME                 write bench/out/<name>.md/.json instead (side runs)
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { runBpfStats } from './bpfstats';
import { runDecode } from './decode';
import {
  buildStorm, envNum, killAll, killChildrenOnExit, leftovers, machine, ROOT, sleep, snapshot, type BuildIdentity,
} from './lib';
import { runOverhead } from './overhead';
import { writeReport, type BenchReport } from './report';
import { selectedVariants } from './variants';

/** Variants of a quick run unless BENCH_VARIANTS says otherwise. */
const QUICK_VARIANTS = 'control,host:sensor,bpftrace,container:sensor';

const log = (msg: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);

/** From the package root: snapshot the build, then run this file from the snapshot. */
async function fromSnapshot(): Promise<number> {
  const { dir, identity } = await snapshot();
  log(`bench: running from a snapshot of the build (${dir.slice(ROOT.length + 1)}; git ${identity.gitHead}, addon ${identity.addonSha256}${identity.dirty.length ? `, uncommitted: ${identity.dirty.length} files` : ''})`);
  const child = spawn(process.execPath, [join(dir, 'dist', 'bench', 'run.js'), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_ROOT: ROOT, BENCH_IDENTITY: JSON.stringify(identity) },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  return new Promise((r) => child.on('exit', (code, sig) => r(code ?? (sig ? 130 : 1))));
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    log('bench: needs root (BPF programs)');
    return 2;
  }
  if (!process.env.BENCH_ROOT) return fromSnapshot();
  killChildrenOnExit();
  const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
  const t0 = Date.now();
  const only = (process.env.BENCH_ONLY ?? 'decode,overhead,bpfstats').split(',').map((s) => s.trim());
  const rounds = Math.round(envNum('BENCH_ROUNDS', quick ? 3 : 10));
  const seconds = envNum('BENCH_SECONDS', 2);
  const workers = Math.round(envNum('BENCH_WORKERS', cpus().length));
  const settleMs = envNum('BENCH_SETTLE_MS', 500);
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
    env, machine: m, build: build ?? undefined, wallS: 0, leftovers: [],
  };
  const variants = selectedVariants(quick ? QUICK_VARIANTS : undefined);

  if (only.includes('decode')) {
    report.decode = await runDecode({
      reps: Math.round(envNum('BENCH_DECODE_REPS', quick ? 10 : 15)),
      repMs: envNum('BENCH_DECODE_REP_MS', quick ? 100 : 200),
      recordSeconds: 2, workers, storm, log,
    });
  }
  if (only.includes('overhead')) {
    log(`overhead: ${rounds} rounds of pairs (baseline, variant), storms of ${seconds} s: ${variants.filter((v) => v.name !== 'baseline').map((v) => `${v.scenario}:${v.name}`).join(', ')}`);
    report.overhead = await runOverhead({ rounds, seconds, workers, settleMs, storm, variants, log });
  }
  if (only.includes('bpfstats')) {
    const which = variants.filter((v) => ['sensor', 'bpftrace', 'ctrwatch-run'].includes(v.name));
    report.bpfStats = await runBpfStats(which, storm, workers, seconds);
    log(`bpfstats: ${report.bpfStats.error ?? report.bpfStats.variants.map((v) => `${v.scenario}:${v.variant} ${v.nsPerExec?.toFixed(0) ?? v.error} ns/exec`).join(', ')}`);
  }

  killAll();
  await sleep(200);
  report.leftovers = leftovers(['bench/out/storm', 'dist/bench/sensor-proc.js', 'printf("fork %d %d %s']);
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
