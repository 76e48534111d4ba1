/**
 * The footprint part: `ctrwatch run` itself, idle on this node, and its resident memory by
 * mapping (/proc/PID/smaps) once it has run a few seconds: what a node pays for the sensor before
 * any container load. With a built tree of an earlier commit (BENCH_FOOTPRINT_BEFORE), the two
 * run in pairs, the order alternating, one at a time.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachedCount, CODE, exited, sleep, track, treeCommit } from './lib';

/** Where a mapping's resident pages are counted. */
export const FOOTPRINT_PARTS = ['anonymous', 'node', 'rings', 'addon', 'brk', 'other'] as const;
export type FootprintPart = (typeof FOOTPRINT_PARTS)[number];

export const FOOTPRINT_PART_TEXT: Record<FootprintPart, string> = {
  anonymous: "anonymous memory (V8's heap, thread stacks, malloc arenas)",
  node: 'the node binary (file-backed)',
  rings: "the kernel's BPF maps mapped into the process (the two ring buffers; each ring's data pages are mapped twice)",
  addon: 'the addon (ctrwatch.node, file-backed)',
  brk: 'the C heap (brk)',
  other: 'libraries and the rest',
};

export interface FootprintRun {
  tree: 'this' | 'before';
  pair: number;
  rssMb: number;
  parts: Record<FootprintPart, number>;
  /** BPF links the sensor held when it was measured (it had attached). */
  attached: number;
}

export interface FootprintResult {
  seconds: number;
  command: string;
  runs: FootprintRun[];
  addonBytes: { this: number; before?: number };
  beforeDir?: string;
  beforeCommit?: string;
  errors: string[];
  wallS: number;
}

/** Sums smaps' Rss lines per part; MB. */
export function smapsParts(smaps: string, nodeBinary: string): Record<FootprintPart, number> {
  const kb = Object.fromEntries(FOOTPRINT_PARTS.map((p) => [p, 0])) as Record<FootprintPart, number>;
  let part: FootprintPart = 'other';
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1]!;
      part =
        name === ''
          ? 'anonymous'
          : name === nodeBinary
            ? 'node'
            : name.startsWith('anon_inode:bpf-map')
              ? 'rings'
              : name.endsWith('.node')
                ? 'addon'
                : name === '[heap]'
                  ? 'brk'
                  : 'other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kb[part] += Number(rss[1]);
  }
  for (const p of FOOTPRINT_PARTS) kb[p] /= 1024;
  return kb;
}

async function once(tree: string, which: 'this' | 'before', pair: number, seconds: number): Promise<FootprintRun> {
  const state = mkdtempSync(join(tmpdir(), 'cwbench-footprint-'));
  const child = track(
    spawn(process.execPath, [join(tree, 'bin', 'ctrwatch'), 'run', '--state-dir', state], {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    }),
  );
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-2000)));
  try {
    await sleep(seconds * 1000);
    if (child.exitCode !== null) throw new Error(`${which}: ctrwatch run exited (${child.exitCode}): ${err.trim()}`);
    const smaps = readFileSync(`/proc/${child.pid}/smaps`, 'utf8');
    const parts = smapsParts(smaps, realpathSync(process.execPath));
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rssMb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
    return { tree: which, pair, rssMb, parts, attached: attachedCount(child.pid!) };
  } finally {
    child.kill('SIGINT');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited(child);
    clearTimeout(t);
    rmSync(state, { recursive: true, force: true });
  }
}

export async function runFootprint(o: {
  seconds: number;
  pairs: number;
  before?: string;
  log: (m: string) => void;
}): Promise<FootprintResult> {
  const t0 = Date.now();
  const addon = (tree: string) => statSync(join(tree, 'build', 'Release', 'ctrwatch.node')).size;
  const res: FootprintResult = {
    seconds: o.seconds,
    command: `ctrwatch run --state-dir <temp dir>, stdout to /dev/null, measured after ${o.seconds} s`,
    runs: [],
    addonBytes: { this: addon(CODE), before: o.before ? addon(o.before) : undefined },
    beforeDir: o.before,
    beforeCommit: o.before ? treeCommit(o.before) : undefined,
    errors: [],
    wallS: 0,
  };
  const n = o.before ? o.pairs : 1;
  for (let i = 0; i < n; i++) {
    const order: ['this' | 'before', string][] = [['this', CODE]];
    if (o.before) order[i % 2 ? 'push' : 'unshift'](['before', o.before]);
    for (const [which, tree] of order) {
      try {
        const r = await once(tree, which, i, o.seconds);
        res.runs.push(r);
        o.log(
          `footprint: pair ${i} ${which}: ${r.rssMb.toFixed(1)} MB (${FOOTPRINT_PARTS.map((p) => `${p} ${r.parts[p].toFixed(1)}`).join(', ')})`,
        );
      } catch (e) {
        res.errors.push((e as Error).message);
        o.log(`footprint: ${(e as Error).message}`);
      }
    }
  }
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}
