/**
 * Container start latency: from the entrypoint's exec to the `containerStarted`
 * line arriving in the process that reads `ctrwatch run`'s stdout, per runtime
 * (runc, crun, containerd via ctr, podman, docker, all through RuntimeLab); and
 * the same for a detection (`escape.privileged-container`, every third
 * container is privileged).
 *
 * The clocks. The reader (ctrwatch-reader.ts, a process of its own that does
 * nothing else) stamps each line with process.hrtime() (CLOCK_MONOTONIC) when
 * its chunk arrives: A. The event's timeUnixNano is the kernel's exec time E
 * (monotonic ktime) plus the sensor's wall offset S, taken once from Date.now()
 * and so up to 1 ms short: T = E + S. The entrypoint is bench/stamp.c, whose
 * first instructions read CLOCK_MONOTONIC (M) and CLOCK_REALTIME (R) and write
 * them to a bind-mounted file: R − M is the true wall offset O, and M comes
 * d ≥ 0 after E (d is µs, unless the entrypoint is preempted right after its
 * exec — e.g. by the sensor it just woke).
 *
 *   skew = R − T = d + (O − S);  err = min over the run of skew = (O − S) + min d
 *   latency = A − (T − O) − err = (A − E) − min d
 *
 * so the figure is measured from the kernel's own exec timestamp, short by the
 * smallest d of the run (µs). A − M (from the entrypoint's stamp alone) is kept
 * as a cross-check; it is short by each sample's own d.
 *
 * Rounds go over the runtimes in turn (order rotated), so that slow spells of
 * the shared machine spread over all of them; one warm-up container per
 * runtime (daemon start, image import) is not counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildStamp, CtrwatchRun, loadLab, type Lab, type RuntimeName, type SensorStopped, type Started } from './lab';
import { display, OUT, quantile, sleep, stormCommand, track, type StormBuild } from './lib';

export interface Dist {
  n: number;
  p50: number;
  p99: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
}

export function dist(xs: number[]): Dist {
  const v = xs.filter((x) => Number.isFinite(x));
  return {
    n: v.length,
    p50: quantile(v, 0.5),
    p99: quantile(v, 0.99),
    q1: quantile(v, 0.25),
    q3: quantile(v, 0.75),
    min: v.length ? Math.min(...v) : NaN,
    max: v.length ? Math.max(...v) : NaN,
  };
}

export interface LatencyConfig {
  perRuntime: number;
  runtimes: RuntimeName[];
  /** When set, every runtime also gets perRuntime samples while a busy-container storm runs. */
  storm?: { build: StormBuild; workers: number };
  /** More `ctrwatch run` options (BENCH_LATENCY_ARGS). */
  sensorArgs?: string[];
  /** The reader's SCHED_FIFO priority, 0 for none (BENCH_LATENCY_READER_FIFO; CtrwatchRun). */
  readerFifo: number;
  log: (msg: string) => void;
}

export interface LatencySample {
  runtime: RuntimeName;
  id: string;
  privileged: boolean;
  /** Started while the busy-container storm ran. */
  underStorm: boolean;
  /** Kernel exec time to containerStarted line arrival, ms: A − (T − O) − err (err: the run's minimum skew). */
  startedMs?: number;
  /** The same for the escape.privileged-container line. */
  detectionMs?: number;
  /** A − (T − O) before the correction, ms. */
  startedRawMs?: number;
  detectionRawMs?: number;
  /** Stamp (entrypoint's first CLOCK_MONOTONIC read) to containerStarted line arrival, A − M, ms. */
  startedStampMs?: number;
  /** skew = R − T, ms: the entrypoint's delay after its exec plus the sensor's wall-offset error. */
  clockSkewMs?: number;
  /** skew − err: how long after the kernel's exec the entrypoint's first instruction ran, ms. */
  stampDelayMs?: number;
  /** How long the runtime's start command took (RuntimeLab.start), ms: context only. */
  startCmdMs: number;
  error?: string;
}

