/**
 * The sockets part: the sensor's two scans of /proc for host daemons, on a node with N processes
 * in a mount namespace of their own (a container's processes): the runtime sockets'
 * (src/container/runtime-sockets.ts) and containerd's pod stores' (src/container/pod-store.ts).
 * Each reading every pid, and with the pipeline's process table telling which pids live in
 * another mount namespace (what `ctrwatch run` passes now). The table learns those processes as
 * the sensor does for processes the kernel did not report: from /proc, once. The kinds
 * alternate, in one process.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ContainerdPodStore } from '../src/container/pod-store';
import { procIo, scanRuntimeSockets } from '../src/container/runtime-sockets';
import { DEFAULT_POLICY } from '../src/detect/policy';
import { readHostFacts } from '../src/host';
import { Pipeline } from '../src/pipeline';
import { quantile, sleep, summarize } from './lib';
import type { BenchReport, Figure } from './report-types';

export interface SocketsResult {
  command: string;
  /** Processes in their own mount namespace, and all pids on the node at the scans. */
  inside: number;
  pids: number;
  /** ms per scan: the runtime sockets', then the pod stores'. */
  everyPid: number[];
  skipKnown: number[];
  podEveryPid: number[];
  podSkipKnown: number[];
  /** Sockets found by each kind of scan (the same set, or the skip lost one). */
  found: { everyPid: number; skipKnown: number };
  errors: string[];
  wallS: number;
}

/** A process's command line; '' once it is gone (a zombie has none either). */
const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
};

const pidsNow = () => readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length;

