/**
 * Helpers shared by the benchmarks: statistics, the storm binary, processes
 * and their CPU time, BPF attachments. No global state but the registry of
 * children to kill on exit.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { killTracked, track as trackChild } from '../test/support/children';

/** Where the code runs from: the package root, or the bench's snapshot of it (see snapshot()). */
export const CODE = resolve(__dirname, '..', '..'); // dist/bench -> root
/** The package root: reports, bench/out and the cwd of the variants. */
export const ROOT = process.env.BENCH_ROOT ?? CODE;
export const BENCH = join(ROOT, 'bench');
export const OUT = join(BENCH, 'out');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function envNum(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${name} must be a positive number, got ${v}`);
  return n;
}

// ---------------------------------------------------------------- statistics

/** Quantile by linear interpolation between order statistics (R type 7). */
export function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = (s.length - 1) * q;
  const lo = Math.floor(h);
  return s[lo] + (h - lo) * (s[Math.min(lo + 1, s.length - 1)] - s[lo]);
}

export interface Summary {
  n: number;
  median: number;
  q1: number;
  q3: number;
  iqr: number;
  min: number;
  max: number;
}

export function summarize(xs: number[]): Summary {
  const v = xs.filter((x) => Number.isFinite(x));
  const q1 = quantile(v, 0.25);
  const q3 = quantile(v, 0.75);
  return {
    n: v.length,
    median: quantile(v, 0.5),
    q1,
    q3,
    iqr: q3 - q1,
    min: v.length ? Math.min(...v) : NaN,
    max: v.length ? Math.max(...v) : NaN,
  };
}

// ---------------------------------------------------------------- machine

export interface Machine {
  cores: number;
  cpuModel: string;
  kernel: string;
  node: string;
  bpftrace: string;
  perfInstructions: boolean;
  hostname: string;
}

function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

export function machine(): Machine {
  // perf prints "<not supported>" (exit 0) where the VM exposes no hardware counters.
  const perf = spawnSync('perf', ['stat', '-x,', '-e', 'instructions', 'true'], { encoding: 'utf8', timeout: 10_000 });
  const perfOk = !perf.error && perf.status === 0 && /instructions/.test(perf.stderr) && !/not supported|not counted/.test(perf.stderr);
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    bpftrace: tryRun('bpftrace', ['--version']) ?? 'missing',
    perfInstructions: perfOk,
    hostname: tryRun('hostname', []) ?? 'unknown',
  };
}

// ---------------------------------------------------------------- storm

export interface StormBuild {
  storm: string;
  child: string;
  /** How the child was built: nolibc (static, no C library), static, or dynamic. */
  childKind: string;
}

function cc(args: string[]): boolean {
  try {
    execFileSync(process.env.CC ?? 'gcc', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    return true;
  } catch {
    return false;
  }
}

function newer(target: string, sources: string[]): boolean {
  if (!existsSync(target)) return false;
  const t = statSync(target).mtimeMs;
  return sources.every((s) => statSync(s).mtimeMs <= t);
}

/**
 * Builds bench/out/storm and bench/out/storm-child with gcc -O2: static where
 * the toolchain allows, the child without a C library where the arch allows
 * (BENCH_CHILD=libc forces the C-library child).
 */
export function buildStorm(): StormBuild {
  mkdirSync(OUT, { recursive: true });
  const storm = join(OUT, 'storm');
  const child = join(OUT, 'storm-child');
  const stormSrc = join(BENCH, 'storm.c');
  const childSrc = join(BENCH, 'storm-child.c');
  const want = process.env.BENCH_CHILD ?? 'nolibc';
  const kindFile = join(OUT, 'storm-child.kind');
  const prevKind = existsSync(kindFile) ? readFileSync(kindFile, 'utf8').trim() : '';
  if (!newer(storm, [stormSrc])) {
    if (!cc(['-O2', '-Wall', '-static', '-o', storm, stormSrc]) && !cc(['-O2', '-Wall', '-o', storm, stormSrc])) {
      throw new Error(`cannot build ${storm} from ${stormSrc} with gcc`);
    }
  }
  let childKind = prevKind;
  if (!newer(child, [childSrc]) || !prevKind || (want === 'libc') !== (prevKind !== 'nolibc')) {
    const tries: [string, string[]][] = [
      ['static', ['-O2', '-static', '-o', child, childSrc]],
      ['dynamic', ['-O2', '-o', child, childSrc]],
    ];
    if (want !== 'libc') tries.unshift(['nolibc', ['-O2', '-static', '-nostdlib', '-DSTORM_NOLIBC', '-o', child, childSrc]]);
    childKind = '';
    for (const [kind, args] of tries) {
      if (cc(args) && tryExec(child)) {
        childKind = kind;
        break;
      }
    }
    if (!childKind) throw new Error(`cannot build a working ${child} from ${childSrc} with gcc`);
    writeFileSync(kindFile, childKind + '\n');
  }
  return { storm, child, childKind };
}

function tryExec(p: string): boolean {
  try {
    execFileSync(p, [], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** argv of every exec in the storm: a typical command line (~90 bytes). */
export const STORM_ARGV = ['--config', '/etc/app/config.yaml', '--log-level', 'info', '--listen', '0.0.0.0:8080', '--workers', '4'];

export interface StormResult {
  unshared: number;
  /** 1: exec'd again after its unshare (-e), as a container's entry; absent in reports before it. */
  entry?: number;
  workers: number;
  seconds: number;
  elapsed_s: number;
  execs: number;
  execs_per_s: number;
  failed: number;
  cpu_user_s: number;
  cpu_sys_s: number;
}

/** A command as a person would type it, relative to the package root. */
export function display(cmd: string[]): string {
  return cmd
    .map((a) => (a === process.execPath ? 'node' : a.startsWith(ROOT + '/') ? a.slice(ROOT.length + 1) : a))
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/** The storm of a scenario (bench/variants.ts Scenario): host; -u -e a busy container; -u a sandbox. */
export function stormCommand(b: StormBuild, workers: number, seconds: number, shape: 'host' | 'container' | 'sandbox'): string[] {
  const opts = shape === 'container' ? ['-u', '-e'] : shape === 'sandbox' ? ['-u'] : [];
  return [b.storm, '-n', String(workers), '-d', String(seconds), ...opts, '--', ...STORM_ARGV];
}

export async function runStorm(cmd: string[]): Promise<StormResult> {
  const p = track(spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const code = await exited(p);
  if (code !== 0) throw new Error(`storm exited ${code}: ${err.trim()}`);
  return JSON.parse(out.trim().split('\n').pop()!) as StormResult;
}

// ---------------------------------------------------------------- processes

/** Registers a child (spawned detached: its own process group) to kill on exit. */
export function track(p: ChildProcess): ChildProcess {
  return trackChild(p, { group: true });
}

export function exited(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((r) => p.once('exit', (code) => r(code)));
}

/** Kills the process group of every child still alive (SIGKILL). */
export function killAll(): number {
  return killTracked();
}

let hooked = false;
export function killChildrenOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => killAll());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAll();
      process.stderr.write(`bench: ${sig}, children killed\n`);
      process.exit(130);
    });
  }
}

const CLK_TCK = Number(tryRun('getconf', ['CLK_TCK']) ?? 100) || 100;

/** ppid and utime+stime (seconds) of a pid, from /proc/<pid>/stat. */
function procStat(pid: number): { ppid: number; cpu: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** A pid and its live descendants. */
export function processTree(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!pid) continue;
    const st = procStat(pid);
    if (!st) continue;
    const l = kids.get(st.ppid) ?? [];
    l.push(pid);
    kids.set(st.ppid, l);
  }
  const out: number[] = [];
  const q = [root];
  while (q.length) {
    const p = q.shift()!;
    out.push(p);
    q.push(...(kids.get(p) ?? []));
  }
  return out;
}

/** utime+stime in seconds of a pid and its live descendants (threads included). */
export function treeCpu(root: number): number {
  return processTree(root).reduce((s, p) => s + (procStat(p)?.cpu ?? 0), 0);
}

function fdTargets(pid: number): { fd: string; target: string }[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return [{ fd, target: readlinkSync(`/proc/${pid}/fd/${fd}`) }];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/**
 * BPF programs a process tree has attached: bpf_link fds (tp_btf, raw_tp and
 * other links, as libbpf makes them) plus perf-event attachments (classic
 * tracepoints, as bpftrace makes them) from `bpftool perf list`.
 */
export function attachedCount(root: number): number {
  const tree = new Set(processTree(root));
  let n = 0;
  for (const pid of tree) n += fdTargets(pid).filter((f) => f.target === 'anon_inode:bpf-link').length;
  const perf = tryRun('bpftool', ['perf', 'list', '-j']);
  if (perf) {
    try {
      n += (JSON.parse(perf) as { pid: number }[]).filter((e) => tree.has(e.pid)).length;
    } catch {
      /* no perf attachments */
    }
  }
  return n;
}

/** Ids of the BPF programs a process tree holds (from fdinfo prog_id). */
export function progIds(root: number): number[] {
  const ids = new Set<number>();
  for (const pid of processTree(root)) {
    for (const f of fdTargets(pid)) {
      if (f.target !== 'anon_inode:bpf-prog' && f.target !== 'anon_inode:bpf-link') continue;
      try {
        const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${f.fd}`, 'utf8'));
        if (m) ids.add(Number(m[1]));
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return [...ids];
}

