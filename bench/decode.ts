/**
 * Decode rate: decodeBatch over (1) real batches recorded from the kernel
 * programs during storms and (2) a synthetic batch of exec records only, with
 * typical argv. Figure: records/s, median of the repetitions.
 *
 * Recording uses the addon directly (loadBinding, new Sensor({ onRecords })),
 * through KernelSensor's `binding` injection so that host facts and tracefs
 * are set up as the sensor does; the raw Buffers are saved to
 * bench/out/batches.bin as [u32 LE length][bytes]… and never decoded while
 * recording.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { decodeBatch } from '../src/decode/decode';
import { encodeRecords } from '../src/decode/encode';
import { NS_NAMES, TaskFlag } from '../src/decode/layout';
import type { ExecRecord } from '../src/decode/records';
import { KernelSensor } from '../src/kernel/sensor';
import { loadBinding, type NativeBinding, type NativeSensorOptions } from '../src/native';
import { display, OUT, runStorm, sleep, stormCommand, summarize, type StormBuild, type Summary } from './lib';

export interface DecodeConfig {
  reps: number;
  /** Minimum duration of one repetition (passes over the batches are repeated within it). */
  repMs: number;
  recordSeconds: number;
  workers: number;
  storm: StormBuild;
  log: (msg: string) => void;
}

export interface DecodeFigure {
  name: string;
  description: string;
  records: number;
  batches: number;
  bytes: number;
  kinds: Record<string, number>;
  /** records per second of the process's CPU time (user+sys), one value per repetition: the headline. */
  rates: number[];
  rate: Summary;
  /** records per second of wall time, one value per repetition (inflated by other load on a shared machine). */
  wallRates: number[];
  wallRate: Summary;
}

export interface DecodeResult {
  config: Omit<DecodeConfig, 'log' | 'storm'>;
  recorded: { file: string; storms: string[]; dropped: number };
  figures: DecodeFigure[];
}

const BATCHES = join(OUT, 'batches.bin');

function save(batches: Buffer[]): void {
  const parts: Buffer[] = [];
  for (const b of batches) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    parts.push(len, b);
  }
  writeFileSync(BATCHES, Buffer.concat(parts));
}

/**
 * Each batch in a buffer of its own, 8-byte aligned as the addon hands them over: a view into the
 * file's bytes sits 4 bytes off for every other batch, and decodeBatch then copies it to align it
 * at every pass, a cost the sensor does not have.
 */
export function loadBatches(file = BATCHES): Buffer[] {
  const all = readFileSync(file);
  const out: Buffer[] = [];
  for (let at = 0; at + 4 <= all.length;) {
    const n = all.readUInt32LE(at);
    const b = Buffer.alloc(n);
    all.copy(b, 0, at + 4, at + 4 + n);
    out.push(b);
    at += 4 + n;
  }
  return out;
}

/** Records batches during a host storm, then a storm in its own mount namespace (forks and urgent records too). */
async function record(cfg: DecodeConfig): Promise<DecodeResult['recorded']> {
  const batches: Buffer[] = [];
  const real = loadBinding();
  class Recorder {
    constructor(o: NativeSensorOptions) {
      return new real.Sensor({ ...o, onRecords: (buf: Buffer) => batches.push(buf) });
    }
  }
  const binding: NativeBinding = { ...real, Sensor: Recorder as unknown as NativeBinding['Sensor'] };
  const sensor = new KernelSensor({ logger: pino({ level: 'error' }, pino.destination(2)), binding }, () => {});
  const storms: string[] = [];
  let dropped = 0;
  sensor.start();
  try {
    await sleep(300);
    // The sandbox storm: its forks are sent too, so the recorded mix keeps fork, exec and exit alike.
    for (const shape of ['host', 'sandbox'] as const) {
      const cmd = stormCommand(cfg.storm, cfg.workers, shape === 'sandbox' ? cfg.recordSeconds / 2 : cfg.recordSeconds, shape);
      await runStorm(cmd);
      storms.push(display(cmd));
    }
    await sleep(50);
    sensor.drain();
  } finally {
    dropped = sensor.counters().dropped;
    sensor.close();
  }
  save(batches);
  cfg.log(`decode: recorded ${batches.length} batches (${batches.reduce((s, b) => s + b.length, 0)} bytes), dropped ${dropped}`);
  return { file: BATCHES, storms, dropped };
}

// ---------------------------------------------------------------- synthetic

const ARGVS = [
  ['/usr/bin/containerd-shim-runc-v2', '-namespace', 'moby', '-id', 'a'.repeat(64), '-address', '/run/containerd/containerd.sock'],
  [
    'runc',
    '--root',
    '/var/run/docker/runtime-runc/moby',
    '--log',
    '/run/containerd/io.containerd.runtime.v2.task/moby/log.json',
    '--log-format',
    'json',
    'create',
    '--bundle',
    '/run/containerd/io.containerd.runtime.v2.task/moby/bundle',
    'b'.repeat(64),
  ],
  ['/bin/sh', '-c', 'echo hello && sleep 1'],
  ['nginx', '-g', 'daemon off;'],
  ['python3', '-m', 'gunicorn', '--bind', '0.0.0.0:8000', '--workers', '4', 'app.wsgi:application'],
  ['/usr/bin/git', 'rev-parse', '--abbrev-ref', 'HEAD'],
  ['ls', '-la', '/var/lib/docker/overlay2'],
  ['/usr/local/bin/node', '/app/server.js', '--port', '3000'],
];

