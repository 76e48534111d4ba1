/**
 * The sensor as a process of its own, for the overhead benchmark: the kernel
 * programs, the native drain and the decoder, and nothing after them.
 *
 *   node dist/bench/sensor-proc.js [--drain-ms N] [--wake-gap-ns N] [--ring-bytes N]
 *                                  [--trace-all] [--raw] [--cgroup2]
 *
 * --raw skips the decoder: the addon's batches are counted, not decoded (to
 * tell decode cost from drain cost). BENCH_CPU_PROF=<file.cpuprofile> profiles
 * the process from attach to exit (started after the BPF load: node's
 * --cpu-prof signals would make the verifier fail with EAGAIN). Logs (pino) go to stderr. stdout carries
 * JSON lines only:
 *   {"ready":true,"pid":…}                      once the programs are attached
 *   {"counters":{…},"decoded":…,"final":false}  on SIGUSR2 (after a drain)
 *   {"counters":{…},"decoded":…,"final":true}   on SIGTERM/SIGINT, then close() and exit 0
 */
import { readFileSync, writeFileSync, writeSync } from 'node:fs';
import { Session } from 'node:inspector';
import { DecodeStage } from '../src/decode/stage';
import { parseMountinfo, readHostFacts, type HostFacts } from '../src/host';
import { KernelSensor, type KernelSensorOptions } from '../src/kernel/sensor';
import { createLogger } from '../src/log';
import { loadBinding, type NativeBinding, type NativeSensorOptions } from '../src/native';

interface Args {
  drainMs?: number;
  wakeGapNs?: number;
  ringBytes?: number;
  traceAll: boolean;
  raw: boolean;
  cgroup2: boolean;
  skipPrograms?: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { traceAll: false, raw: false, cgroup2: false };
  const num = (i: number) => {
    const n = Number(argv[i + 1]);
    if (!Number.isFinite(n) || n < 0) throw new RangeError(`${argv[i]} needs a number, got ${argv[i + 1]}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--drain-ms':
        a.drainMs = num(i++);
        break;
      case '--wake-gap-ns':
        a.wakeGapNs = num(i++);
        break;
      case '--ring-bytes':
        a.ringBytes = num(i++);
        break;
      case '--trace-all':
        a.traceAll = true;
        break;
      case '--raw':
        a.raw = true;
        break;
      case '--cgroup2':
        a.cgroup2 = true;
        break;
      case '--skip-programs':
        a.skipPrograms = (argv[++i] ?? '').split(',').filter(Boolean);
        break;
      default:
        throw new RangeError(`unknown argument ${argv[i]}`);
    }
  }
  return a;
}

/** This node's facts with the cgroup2 hierarchy as the one the kernel programs read. */
function cgroup2Facts(): HostFacts {
  const f = readHostFacts();
  const mount = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.fsType === 'cgroup2')?.mountPoint;
  return { ...f, cgroup: { mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2', mount } };
}

/** The real addon, with onRecords replaced by a counter: batches never reach the decoder. */
function rawBinding(count: (buf: Buffer) => void): NativeBinding {
  const real = loadBinding();
  class RawSensor {
    constructor(o: NativeSensorOptions) {
      return new real.Sensor({ ...o, onRecords: count });
    }
  }
  return { ...real, Sensor: RawSensor as unknown as NativeBinding['Sensor'] };
}

function line(o: unknown): void {
  writeSync(1, JSON.stringify(o) + '\n');
}

/** Starts the V8 profiler when `file` is set; the returned function writes the profile, then calls back. */
function startProfile(file: string | undefined): (done: () => void) => void {
  if (!file) return (done) => done();
  const s = new Session();
  s.connect();
  s.post('Profiler.enable', () => s.post('Profiler.start'));
  return (done) =>
    s.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(file, JSON.stringify(res.profile));
      done();
    });
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const logger = createLogger(process.env.CTRWATCH_LOG ?? 'info');
  let decoded = 0;
  let rawBytes = 0;
  const opts: KernelSensorOptions = {
    logger,
    drainMs: args.drainMs,
    wakeGapNs: args.wakeGapNs,
    ringBytes: args.ringBytes,
    traceAll: args.traceAll,
    skipPrograms: args.skipPrograms,
    binding: args.raw ? rawBinding((buf) => (rawBytes += buf.length)) : undefined,
    host: args.cgroup2 ? cgroup2Facts() : undefined,
  };
  const decode = new DecodeStage(logger, (batch) => {
    decoded += batch.records.length;
  });
  const sensor = new KernelSensor(opts, decode.push);
  sensor.start();
  const profile = startProfile(process.env.BENCH_CPU_PROF);
  line({ ready: true, pid: process.pid, options: { ...args } });

  const report = (final: boolean) => {
    sensor.drain();
    line({ counters: { ...sensor.counters(), decodeErrors: decode.errors }, decoded, rawBytes, final });
  };
  process.on('SIGUSR2', () => report(false));
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    report(true);
    sensor.close();
    profile(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  main();
} catch (err) {
  process.stderr.write(`sensor-proc: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
}