export interface RuntimeLatency {
  runtime: RuntimeName;
  skipped?: string;
  started: Dist;
  startCmdMs: Dist;
  failures: number;
  /** The same while the busy-container storm ran (when the run had one). */
  startedStorm?: Dist;
  failuresStorm?: number;
}

export interface LatencyResult {
  config: { perRuntime: number; runtimes: RuntimeName[]; readerFifo?: number };
  command: string;
  /** The busy-container storm's command (stopped with SIGSTOP between its samples), if any. */
  stormCommand?: string;
  stampKind: string;
  samples: LatencySample[];
  runtimes: RuntimeLatency[];
  /** Detection latency of the samples taken idle; detectionStorm: under the storm. */
  detection: Dist;
  detectionStorm?: Dist;
  /** A − M: from the entrypoint's own stamp, all runtimes. */
  startedStamp: Dist;
  clockSkewMs: Dist;
  /** err: the minimum skew of the run, ms (the sensor's wall-offset error, plus the smallest entrypoint delay). */
  offsetErrMs: number;
  stampDelayMs: Dist;
  sensor: SensorStopped;
  wallS: number;
  /** RuntimeLab's temp dir (for the leftover check: every process it started names it). */
  labDir?: string;
  error?: string;
}

/** Issue 15: start → line p99 at most 10 ms, idle and while a busy-container storm runs. */
const TARGET_MS = 10;
export const LATENCY_TARGET = { ms: TARGET_MS, text: `p99 ≤ ${TARGET_MS} ms` };

async function readStamp(file: string, ms = 3000): Promise<{ mono: bigint; real: bigint } | undefined> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const m = /^(\d+) (\d+)\n$/.exec(readFileSync(file, 'utf8'));
      if (m) return { mono: BigInt(m[1]), real: BigInt(m[2]) };
    } catch {
      /* not yet */
    }
    if (Date.now() > until) return undefined;
    await sleep(10);
  }
}

const nsToMs = (ns: bigint) => Number(ns) / 1e6;

/** Pause between stopping the storm and an idle sample. */
const IDLE_SETTLE_MS = 1500;

/**
 * A busy-container storm (bench/storm -u: every fork, exec and exit followed and sent) that runs
 * for the whole part, stopped (SIGSTOP to its process group) between the samples taken idle.
 */
class BackgroundStorm {
  private p?: ChildProcess;
  constructor(readonly cmd: string[]) {}
  start(): void {
    this.p = track(spawn(this.cmd[0], this.cmd.slice(1), { stdio: 'ignore', detached: true }));
    this.signal('SIGSTOP');
  }
  signal(sig: NodeJS.Signals): void {
    if (this.p?.pid && this.p.exitCode === null) process.kill(-this.p.pid, sig);
  }
  stop(): void {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
  }
}

