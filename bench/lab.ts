/**
 * What the container benchmarks (latency, churn) share: RuntimeLab from
 * test/support (bench/tsconfig.json compiles it with the bench); the
 * `ctrwatch run` child behind its reader (ctrwatch-reader.ts); the stamp
 * entrypoint (stamp.c).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeName } from '../test/support/runtime-types';
import { RuntimeLab } from '../test/support/runtimes';
import { CODE, exited, OUT, ROOT, sleep, track } from './lib';

// ---------------------------------------------------------------- RuntimeLab (test/support)

export type { ContainerSpec, RuntimeName, Started } from '../test/support/runtime-types';
export type Lab = RuntimeLab;
export const RUNTIMES: readonly RuntimeName[] = ['runc', 'crun', 'containerd', 'podman', 'docker'];

/** RuntimeLab: what the container benchmarks start real containers with, as the tests do. */
export function loadLab(): typeof RuntimeLab {
  return RuntimeLab;
}

// ---------------------------------------------------------------- the stamp entrypoint

/** Builds bench/out/stamp (no C library on x86_64, else static glibc). */
export function buildStamp(): { path: string; kind: string } {
  mkdirSync(OUT, { recursive: true });
  const src = join(ROOT, 'bench', 'stamp.c');
  const out = join(OUT, 'stamp');
  const kindFile = join(OUT, 'stamp.kind');
  if (existsSync(out) && existsSync(kindFile) && statSync(out).mtimeMs >= statSync(src).mtimeMs) {
    return { path: out, kind: readFileSync(kindFile, 'utf8').trim() };
  }
  const tries: [string, string[]][] = [
    ['nolibc', ['-O2', '-static', '-nostdlib', '-fno-stack-protector', '-fno-builtin', '-DSTAMP_NOLIBC', '-o', out, src]],
    ['static', ['-O2', '-static', '-o', out, src]],
  ];
  for (const [kind, args] of tries) {
    try {
      execFileSync(process.env.CC ?? 'gcc', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      writeFileSync(kindFile, kind + '\n');
      return { path: out, kind };
    } catch {
      /* next */
    }
  }
  throw new Error(`cannot build ${out} from ${src} with gcc`);
}

// ---------------------------------------------------------------- ctrwatch run, behind its reader

export interface Line {
  /** CLOCK_MONOTONIC ns at which the reading process got the line. */
  t: bigint;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  e: Record<string, any>;
}

export interface SensorStopped {
  counters?: { kernel: Record<string, number>; records: number; batches: number; decodeErrors: number; dropped: number };
  pipeline?: { records: number; events: number; detections: number; processes: number; containers: number };
}

/** The command a person would run for what CtrwatchRun starts. */
export function ctrwatchCommand(args: string[]): string {
  return `ctrwatch run ${args.join(' ')} | (reader: node dist/bench/ctrwatch-reader.js)`.replace('  ', ' ');
}

/** Waits until process `pid` has a child (the reader has forked ctrwatch). */
async function readerSpawnedChild(pid: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    if (kids) return;
    if (Date.now() > end) throw new Error(`ctrwatch reader ${pid} started no child in ${ms} ms`);
    await sleep(5);
  }
}

export class CtrwatchRun {
  readonly lines: Line[] = [];
  private readonly waiters = new Set<() => void>();
  private p?: ChildProcess;
  private partial = '';
  unparsable = 0;

  /**
   * readerFifo: the reader's main thread is made SCHED_FIFO at this priority once it has started
   * ctrwatch (which keeps the policy it was started with), so that the instrument's own wait for
   * a CPU on a loaded node is not counted as the sensor's latency. 0: the reader stays as started.
   */
  constructor(
    readonly args: string[],
    readonly stderrFile: string,
    readonly readerFifo = 0,
    /** Another built tree's bin/ctrwatch (BENCH_LATENCY_BEFORE); this tree's when undefined. */
    readonly bin?: string,
  ) {}

  async start(readyMs = 60_000): Promise<void> {
    const reader = join(CODE, 'dist', 'bench', 'ctrwatch-reader.js');
    const p = track(
      spawn(process.execPath, [reader, '--stderr', this.stderrFile, ...(this.bin ? ['--bin', this.bin] : []), '--', ...this.args], {
        cwd: ROOT,
        detached: true,
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    this.p = p;
    if (this.readerFifo) {
      // after the reader has forked ctrwatch, so that ctrwatch keeps the policy it was given
      await readerSpawnedChild(p.pid!);
      execFileSync('chrt', ['-f', '-p', String(this.readerFifo), String(p.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    p.stdout!.setEncoding('utf8');
    p.stdout!.on('data', (chunk: string) => {
      const text = this.partial + chunk;
      const parts = text.split('\n');
      this.partial = parts.pop() ?? '';
      for (const l of parts) {
        const tab = l.indexOf('\t');
        try {
          this.lines.push({ t: BigInt(l.slice(0, tab)), e: JSON.parse(l.slice(tab + 1)) });
        } catch {
          this.unparsable++;
        }
      }
      for (const w of [...this.waiters]) w();
    });
    await this.waitFor((e) => 'sensorReady' in e, readyMs).catch((err: Error) => {
      throw new Error(`ctrwatch run: ${err.message}; stderr: ${this.stderrTail()}`);
    });
  }

  stderrTail(n = 5): string {
    try {
      return readFileSync(this.stderrFile, 'utf8').trim().split('\n').slice(-n).join(' | ');
    } catch {
      return '';
    }
  }

  /** The first line (from `from` on) whose event satisfies pred. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  waitFor(pred: (e: Record<string, any>) => boolean, ms: number, from = 0): Promise<Line> {
    return new Promise((resolve, reject) => {
      let at = from;
      const check = () => {
        for (; at < this.lines.length; at++) {
          if (pred(this.lines[at].e)) {
            done();
            resolve(this.lines[at]);
            return true;
          }
        }
        if (this.p && (this.p.exitCode !== null || this.p.signalCode !== null)) {
          done();
          reject(new Error(`exited (${this.p.exitCode ?? this.p.signalCode})`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching line within ${ms} ms`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        this.p?.removeListener('exit', check);
      };
      if (check()) return;
      this.waiters.add(check);
      this.p?.once('exit', check);
    });
  }

  /** SIGTERM, wait (SIGKILL after 15 s); the "sensor stopped" log line's fields. */
  async stop(): Promise<SensorStopped> {
    const p = this.p;
    if (p && p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      const t = setTimeout(() => {
        try {
          process.kill(-p.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 15_000);
      await exited(p);
      clearTimeout(t);
    }
    await sleep(50);
    for (const l of readFileSync(this.stderrFile, 'utf8').split('\n')) {
      if (!l.includes('sensor stopped')) continue;
      try {
        return JSON.parse(l) as SensorStopped;
      } catch {
        /* not JSON */
      }
    }
    return {};
  }
}
