/**
 * The footprint part: `ctrwatch run` itself, idle on this node, and its resident memory by
 * mapping (/proc/PID/smaps) once it has run a few seconds: what a node pays for the sensor before
 * any container load. Each sensor starts in a memory cgroup of its own, made for it and removed
 * after, so that what the kernel charges it (what a pod's memory request and limit are about)
 * is read too. With a built tree of an earlier commit (BENCH_FOOTPRINT_BEFORE), the two run in
 * pairs, the order alternating, one at a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitSync } from '../test/support/runtime-exec';
import { FOOTPRINT_PARTS, smapsParts, type FootprintPart } from '../test/support/smaps';
import { attachedCount, CODE, exited, sleep, track, treeCommit } from './lib';
import { RuncFleet } from './runc-fleet';

export { FOOTPRINT_PARTS };

export const FOOTPRINT_PART_TEXT: Record<FootprintPart, string> = {
  anonymous: "anonymous memory (V8's heap, thread stacks, malloc arenas)",
  node: 'the node binary (file-backed)',
  rings:
    "the kernel's BPF maps mapped into the process: the two ring buffers (each ring's data pages at two addresses in a row) and a few pages of the skeleton's global data",
  addon: 'the addon (ctrwatch.node, file-backed)',
  brk: 'the C heap (brk)',
  other: 'libraries and the rest',
};

/** What the sensor's memory cgroup was charged, MB: all of it, and its anonymous, file and kernel (the rest) shares. */
export interface MemCgCharge {
  version: 1 | 2;
  chargedMb: number;
  anonMb: number;
  fileMb: number;
  kernelMb: number;
}

export interface FootprintRun {
  tree: 'this' | 'before';
  pair: number;
  rssMb: number;
  parts: Record<FootprintPart, number>;
  /** Undefined where no memory cgroup could be made (no memory controller). */
  memcg?: MemCgCharge;
  /** BPF links the sensor held when it was measured (it had attached). */
  attached: number;
  /** Its CPU (every thread) and its main thread's wake-ups over idleSeconds after the memory read. */
  idle?: IdleCost;
}

export interface IdleCost {
  seconds: number;
  cpuMsPerS: number;
  wakeupsPerS: number;
}

/** A sensor with real containers running: read once every container of a step was reported, and again after they all left. */
export interface LoadedRead {
  tree: 'this' | 'before';
  /** Options this sensor of this code ran with besides the state dir (BENCH_FOOTPRINT_OPTIONS); none for the default sensor. */
  options?: string;
  containers: number;
  /** The sensor's containerStarted lines (containerExited lines, for the read after they left) when it was read. */
  reported: number;
  /** Wall seconds runc took to start this step's containers (0 for the read after they left). */
  startS: number;
  rssMb: number;
  parts: Record<FootprintPart, number>;
  memcg?: MemCgCharge;
}

export interface FootprintLoad {
  counts: number[];
  /** Seconds between the last report of a step and its read: the upkeep (a sweep every 5 s) runs meanwhile. */
  settleSeconds: number;
  command: string;
  reads: LoadedRead[];
  /** Every container removed, their exits reported, the settle time passed: one read a sensor. */
  after: LoadedRead[];
  errors: string[];
  wallS: number;
}

export interface FootprintResult {
  /** Real runc containers started under one sensor (BENCH_FOOTPRINT_CONTAINERS). */
  load?: FootprintLoad;
  seconds: number;
  /** The window of the idle CPU and wake-up reading (0: not read). */
  idleSeconds?: number;
  command: string;
  runs: FootprintRun[];
  addonBytes: { this: number; before?: number };
  beforeDir?: string;
  beforeCommit?: string;
  errors: string[];
  wallS: number;
}

/**
 * Temporary state dirs and cgroups of sensors still running, and those sensors: removed at exit
 * too (a SIGINT to the bench exits at once; an uncaught error leaves the sensor running until
 * the bench's own exit hook, which runs after this one).
 */
const states = new Set<string>();
const cgroups = new Set<string>();
const sensors = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of sensors) c.kill('SIGKILL');
  for (const d of states) rmSync(d, { recursive: true, force: true });
  for (const d of cgroups) removeCgroup(d);
});

const MB = 1024 * 1024;

/** A memory cgroup made for one sensor. */
interface MemCg {
  dir: string;
  version: 1 | 2;
}
let cgSeq = 0;

/**
 * A memory cgroup for one sensor: on cgroup v2 when the root enables memory for its children, on
 * v1's memory hierarchy where that is mounted; undefined otherwise, or when it cannot be made (a
 * read-only cgroupfs): the sensor then runs where the bench runs, its charge not read.
 */