async function one(
  lab: Lab,
  cw: CtrwatchRun,
  rt: RuntimeName,
  name: string,
  privileged: boolean,
  dir: string,
  underStorm = false,
): Promise<LatencySample> {
  const s: LatencySample = { runtime: rt, id: name, privileged, underStorm, startCmdMs: NaN };
  const stampFile = join(dir, 'out', name);
  const from = cw.lines.length;
  const t0 = Date.now();
  let c: Started | undefined;
  try {
    c = await lab.start(rt, {
      name,
      privileged,
      args: ['/cwbench/stamp', `/cwbench/out/${name}`],
      mounts: [{ source: dir, destination: '/cwbench' }],
      timeoutMs: 60_000,
    });
    s.startCmdMs = Date.now() - t0;
    s.id = c.id;
    const id = c.id;
    const started = await cw.waitFor((e) => e.containerStarted?.container?.id === id, 10_000, from);
    const stamp = await readStamp(stampFile);
    if (!stamp) throw new Error('no stamp written');
    const offset = stamp.real - stamp.mono; // O
    const kernelMono = (line: { e: Record<string, string> }, what: string) => {
      const raw = line.e.timeUnixNano;
      if (raw === undefined) throw new Error(`${what} line without timeUnixNano`);
      return BigInt(raw) - offset; // T − O = E − (O − S)
    };
    s.startedRawMs = nsToMs(started.t - kernelMono(started, 'containerStarted'));
    s.startedStampMs = nsToMs(started.t - stamp.mono);
    s.clockSkewMs = nsToMs(stamp.real - BigInt(started.e.timeUnixNano));
    if (privileged) {
      const det = await cw.waitFor(
        (e) => e.detection?.ruleId === 'escape.privileged-container' && e.detection.container?.id === id,
        10_000,
        from,
      );
      s.detectionRawMs = nsToMs(det.t - kernelMono(det, 'detection'));
    }
  } catch (e) {
    s.error = (e as Error).message.split('\n')[0];
  } finally {
    if (c) await lab.stop(c).catch((e: Error) => (s.error ??= `stop: ${e.message.split('\n')[0]}`));
  }
  return s;
}