/** One batch of `n` exec records, laid out as the kernel sends them (by the decoder's inverse, src/decode/encode.ts). */
export function syntheticExecBatch(n: number): Buffer {
  const recs: ExecRecord[] = [];
  for (let i = 0; i < n; i++) {
    const argv = ARGVS[i % ARGVS.length];
    const pid = 10_000 + i;
    const inside = i % 3 === 0;
    recs.push({
      kind: 'exec',
      ktime: 1_000_000_000n + BigInt(i) * 1000n,
      cpu: i % 2,
      task: {
        pid,
        tgid: pid,
        ppid: 9000,
        nspid: inside ? 1 : pid,
        uid: 0,
        euid: 0,
        gid: 0,
        egid: 0,
        startNs: 5_000_000_000n + BigInt(i),
        parentStartNs: 4_000_000_000n,
        capEffective: 0x1ffffffffffn,
        cgroupId: 7000n + BigInt(i % 50),
        ns: Object.fromEntries(NS_NAMES.map((k, s) => [k, 4026531835 + s + (inside ? 1000 : 0)])) as ExecRecord['task']['ns'],
        flags: TaskFlag.LEADER | (inside ? TaskFlag.IN_CONTAINER | TaskFlag.FOLLOWED : 0),
        comm: argv[0].split('/').pop()!.slice(0, 15),
      },
      filename: argv[0].startsWith('/') ? argv[0] : `/usr/bin/${argv[0]}`,
      argv,
      argsTruncated: false,
      oldPid: pid,
      exe: { ino: 1_234_567n + BigInt(i % 8), dev: 0x800001, fsMagic: 0x794c7630, nlink: 1, mtime: 1_700_000_000, ctime: 1_700_000_000 },
    });
  }
  return encodeRecords(recs);
}

// ---------------------------------------------------------------- timing

function kinds(batches: Buffer[]): { records: number; kinds: Record<string, number>; errors: number } {
  const k: Record<string, number> = {};
  let records = 0;
  let errors = 0;
  for (const b of batches) {
    const d = decodeBatch(b);
    errors += d.errors.length;
    for (const r of d.records) {
      k[r.kind] = (k[r.kind] ?? 0) + 1;
      records++;
    }
  }
  return { records, kinds: k, errors };
}

function time(name: string, description: string, batches: Buffer[], cfg: DecodeConfig): DecodeFigure {
  const { records, kinds: k, errors } = kinds(batches);
  if (errors) throw new Error(`${name}: ${errors} decode errors in the benchmark's input`);
  if (!records) throw new Error(`${name}: no records to decode`);
  let sink = 0;
  const pass = () => {
    for (const b of batches) sink += decodeBatch(b).records.length;
  };
  for (let i = 0; i < 5; i++) pass(); // warm-up: let the JIT settle
  const rates: number[] = [];
  const wallRates: number[] = [];
  for (let r = 0; r < cfg.reps; r++) {
    let passes = 0;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let ns = 0n;
    do {
      pass();
      passes++;
      ns = process.hrtime.bigint() - t0;
    } while (ns < BigInt(cfg.repMs) * 1_000_000n);
    const c = process.cpuUsage(c0);
    wallRates.push((passes * records) / (Number(ns) / 1e9));
    rates.push((passes * records) / ((c.user + c.system) / 1e6));
  }
  if (sink === 0) throw new Error('nothing decoded');
  return {
    name,
    description,
    records,
    batches: batches.length,
    bytes: batches.reduce((s, b) => s + b.length, 0),
    kinds: k,
    rates,
    rate: summarize(rates),
    wallRates,
    wallRate: summarize(wallRates),
  };
}

export async function runDecode(cfg: DecodeConfig): Promise<DecodeResult> {
  const recorded = await record(cfg);
  const real = loadBatches();
  const figures = [
    time('real', `batches recorded from the kernel programs (default options) during ${recorded.storms.length} storms`, real, cfg),
    time(
      'synthetic-exec',
      'one batch of 1,000 exec records with typical argv (3 to 11 arguments, 20-300 bytes)',
      [syntheticExecBatch(1000)],
      cfg,
    ),
  ];
  for (const f of figures)
    cfg.log(
      `decode ${f.name}: ${(f.rate.median / 1e6).toFixed(2)} M records/CPU-s, ${(f.wallRate.median / 1e6).toFixed(2)} M records/wall-s (${f.records} records/pass)`,
    );
  const { log: _l, storm: _s, ...rest } = cfg;
  return { config: rest, recorded, figures };
}