function makeMemCg(): MemCg | undefined {
  const name = `cwbench-footprint-${process.pid}-${cgSeq++}`;
  const v2 = '/sys/fs/cgroup';
  const v1 = '/sys/fs/cgroup/memory';
  try {
    if (existsSync(join(v2, 'cgroup.controllers'))) {
      if (!/\bmemory\b/.test(readFileSync(join(v2, 'cgroup.subtree_control'), 'utf8'))) return undefined;
      mkdirSync(join(v2, name));
      return { dir: join(v2, name), version: 2 };
    }
    if (!existsSync(join(v1, 'cgroup.procs'))) return undefined;
    mkdirSync(join(v1, name));
    return { dir: join(v1, name), version: 1 };
  } catch {
    return undefined;
  }
}

/** Whether the process is in that cgroup (the shell that starts the sensor may not have joined it). */
function inCgroup(pid: number, cg: MemCg): boolean {
  const rel = cg.dir.slice(cg.dir.lastIndexOf('/'));
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .some((l) => l.endsWith(`:${rel}`) && (cg.version === 2 ? l.startsWith('0::') : /:(\S*,)?memory(,\S*)?:/.test(l)));
}

function readMemCg(cg: MemCg): MemCgCharge {
  const stat = new Map(
    readFileSync(join(cg.dir, 'memory.stat'), 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .map(([k, v]) => [k!, Number(v)] as const),
  );
  const charged = Number(readFileSync(join(cg.dir, cg.version === 2 ? 'memory.current' : 'memory.usage_in_bytes'), 'utf8'));
  // v1 counts kernel memory into usage_in_bytes too, and names the user shares rss and cache.
  const anon = (cg.version === 2 ? stat.get('anon') : stat.get('rss')) ?? NaN;
  const file = (cg.version === 2 ? stat.get('file') : stat.get('cache')) ?? NaN;
  return { version: cg.version, chargedMb: charged / MB, anonMb: anon / MB, fileMb: file / MB, kernelMb: (charged - anon - file) / MB };
}

/** rmdir once its last task is gone (a killed sensor takes a moment to exit: its BPF links and maps go first): at most 10 s. */
function removeCgroup(dir: string): void {
  const gone = waitSync(() => {
    try {
      rmdirSync(dir);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT';
    }
  }, 10_000);
  if (gone) cgroups.delete(dir);
}

/** CPU ns of every thread of pid (schedstat's time on a CPU), and its main thread's context switches. */
function cpuNow(pid: number): { ns: number; switches: number } {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* a thread that ended meanwhile */
    }
  }
  const st = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const sw = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)?.[1] ?? NaN);
  return { ns, switches: sw('voluntary_ctxt_switches') + sw('nonvoluntary_ctxt_switches') };
}

/** What the sensor costs while nothing happens: CPU ms per second and wake-ups per second over `seconds`. */
async function idleCost(pid: number, seconds: number): Promise<IdleCost> {
  const a = cpuNow(pid);
  await sleep(seconds * 1000);
  const b = cpuNow(pid);
  return { seconds, cpuMsPerS: (b.ns - a.ns) / 1e6 / seconds, wakeupsPerS: (b.switches - a.switches) / seconds };
}

/** The sensor's resident memory by part, and its cgroup's charge when it runs in one. */
function memoryOf(pid: number, cg: MemCg | undefined): Pick<FootprintRun, 'rssMb' | 'parts' | 'memcg'> {
  const parts = smapsParts(readFileSync(`/proc/${pid}/smaps`, 'utf8'), realpathSync(process.execPath));
  const rssMb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  return { rssMb, parts, memcg: cg && inCgroup(pid, cg) ? readMemCg(cg) : undefined };
}

async function once(tree: string, which: 'this' | 'before', pair: number, seconds: number, idleSeconds: number): Promise<FootprintRun> {
  const w = watch(which, tree, false);
  try {
    await sleep(seconds * 1000);
    // Read before the smaps: a sensor measured while still loading its programs would look small.
    const attached = running(w, seconds);
    const mem = memoryOf(w.child.pid!, w.cg);
    const idle = idleSeconds > 0 ? await idleCost(w.child.pid!, idleSeconds) : undefined;
    return { tree: which, pair, ...mem, attached, idle };
  } finally {
    await unwatch(w);
  }
}

async function until(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) return false;
    await sleep(100);
  }
  return true;
}

/** A sensor of the loaded reads: its own cgroup and state dir, its stdout's lifecycle lines counted. */
interface Watched {
  tree: 'this' | 'before';
  options?: string;
  child: ChildProcess;
  cg?: MemCg;
  state: string;
  started: number;
  ended: number;
  err: string;
}