export async function runLatency(cfg: LatencyConfig): Promise<LatencyResult> {
  const t0 = Date.now();
  const stamp = buildStamp();
  const stateDir = mkdtempSync('/tmp/ctrwatch-bench-state-');
  const args = ['--state-dir', stateDir, ...(cfg.sensorArgs ?? [])];
  const res: LatencyResult = {
    config: { perRuntime: cfg.perRuntime, runtimes: cfg.runtimes, readerFifo: cfg.readerFifo },
    command: `ctrwatch run ${args.join(' ')} (stdout piped to node dist/bench/ctrwatch-reader.js); containers via RuntimeLab: entrypoint bench/out/stamp (${stamp.kind}), every 3rd --privileged`,
    stampKind: stamp.kind,
    samples: [],
    runtimes: [],
    detection: dist([]),
    startedStamp: dist([]),
    clockSkewMs: dist([]),
    offsetErrMs: NaN,
    stampDelayMs: dist([]),
    sensor: {},
    wallS: 0,
  };
  const RuntimeLab = loadLab();
  const dir = mkdtempSync('/tmp/ctrwatch-bench-stamp-');
  mkdirSync(join(dir, 'out'));
  copyFileSync(stamp.path, join(dir, 'stamp'));
  chmodSync(join(dir, 'stamp'), 0o755);
  mkdirSync(join(OUT, 'logs'), { recursive: true });
  const cw = new CtrwatchRun(args, join(OUT, 'logs', 'latency-ctrwatch.log'), cfg.readerFifo);
  const storm = cfg.storm ? new BackgroundStorm(stormCommand(cfg.storm.build, cfg.storm.workers, 36_000, 'container')) : undefined;
  if (storm) res.stormCommand = display(storm.cmd);
  let lab: Lab | undefined;
  const skipped = new Map<RuntimeName, string>();
  try {
    lab = await RuntimeLab.open();
    res.labDir = lab.dir;
    await cw.start();
    const usable: RuntimeName[] = [];
    for (const rt of cfg.runtimes) {
      const av = RuntimeLab.available(rt);
      if (!av.ok) {
        skipped.set(rt, av.reason);
        continue;
      }
      // Warm-up: starts the runtime's daemon, imports the image; not counted.
      const w = await one(lab, cw, rt, `cwb-warm-${rt}`, false, dir);
      if (w.error) {
        skipped.set(rt, `warm-up failed: ${w.error}`);
        cfg.log(`latency: ${rt} skipped: ${w.error}`);
        continue;
      }
      usable.push(rt);
    }
    const failuresInARow = new Map<string, number>();
    if (storm) storm.start();
    for (let i = 0; i < cfg.perRuntime; i++) {
      const order = usable.map((_, k) => usable[(k + i) % usable.length]);
      let taken = 0;
      for (const rt of order) {
        // Idle and under storm interleaved, the side alternating by round.
        for (const busy of storm ? (i % 2 ? [true, false] : [false, true]) : [false]) {
          const key = `${rt}${busy ? ':storm' : ''}`;
          if ((failuresInARow.get(key) ?? 0) >= 3) continue;
          storm?.signal(busy ? 'SIGCONT' : 'SIGSTOP');
          // Under storm: the storm at full speed before the container starts. Idle: the sensor
          // catches up with the storm's records first (a backlog would count as idle latency).
          if (storm) await sleep(busy ? 200 : IDLE_SETTLE_MS);
          const s = await one(lab, cw, rt, `cwb-${rt}-${i}${busy ? 's' : ''}`, i % 3 === 2, dir, busy);
          storm?.signal('SIGSTOP');
          res.samples.push(s);
          taken++;
          failuresInARow.set(key, s.error ? (failuresInARow.get(key) ?? 0) + 1 : 0);
          if (s.error) cfg.log(`latency: ${key} #${i}: ${s.error}`);
        }
      }
      const last = res.samples
        .slice(-taken)
        .map((s) => `${s.runtime}${s.underStorm ? ' (storm)' : ''} ${s.startedRawMs?.toFixed(1) ?? 'x'}`)
        .join(', ');
      cfg.log(`latency round ${i + 1}/${cfg.perRuntime} (before the offset correction): ${last} ms`);
    }
    for (const rt of usable) if ((failuresInARow.get(rt) ?? 0) >= 3) skipped.set(rt, 'stopped after 3 failures in a row');
  } catch (e) {
    res.error = (e as Error).message;
    cfg.log(`latency failed: ${res.error}`);
  } finally {
    storm?.stop();
    res.sensor = await cw.stop().catch(() => ({}));
    if (lab) await lab.close().catch((e: Error) => cfg.log(`latency: RuntimeLab.close: ${e.message}`));
    rmSync(dir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
  // err: the smallest skew of the run (one sensor process, one offset for all samples).
  const skews = res.samples.map((s) => s.clockSkewMs).filter((x): x is number => x !== undefined && Number.isFinite(x));
  res.offsetErrMs = skews.length ? Math.min(...skews) : NaN;
  for (const s of res.samples) {
    if (s.startedRawMs !== undefined) s.startedMs = s.startedRawMs - res.offsetErrMs;
    if (s.detectionRawMs !== undefined) s.detectionMs = s.detectionRawMs - res.offsetErrMs;
    if (s.clockSkewMs !== undefined) s.stampDelayMs = s.clockSkewMs - res.offsetErrMs;
  }
  for (const rt of cfg.runtimes) {
    const mine = res.samples.filter((s) => s.runtime === rt && !s.underStorm);
    const busy = res.samples.filter((s) => s.runtime === rt && s.underStorm);
    res.runtimes.push({
      runtime: rt,
      skipped: skipped.get(rt),
      started: dist(mine.map((s) => s.startedMs ?? NaN)),
      startCmdMs: dist(mine.map((s) => s.startCmdMs)),
      failures: mine.filter((s) => s.error).length,
      ...(storm ? { startedStorm: dist(busy.map((s) => s.startedMs ?? NaN)), failuresStorm: busy.filter((s) => s.error).length } : {}),
    });
  }
  res.detection = dist(res.samples.filter((s) => !s.underStorm).map((s) => s.detectionMs ?? NaN));
  if (storm) res.detectionStorm = dist(res.samples.filter((s) => s.underStorm).map((s) => s.detectionMs ?? NaN));
  res.clockSkewMs = dist(res.samples.map((s) => s.clockSkewMs ?? NaN));
  res.startedStamp = dist(res.samples.map((s) => s.startedStampMs ?? NaN));
  res.stampDelayMs = dist(res.samples.map((s) => s.stampDelayMs ?? NaN));
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}