/** A process's children, by /proc's children lists of its threads. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`))
    out.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  return out;
}

export async function runSockets(o: { inside: number; reps: number; log: (m: string) => void }): Promise<SocketsResult> {
  const t0 = Date.now();
  const res: SocketsResult = {
    command: `unshare -m: ${o.inside} sleeps in a mount namespace of their own; scanRuntimeSockets(procIo, host mnt) and ContainerdPodStore.scan(), each against the same with the process table's skip (ProcessTable.inOtherMountNs), ${o.reps} of each, alternating`,
    inside: o.inside,
    pids: 0,
    everyPid: [],
    skipKnown: [],
    podEveryPid: [],
    podSkipKnown: [],
    found: { everyPid: 0, skipKnown: 0 },
    errors: [],
    wallS: 0,
  };
  const state = mkdtempSync(join(tmpdir(), 'cwbench-sockets-'));
  let sh: ChildProcess | undefined;
  let kids: number[] = [];
  try {
    // unshare -m without --fork execs sh in place: the sleeps are its children, in its process group.
    sh = spawn(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', `i=0; while [ $i -lt ${o.inside} ]; do sleep 600.25 & i=$((i+1)); done; wait`],
      {
        stdio: 'ignore',
        detached: true,
      },
    );
    for (let i = 0; i < 1200 && kids.length < o.inside; i++) {
      await sleep(100);
      kids = sh.pid ? childrenOf(sh.pid) : [];
    }
    if (kids.length < o.inside) throw new Error(`only ${kids.length} of ${o.inside} processes started`);
    const host = readHostFacts();
    const pipeline = new Pipeline({
      logger: pino({ level: 'silent' }),
      host,
      emit: () => {},
      policy: { ...DEFAULT_POLICY, stateDir: state },
    });
    for (const pid of kids) pipeline.procs.get(pid);
    const skip = (pid: number) => pipeline.procs.inOtherMountNs(pid, host.hostNs[0]);
    const pods = {
      podEveryPid: new ContainerdPodStore(),
      podSkipKnown: new ContainerdPodStore(undefined, undefined, undefined, undefined, skip),
    };
    res.pids = pidsNow();
    for (let r = 0; r < o.reps; r++) {
      const order: ['everyPid' | 'skipKnown', ((pid: number) => boolean) | undefined][] = [
        ['everyPid', undefined],
        ['skipKnown', skip],
      ];
      if (r % 2) order.reverse();
      for (const [kind, s] of order) {
        const t = process.hrtime.bigint();
        const found = scanRuntimeSockets(procIo, host.hostNs[0], s);
        res[kind].push(Number(process.hrtime.bigint() - t) / 1e6);
        res.found[kind] = found.length;
      }
      for (const kind of (r % 2 ? ['podSkipKnown', 'podEveryPid'] : ['podEveryPid', 'podSkipKnown']) as (keyof typeof pods)[]) {
        const t = process.hrtime.bigint();
        pods[kind].scan();
        res[kind].push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }
    o.log(
      `sockets: ${o.inside} in a mount namespace, ${res.pids} pids: every pid ${quantile(res.everyPid, 0.5).toFixed(2)} ms, known ones skipped ${quantile(res.skipKnown, 0.5).toFixed(2)} ms; pod stores ${quantile(res.podEveryPid, 0.5).toFixed(2)} against ${quantile(res.podSkipKnown, 0.5).toFixed(2)} ms`,
    );
  } catch (e) {
    res.errors.push((e as Error).message);
    o.log(`sockets: ${(e as Error).message}`);
  } finally {
    if (sh?.pid) {
      try {
        process.kill(-sh.pid, 'SIGKILL');
      } catch {
        sh.kill('SIGKILL');
      }
    }
    rmSync(state, { recursive: true, force: true });
    // SIGKILL is delivered before the processes are gone: wait for their command lines to empty.
    for (let i = 0; i < 200 && kids.some((pid) => cmdline(pid)); i++) await sleep(50);
  }
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}

export function socketsFigures(r: BenchReport): Figure[] {
  const s = r.sockets;
  if (!s?.skipKnown.length) return [];
  const fig = (kind: 'everyPid' | 'skipKnown' | 'podEveryPid' | 'podSkipKnown', title: string): Figure => {
    const x = summarize(s[kind]);
    return { id: `sockets.${kind}`, title, command: s.command, unit: 'ms', rounds: x.n, median: x.median, q1: x.q1, q3: x.q3 };
  };
  return [
    fig(
      'skipKnown',
      `one runtime-socket scan, ${s.inside.toLocaleString('en-US')} processes in another mount namespace known to the process table (${s.pids.toLocaleString('en-US')} pids): the pipeline's skip, as ctrwatch run scans`,
    ),
    fig('everyPid', `the same scan reading every pid (as before)`),
    ...(s.podSkipKnown?.length
      ? [
          fig('podSkipKnown', `the scan for containerd's pod stores on the same node, with the skip`),
          fig('podEveryPid', 'the same reading every pid (as before)'),
        ]
      : []),
  ];
}

export function renderSockets(r: BenchReport, L: string[]): void {
  const s = r.sockets;
  if (!s) return;
  L.push('## The /proc scans for host daemons', '');
  L.push(
    `Command: ${s.command}. The runtime-socket scan runs at the sensor's start, every 10 s, and on a container's connect to a *.sock socket it does not know (rationed: src/container/runtime-sockets.ts); the pod stores' scan when a container's CRI sandbox is not found in the stores known, at most once a second (src/container/pod-store.ts); both on the event loop. ${s.pids.toLocaleString('en-US')} pids on the node at the scans. Sockets found: ${s.found.everyPid} reading every pid, ${s.found.skipKnown} with the skip.`,
    '',
    '| Scan | reps | ms median (Q1–Q3) | max |',
    '|---|---|---|---|',
  );
  for (const [kind, name] of [
    ['everyPid', 'runtime sockets: every pid read'],
    ['skipKnown', "runtime sockets: the process table's container processes skipped"],
    ['podEveryPid', "containerd's pod stores: every pid read"],
    ['podSkipKnown', "containerd's pod stores: the process table's container processes skipped"],
  ] as const) {
    const x = summarize(s[kind] ?? []);
    if (x.n) L.push(`| ${name} | ${x.n} | ${x.median.toFixed(2)} (${x.q1.toFixed(2)}–${x.q3.toFixed(2)}) | ${x.max.toFixed(2)} |`);
  }
  if (s.errors.length) L.push('', `Errors: ${s.errors.join('; ')}`);
  L.push('', `Part took ${s.wallS.toFixed(1)} s.`, '');
}