export interface ProgInfo {
  id: number;
  name: string;
  type: string;
  run_time_ns?: number;
  run_cnt?: number;
}

export function progInfo(id: number): ProgInfo | undefined {
  const j = tryRun('bpftool', ['prog', 'show', 'id', String(id), '-j']);
  return j ? (JSON.parse(j) as ProgInfo) : undefined;
}

/** Programs named cw_exec loaded on the machine whose ids are not in `ours`: other ctrwatch sensors (tests). */
export function foreignSensors(ours: number[] = []): number {
  const j = tryRun('bpftool', ['prog', 'show', '-j']);
  if (!j) return 0;
  try {
    const mine = new Set(ours);
    return (JSON.parse(j) as ProgInfo[]).filter((p) => p.name === 'cw_exec' && !mine.has(p.id)).length;
  } catch {
    return 0;
  }
}

/** Live processes whose command line mentions one of `words` (for the leftover check). */
export function leftovers(words: string[]): string[] {
  const out: string[] = [];
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!pid || pid === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (words.some((w) => cmd.includes(w))) out.push(`${pid} ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Busy CPU seconds of the whole machine so far (all CPUs, /proc/stat: everything but idle and iowait). */
export function machineBusyS(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  return busy / CLK_TCK;
}

// ---------------------------------------------------------------- snapshot

export interface BuildIdentity {
  gitHead: string;
  /** `git status --short` of the paths the sensor is built from: uncommitted work that was measured. */
  dirty: string[];
  addonSha256: string;
  addonMtime: string;
}

/**
 * Copies what the bench runs (dist/src, dist/bench, bin, the addon, package.json,
 * the production node_modules)
 * into bench/out/snap, so that a rebuild by someone else during a run (the
 * tree is shared) cannot change or remove the code under test half-way.
 * Waits up to 2 minutes for a build in progress to leave the addon in place.
 */
/** Absolute paths of the installed production packages (npm ls), waiting out an install in progress. */
function prodPackages(): string[] {
  for (let i = 0; ; i++) {
    const out = spawnSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const pkgs = (out.stdout ?? '').split('\n').filter((l) => l.startsWith(join(ROOT, 'node_modules') + '/'));
    if (out.status === 0 && pkgs.length && pkgs.every((p) => existsSync(join(p, 'package.json')))) return pkgs;
    if (i >= 24) throw new Error(`npm ls --omit=dev failed in ${ROOT}: ${out.stderr?.trim() ?? out.error}`);
    execFileSync('sleep', ['5']);
  }
}

export async function snapshot(): Promise<{ dir: string; identity: BuildIdentity }> {
  const addon = join(ROOT, 'build', 'Release', 'ctrwatch.node');
  for (let i = 0; !existsSync(addon) || !existsSync(join(ROOT, 'dist', 'src', 'kernel', 'sensor.js')); i++) {
    if (i >= 120) throw new Error(`${addon} or dist/ missing: run make build`);
    await sleep(1000);
  }
  await sleep(500); // a writer that just finished
  const dir = join(OUT, 'snap');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
  mkdirSync(join(dir, 'bpf'));
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  cpSync(addon, join(dir, 'build', 'Release', 'ctrwatch.node'));
  cpSync(join(ROOT, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
  cpSync(join(ROOT, 'dist', 'bench'), join(dir, 'dist', 'bench'), { recursive: true });
  cpSync(join(ROOT, 'dist', 'test'), join(dir, 'dist', 'test'), { recursive: true }); // test/support, which the bench uses
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  // The production dependencies, copied: `npm ci` by someone else empties node_modules for a while.
  for (const pkg of prodPackages()) cpSync(pkg, join(dir, relative(ROOT, pkg)), { recursive: true });
  const git = (args: string[]) => tryRun('git', ['-C', ROOT, ...args]) ?? '';
  return {
    dir,
    identity: {
      gitHead: git(['rev-parse', '--short', 'HEAD']),
      dirty: git(['status', '--porcelain', '--', 'bpf', 'native', 'src', 'binding.gyp'])
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
      addonSha256: createHash('sha256').update(readFileSync(addon)).digest('hex').slice(0, 16),
      addonMtime: statSync(addon).mtime.toISOString(),
    },
  };
}

/**
 * bpftrace attaches its tracepoints through the node's tracefs, which this node leaves unmounted:
 * mounts it at /sys/kernel/tracing when it is missing there; the returned function unmounts what
 * this mounted (also when the process exits), leaving a mount that was there before alone.
 */
export function ensureTracefs(log: (m: string) => void): () => void {
  const dir = '/sys/kernel/tracing';
  if (existsSync(join(dir, 'events', 'sched'))) return () => {};
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (e) {
    log(`bench: could not mount tracefs at ${dir} for bpftrace: ${(e as Error).message.split('\n')[0]}`);
    return () => {};
  }
  let done = false;
  const undo = () => {
    if (done) return;
    done = true;
    try {
      execFileSync('umount', [dir], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      log(`bench: could not unmount the tracefs it mounted at ${dir}`);
    }
  };
  process.on('exit', undo);
  return undo;
}

/** The commit checked out in a tree given for a before/after comparison; undefined when it is no git tree. */
export function treeCommit(dir: string): string | undefined {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}