/**
 * Starts `ctrwatch run` of the tree at `dir`, with `options` (words separated by spaces) after its
 * state dir; its stdout counted when `count`, else sent to /dev/null.
 */
function watch(tree: 'this' | 'before', dir: string, count: boolean, options?: string): Watched {
  const state = mkdtempSync(join(tmpdir(), 'cwbench-footprint-'));
  states.add(state);
  const cg = makeMemCg();
  if (cg) cgroups.add(cg.dir);
  const cmd = [
    process.execPath,
    join(dir, 'bin', 'ctrwatch'),
    'run',
    '--state-dir',
    state,
    ...(options?.split(/\s+/).filter(Boolean) ?? []),
  ];
  // The shell joins the cgroup, then becomes the sensor: everything it allocates is charged there.
  // A refused join leaves it where it is (checked before the charge is read).
  const argv = cg ? ['/bin/sh', '-c', 'echo $$ > "$0/cgroup.procs"; exec "$@"', cg.dir, ...cmd] : cmd;
  const child = track(spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', count ? 'pipe' : 'ignore', 'pipe'], detached: true }));
  sensors.add(child);
  const w: Watched = { tree, options, child, cg, state, started: 0, ended: 0, err: '' };
  child.stderr!.on('data', (b: Buffer) => (w.err = (w.err + b.toString()).slice(-2000)));
  if (!count) return w;
  let carry = '';
  child.stdout!.on('data', (b: Buffer) => {
    const lines = (carry + b.toString('latin1')).split('\n');
    carry = lines.pop()!;
    for (const l of lines) {
      if (l.includes('"containerStarted":')) w.started++;
      else if (l.includes('"containerExited":')) w.ended++;
    }
  });
  return w;
}

/** The sensor as the log and errors name it: its tree, and its options when it has some. */
const named = (w: Pick<Watched, 'tree' | 'options'>): string => (w.options ? `${w.tree} ${w.options}` : w.tree);

/** Its BPF links, once it has had `seconds` to start; throws when it ended or attached nothing. */
function running(w: Watched, seconds: number): number {
  const c = w.child;
  const who = named(w);
  if (c.exitCode !== null || c.signalCode !== null)
    throw new Error(`${who}: ctrwatch run ended (${c.exitCode ?? c.signalCode}) before it was measured: ${w.err.trim()}`);
  const attached = attachedCount(c.pid!);
  if (!attached) throw new Error(`${who}: ctrwatch run had no BPF program attached after ${seconds} s: ${w.err.trim()}`);
  return attached;
}

async function unwatch(w: Watched): Promise<void> {
  w.child.kill('SIGINT');
  const t = setTimeout(() => w.child.kill('SIGKILL'), 5000);
  await exited(w.child);
  clearTimeout(t);
  sensors.delete(w.child);
  if (w.cg) removeCgroup(w.cg.dir);
  rmSync(w.state, { recursive: true, force: true });
  states.delete(w.state);
}

/**
 * Sensors of this code (and of the tree before, when given), side by side, each in a memory cgroup
 * of its own, while real runc containers start in steps up to each of `counts`: each read once
 * every sensor has reported every container of a step and `settleSeconds` more have passed; then
 * every container is removed and each is read again. Side by side, both see the same containers
 * start at the same moments, on the same loaded machine.
 */
async function loaded(
  trees: [tree: 'this' | 'before', dir: string, options?: string][],
  counts: number[],
  seconds: number,
  settleSeconds: number,
  log: (m: string) => void,
): Promise<FootprintLoad> {
  const t0 = Date.now();
  const res: FootprintLoad = {
    counts,
    settleSeconds,
    command: `ctrwatch run --state-dir <temp dir>, stdout read by the bench (its containerStarted and containerExited lines counted); runc --root <temp dir> run -d, one bundle per container, busybox sleep from one read-only root`,
    reads: [],
    after: [],
    errors: [],
    wallS: 0,
  };
  const watched: Watched[] = [];
  const as = (w: Watched): Pick<LoadedRead, 'tree' | 'options'> => (w.options ? { tree: w.tree, options: w.options } : { tree: w.tree });
  let fleet: RuncFleet | undefined;
  const reported = (n: number, of: (w: Watched) => number) => until(() => watched.every((w) => of(w) >= n), 120_000);
  const failed = (what: string) =>
    watched.map((w) => `${named(w)}: ${what === 'start' ? w.started : w.ended} (${w.err.trim().slice(-300)})`).join('; ');
  try {
    for (const [tree, dir, options] of trees) watched.push(watch(tree, dir, true, options));
    await sleep(seconds * 1000);
    for (const w of watched) running(w, seconds);
    fleet = new RuncFleet();
    for (const n of counts) {
      const t = Date.now();
      fleet.growTo(n);
      const startS = (Date.now() - t) / 1000;
      if (!(await reported(n, (w) => w.started)))
        throw new Error(`loaded: not every start of ${n} reported after 120 s: ${failed('start')}`);
      await sleep(settleSeconds * 1000);
      for (const w of watched) {
        const r: LoadedRead = { ...as(w), containers: n, reported: w.started, startS, ...memoryOf(w.child.pid!, w.cg) };
        res.reads.push(r);
        log(
          `footprint: ${named(w)}, ${n} runc containers: ${r.rssMb.toFixed(1)} MB RSS, charged ${r.memcg ? `${r.memcg.chargedMb.toFixed(1)} MB` : 'not read'}`,
        );
      }
    }
    const total = fleet.ids.length;
    fleet.removeAll();
    if (!(await reported(total, (w) => w.ended)))
      throw new Error(`loaded: not every exit of ${total} reported after 120 s: ${failed('exit')}`);
    await sleep(settleSeconds * 1000);
    for (const w of watched) {
      const r: LoadedRead = { ...as(w), containers: 0, reported: w.ended, startS: 0, ...memoryOf(w.child.pid!, w.cg) };
      res.after.push(r);
      log(`footprint: ${named(w)}, after the ${total} containers left: ${r.rssMb.toFixed(1)} MB RSS`);
    }
  } catch (e) {
    res.errors.push((e as Error).message);
    log(`footprint: ${(e as Error).message}`);
  } finally {
    fleet?.removeAll();
    for (const w of watched) await unwatch(w);
  }
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}

const addonSize = (tree: string): number => statSync(join(tree, 'build', 'Release', 'ctrwatch.node')).size;

export async function runFootprint(o: {
  seconds: number;
  idleSeconds: number;
  pairs: number;
  before?: string;
  /** Real runc containers to start, in steps, under one more sensor of each tree, side by side (empty: none). */
  containers: number[];
  /** Sets of options: under those containers, one more sensor of this code with each, beside the rest. */
  options: string[];
  settleSeconds: number;
  log: (m: string) => void;
}): Promise<FootprintResult> {
  const t0 = Date.now();
  const res: FootprintResult = {
    seconds: o.seconds,
    idleSeconds: o.idleSeconds,
    command: `ctrwatch run --state-dir <temp dir>, stdout to /dev/null, measured after ${o.seconds} s`,
    runs: [],
    addonBytes: { this: addonSize(CODE) },
    beforeDir: o.before,
    beforeCommit: o.before ? treeCommit(o.before) : undefined,
    errors: [],
    wallS: 0,
  };
  let before = o.before;
  if (before) {
    try {
      res.addonBytes.before = addonSize(before);
    } catch (e) {
      res.errors.push(`BENCH_FOOTPRINT_BEFORE ${before}: no built addon (${(e as Error).message}); this code measured alone`);
      before = undefined;
    }
  }
  const n = before ? o.pairs : 1;
  for (let i = 0; i < n; i++) {
    const order: ['this' | 'before', string][] = [['this', CODE]];
    if (before) order[i % 2 ? 'push' : 'unshift'](['before', before]);
    for (const [which, tree] of order) {
      try {
        const r = await once(tree, which, i, o.seconds, o.idleSeconds);
        res.runs.push(r);
        o.log(
          `footprint: pair ${i} ${which}: ${r.rssMb.toFixed(1)} MB (${FOOTPRINT_PARTS.map((p) => `${p} ${r.parts[p].toFixed(1)}`).join(', ')}); charged ${r.memcg ? `${r.memcg.chargedMb.toFixed(1)} MB, kernel ${r.memcg.kernelMb.toFixed(1)}` : 'not read (no memory cgroup)'}${r.idle ? `; idle ${r.idle.cpuMsPerS.toFixed(2)} ms CPU/s, ${r.idle.wakeupsPerS.toFixed(1)} wake-ups/s` : ''}`,
        );
      } catch (e) {
        res.errors.push((e as Error).message);
        o.log(`footprint: ${(e as Error).message}`);
      }
    }
  }
  if (o.containers.length) {
    const trees: [tree: 'this' | 'before', dir: string, options?: string][] = [['this', CODE]];
    if (before) trees.push(['before', before]);
    for (const opts of o.options) trees.push(['this', CODE, opts]);
    res.load = await loaded(trees, o.containers, o.seconds, o.settleSeconds, o.log);
  }
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}
