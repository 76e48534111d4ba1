/**
 * The real pipeline (src/pipeline.ts) fed synthetic or recorded kernel
 * records, in a process of its own (a fresh heap for memory figures, its own
 * JIT state). One mode per run; prints one JSON line.
 *
 *   node --expose-gc dist/bench/pipeline-proc.js scale '{"containers":10000,"inside":9,"lagSeconds":30,"idleSeconds":20}'
 *   node dist/bench/pipeline-proc.js throughput '{"reps":15,"repMs":200}'
 *   node dist/bench/pipeline-proc.js rules '{"reps":15,"repMs":200}'
 *
 * Pipeline options: lookupProcs false (no /proc reads for synthetic pids), a
 * silent logger, a policy whose stateDir is a temp dir, emit = the hub's protobuf encoding then the
 * stdout sink's JSON line of those bytes written into a batch buffer (what `ctrwatch run` does
 * with its default output), its bytes counted.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import pino from 'pino';
import { decodeBatch } from '../src/decode/decode';
import type { DecodedBatch } from '../src/decode/records';
import type { Detector } from '../src/detect/detector';
import { DEFAULT_POLICY } from '../src/detect/policy';
import { Pipeline } from '../src/pipeline';
import { trimCHeap } from '../src/malloc-trim';
import { tuneGc, tuneHeapForSize, QuietHeap, youngGenerationBytes } from '../src/heap-tuning';
import { capYoungGeneration, YOUNG_MB_DEFAULT } from '../src/young-gen';
import { HEAP_GROWTH_DEFAULT, limitHeapGrowth } from '../src/heap-growth';
import { loadBinding } from '../src/native';
import { upkeep, type UpkeepSteps } from '../src/upkeep';
import { compileEventCodec, JsonOut, type JsonHead } from '../src/proto/codec';
import { loadEventSchema } from '../src/proto/schema';
import { loadBatches } from './decode';
import { OUT, quantile, summarize } from './lib';
import { batches, execRecord, exitRecord, forkRecord, HOST_NS, Synth, SYNTH_HOST } from './synth';
import { TaskFlag } from '../src/decode/layout';
import { CAP_NAMES } from '../src/container/caps';
import type { TaskInfo } from '../src/decode/records';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const codec = compileEventCodec(loadEventSchema());

/** A bundle with runc's default config.json, shared by every synthetic container (enrichment reads it). */
function bundle(tmp: string): string {
  const dir = join(tmp, 'bundle');
  mkdirSync(dir, { recursive: true });
  const config = {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['sleep', 'infinity'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: Object.fromEntries(
        ['bounding', 'effective', 'permitted'].map((k) => [k, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']]),
      ),
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup'].map((type) => ({ type })),
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, '\t'));
  return dir;
}

/** The bundle at base made privileged as docker --privileged makes it: every capability, no masked or read-only paths. */
function privilegedBundle(tmp: string, base: string): string {
  const dir = join(tmp, 'bundle-privileged');
  mkdirSync(dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')) as {
    process: { capabilities: Record<string, string[]>; noNewPrivileges: boolean };
    linux: Record<string, unknown>;
  };
  for (const k of ['bounding', 'effective', 'permitted']) config.process.capabilities[k] = [...CAP_NAMES];
  config.process.noNewPrivileges = false;
  delete config.linux.maskedPaths;
  delete config.linux.readonlyPaths;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, '\t'));
  return dir;
}

interface Made {
  pipeline: Pipeline;
  bytes: () => number;
  events: () => number;
  /** Wall ns spent encoding (protobuf, then the JSON line) so far. */
  encodeNs: () => number;
  /** Events emitted so far by kind, detections by rule. */
  eventKinds: () => Record<string, number>;
}

function makePipeline(tmp: string, name: string, lookupProcs = false): Made {
  let bytes = 0;
  let events = 0;
  let encodeNs = 0n;
  const kinds: Record<string, number> = {};
  let out = new JsonOut(1 << 17);
  const head: JsonHead = { seq: undefined, timeUnixNano: undefined, node: '', bootId: '', kind: undefined };
  const stateDir = join(tmp, `state-${name}`);
  mkdirSync(stateDir, { recursive: true });
  const pipeline = new Pipeline({
    logger: pino({ level: 'silent' }),
    host: SYNTH_HOST,
    lookupProcs,
    policy: { ...DEFAULT_POLICY, stateDir },
    // As `ctrwatch run` does with its default output: the hub encodes each event once
    // (protobuf, what every output gets), the stdout sink writes those bytes' JSON line into
    // its batch's buffer (src/sinks/local/stdout.ts: no string made), a buffer per 64 KiB here.
    emit: (e) => {
      const t = process.hrtime.bigint();
      const enc = codec.encodeKind(e);
      if (out.pos > 1 << 16) out = new JsonOut(1 << 17);
      const at = out.pos;
      codec.writeJson(enc.bytes, out, head);
      out.byte(10);
      bytes += out.pos - at;
      encodeNs += process.hrtime.bigint() - t;
      events++;
      const k = enc.kind === 'detection' ? `detection ${e.detection?.ruleId}` : (enc.kind ?? '?');
      kinds[k] = (kinds[k] ?? 0) + 1;
    },
  });
  return { pipeline, bytes: () => bytes, events: () => events, encodeNs: () => Number(encodeNs), eventKinds: () => ({ ...kinds }) };
}

/**
 * Keeps the pipeline's detector but drops what it finds (bench only): its rules run on every
 * record and lifecycle event, no detection event is built, stamped or encoded.
 */
function rulesOnly(p: Pipeline): Pipeline {
  const d = (p as unknown as { detector: Detector }).detector;
  (p as unknown as { detector: unknown }).detector = {
    onRecord: (...a: Parameters<Detector['onRecord']>) => {
      d.onRecord(...a);
      return [];
    },
    onLifecycle: (...a: Parameters<Detector['onLifecycle']>) => {
      d.onLifecycle(...a);
      return [];
    },
    techniques: () => [],
  };
  return p;
}

/** Replaces the pipeline's detector with one that finds nothing (bench only). */
function withoutDetector(p: Pipeline): Pipeline {
  (p as unknown as { detector: unknown }).detector = { onRecord: () => [], onLifecycle: () => [], techniques: () => [] };
  return p;
}

const mb = (b: number) => b / (1 << 20);

function memory() {
  gc();
  gc();
  const m = process.memoryUsage();
  return {
    rssMb: mb(m.rss),
    heapUsedMb: mb(m.heapUsed),
    heapTotalMb: mb(m.heapTotal),
    externalMb: mb(m.external),
    arrayBuffersMb: mb(m.arrayBuffers),
  };
}

// ---------------------------------------------------------------- scale

interface ScaleConfig {
  containers: number;
  inside: number;
  lagSeconds: number;
  /** Seconds without records after the steady phase (0 or absent: none), sweeping as run.ts does. */
  idleSeconds?: number;
  /** ProcessTable maxEntries override (bench only): undefined keeps the Pipeline's default. */
  maxEntries?: number;
}

/** A short-lived process in a running container (a health check): fork, exec, exit. */
function checkIn(synthPid: { next: number }, init: number, nsBase: number, cgroupId: bigint, kt: { t: bigint }): Buffer[] {
  const ns = {
    mnt: nsBase,
    pid: nsBase + 1,
    net: nsBase + 2,
    uts: nsBase + 3,
    ipc: nsBase + 4,
    cgroup: nsBase + 5,
    user: HOST_NS.user,
    time: HOST_NS.time,
  };
  const tgid = synthPid.next++;
  const t: TaskInfo = {
    pid: tgid,
    tgid,
    ppid: init,
    nspid: 100,
    uid: 0,
    euid: 0,
    gid: 0,
    egid: 0,
    startNs: BigInt(tgid) * 1_000_000n,
    parentStartNs: BigInt(init) * 1_000_000n,
    capEffective: 0xa80425fbn,
    cgroupId,
    ns,
    flags: TaskFlag.LEADER | TaskFlag.FOLLOWED | TaskFlag.IN_CONTAINER,
    comm: 'curl',
  };
  const k = () => (kt.t += 10_000n);
  return [
    forkRecord(t, k()),
    execRecord(t, k(), '/usr/bin/curl', ['/usr/bin/curl', '-fsS', 'http://127.0.0.1:8080/healthz']),
    exitRecord(t, k(), 0),
  ];
}

/** ctrwatch run's upkeep (src/upkeep.ts runUpkeep, wired in data-path.ts) runs every 5 s. */
const SWEEP_S = 5;

/**
 * ctrwatch run's upkeep steps, without the /proc prune (the pids are synthetic).
 * PIPELINE_TRIM=0: no C heap trim; PIPELINE_QUIET=0: no heap given back when quiet (the A/Bs).
 */
function benchUpkeep(): UpkeepSteps {
  return {
    prune: false,
    quiet: process.env.PIPELINE_QUIET === '0' ? undefined : new QuietHeap(),
    trim: process.env.PIPELINE_TRIM === '0' ? undefined : trimCHeap,
  };
}

/** Memory as the running sensor has it (no forced collection), one sample a call. */
function memorySamples() {
  const rss: number[] = [];
  const heapTotal: number[] = [];
  return {
    rss,
    heapTotal,
    sample() {
      const m = process.memoryUsage();
      rss.push(mb(m.rss));
      heapTotal.push(mb(m.heapTotal));
    },
  };
}

/**
 * After the steady phase, no records at all, the upkeep still running every 5 s as in run.ts;
 * before the /proc prune, which would empty the table of synthetic pids. What the heaps give
 * back once the load stops: the last sample, and the lowest.
 */
async function idlePhase(p: Pipeline, seconds: number, steps: UpkeepSteps) {
  const { rss, heapTotal, sample } = memorySamples();
  /** Each upkeep: its duration (ms) and whether the quiet heap collected in it. */
  const upkeeps: { ms: number; collected: boolean }[] = [];
  for (let sec = 1; sec <= seconds; sec++) {
    await new Promise((r) => setTimeout(r, 1000));
    if (sec % SWEEP_S === 0) {
      const n = steps.quiet?.collections ?? 0;
      const t = process.hrtime.bigint();
      upkeep(p, steps);
      upkeeps.push({ ms: Number(process.hrtime.bigint() - t) / 1e6, collected: (steps.quiet?.collections ?? 0) > n });
    }
    sample();
  }
  if (!rss.length) return undefined;
  return {
    seconds: rss.length,
    rssMb: rss[rss.length - 1],
    heapTotalMb: heapTotal[heapTotal.length - 1],
    rssMbMin: Math.min(...rss),
    youngMb: mb(youngGenerationBytes()),
    upkeeps,
  };
}

async function scale(cfg: ScaleConfig, tmp: string) {
  const m0 = memory();
  const made = makePipeline(tmp, 'scale');
  const p = made.pipeline;
  if (cfg.maxEntries) (p.procs as unknown as { max: number }).max = cfg.maxEntries;
  const synth = new Synth(bundle(tmp));
  // Compact handles of the running containers: init pid, namespace base, cgroup id.
  const inits = new Uint32Array(cfg.containers);
  const nsBases = new Uint32Array(cfg.containers);
  const cgroups = new Float64Array(cfg.containers);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let records = 0;
  let pending: Buffer[] = [];
  const flush = () => {
    if (!pending.length) return;
    const b = decodeBatch(Buffer.concat(pending));
    records += b.records.length;
    p.onBatch(b);
    pending = [];
  };
  for (let i = 0; i < cfg.containers; i++) {
    const c = synth.start(cfg.inside);
    inits[i] = c.init.tgid;
    nsBases[i] = c.init.ns.mnt;
    cgroups[i] = Number(c.cgroupId);
    pending.push(...c.records);
    if (pending.length >= 256) flush();
  }
  flush();
  const buildCpu = process.cpuUsage(c0);
  const buildS = Number(process.hrtime.bigint() - t0) / 1e9;
  const stats = p.stats();
  const m1 = memory();
  // PIPELINE_SNAPSHOT=file: a V8 heap snapshot of the built table (bench only, for finding what holds it).
  if (process.env.PIPELINE_SNAPSHOT) writeHeapSnapshot(process.env.PIPELINE_SNAPSHOT);

  // Steady state: a 10 ms drain of a mixed batch, as the addon delivers them. Each batch is made
  // just before its drain and dropped after it, so that the input does not count as the
  // pipeline's memory (held for the whole phase, it was 1 MB a second).
  const ticks = Math.round((cfg.lagSeconds * 1000) / 10);
  const pid = { next: 50_000_000 };
  const kt = { t: 10_000_000_000_000n };
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  let tickRecords = 0;
  const tickBatch = (k: number): Buffer => {
    const recs: Buffer[] = [];
    for (let j = 0; j < 10; j++) {
      const i = Math.floor(rnd() * cfg.containers);
      recs.push(...checkIn(pid, inits[i], nsBases[i], BigInt(cgroups[i]), kt)); // 1,000 health checks/s
    }
    for (let j = 0; j < 5; j++) recs.push(synth.hostExec()); // 500 host execs/s
    if (k % 5 === 0) recs.push(...synth.life(3)); // 20 short container lives/s
    tickRecords += recs.length;
    return Buffer.concat(recs);
  };
  const h = monitorEventLoopDelay({ resolution: 1 });
  const batchMs: number[] = [];
  const sweepMs: number[] = [];
  const { rss, heapTotal, sample } = memorySamples(); // once a second
  const sweepEvery = SWEEP_S * 100; // in 10 ms ticks
  const steps = benchUpkeep();
  const cs = process.cpuUsage();
  h.enable();
  await new Promise<void>((resolve) => {
    let k = 0;
    const timer = setInterval(() => {
      const input = tickBatch(k);
      const s = process.hrtime.bigint();
      p.onBatch(decodeBatch(input));
      batchMs.push(Number(process.hrtime.bigint() - s) / 1e6);
      if (k % sweepEvery === sweepEvery - 1 || (ticks < sweepEvery && k === Math.floor(ticks / 2))) {
        // Without the /proc prune: the synthetic pids are in no /proc (measured once, below).
        const s2 = process.hrtime.bigint();
        upkeep(p, steps);
        sweepMs.push(Number(process.hrtime.bigint() - s2) / 1e6);
      }
      if (k % 100 === 99) sample();
      if (++k >= ticks) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  h.disable();
  const steadyCpu = process.cpuUsage(cs);
  const lag = {
    p50Ms: h.percentile(50) / 1e6,
    p99Ms: h.percentile(99) / 1e6,
    maxMs: h.max / 1e6,
    meanMs: h.mean / 1e6,
    samples: h.count,
  };
  const idle = await idlePhase(p, cfg.idleSeconds ?? 0, steps);
  // run.ts also prunes processes gone from /proc (an existsSync each, a bounded step a sweep): one step.
  const procsBeforePrune = p.stats().processes;
  const s3 = process.hrtime.bigint();
  p.sweep(undefined, true);
  const pruneMs = Number(process.hrtime.bigint() - s3) / 1e6;
  const table = p.procs as unknown as { max: number; recent: { ring: unknown[] } };
  return {
    config: cfg,
    records,
    stats,
    tableBound: table.max,
    recentBound: table.recent.ring.length,
    buildS,
    buildCpuS: (buildCpu.user + buildCpu.system) / 1e6,
    memoryBefore: m0,
    memory: m1,
    steady: {
      ticks,
      records: tickRecords,
      recordsPerS: tickRecords / cfg.lagSeconds,
      batchMs: { p50: quantile(batchMs, 0.5), p99: quantile(batchMs, 0.99), max: Math.max(...batchMs) },
      /** CPU of the whole process over the phase (making the input included), per record. */
      cpuUsPerRecord: (steadyCpu.user + steadyCpu.system) / tickRecords,
      /** Once a second, without a forced collection: the memory of a sensor under this load. */
      rssMb: summarize(rss),
      heapTotalMb: summarize(heapTotal),
      samples: rss.length,
    },
    idle,
    /** Full collections the upkeep made while quiet (src/heap-tuning.ts QuietHeap). */
    quietCollections: steps.quiet?.collections ?? 0,
    /** The young generation's cap (src/young-gen.ts) at the end: null when V8 sized it alone. */
    youngCap: loadBinding().youngGenCap(),
    lag,
    sweepMs: quantile(sweepMs, 0.5),
    pruneMs,
    procsBeforePrune,
    eventsEmitted: made.events(),
  };
}

// ---------------------------------------------------------------- throughput and rules

interface RateConfig {
  reps: number;
  repMs: number;
}

interface Mix {
  name: string;
  description: string;
  buffers: Buffer[];
  /** The pipeline reads /proc for processes it was not told of, as `ctrwatch run`'s does. */
  lookupProcs?: boolean;
}

function mixes(tmp: string): Mix[] {
  const out: Mix[] = [];
  const base = bundle(tmp);
  const synth = new Synth(base);
  const recs: Buffer[] = [];
  for (let i = 0; i < 2000; i++) {
    recs.push(...synth.life(3));
    recs.push(synth.hostExec());
  }
  out.push({
    name: 'containers',
    description:
      "2,000 synthetic runc container lives (runc create exec, cgroup mkdir, fork into new namespaces, pivot_root, entry exec, 3 processes forked and exec'd inside, exits, cgroup rmdir) and a host exec each; batches of 256",
    buffers: batches(recs, 256),
  });
  // Pids above the kernel's limit: the shim above every runc is read from /proc and found gone.
  const priv = new Synth(privilegedBundle(tmp, base), 5_000_000);
  const privRecs: Buffer[] = [];
  for (let i = 0; i < 500; i++) privRecs.push(...priv.life(1));
  out.push({
    name: 'privileged',
    description:
      "500 synthetic lives of privileged runc containers (every capability, no masked or read-only paths: escape.privileged-container and escape.root-container at each start), 1 process forked and exec'd inside each; the pipeline reads /proc for processes it was not told of, as ctrwatch run's does, and finds their shim gone; batches of 256",
    buffers: batches(privRecs, 256),
    lookupProcs: true,
  });
  const file = join(OUT, 'batches.bin');
  if (existsSync(file)) {
    out.push({
      name: 'recorded',
      description:
        'bench/out/batches.bin: batches recorded from the kernel programs during a host storm and a storm in its own mount namespace (bench/decode.ts)',
      buffers: loadBatches(file),
    });
  }
  // PIPELINE_MIXES=a,b: only those mixes (a profile of one).
  const only = process.env.PIPELINE_MIXES?.split(',');
  return only ? out.filter((m) => only.includes(m.name)) : out;
}

function countRecords(bufs: Buffer[]): { records: number; kinds: Record<string, number> } {
  const kinds: Record<string, number> = {};
  let records = 0;
  for (const b of bufs) {
    for (const r of decodeBatch(b).records) {
      kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
      records++;
    }
  }
  return { records, kinds };
}

/** Repeats fn (one pass over `records` records) for at least repMs; CPU and wall ns per record. */
function timed(fn: () => void, records: number, repMs: number): { cpuNs: number; wallNs: number; passes: number } {
  let passes = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let ns = 0n;
  do {
    fn();
    passes++;
    ns = process.hrtime.bigint() - t0;
  } while (ns < BigInt(repMs) * 1_000_000n);
  const c = process.cpuUsage(c0);
  return { cpuNs: ((c.user + c.system) * 1000) / (passes * records), wallNs: Number(ns) / (passes * records), passes };
}

function throughput(cfg: RateConfig, tmp: string) {
  const out = [];
  for (const mix of mixes(tmp)) {
    const { records, kinds } = countRecords(mix.buffers);
    const made = makePipeline(tmp, `tp-${mix.name}`, mix.lookupProcs);
    const pass = () => {
      for (const b of mix.buffers) made.pipeline.onBatch(decodeBatch(b));
    };
    pass();
    const eventKinds = made.eventKinds();
    for (let i = 0; i < 4; i++) pass();
    const e0 = made.events();
    const b0 = made.bytes();
    const n0 = made.encodeNs();
    let passes = 0;
    let wallNs = 0;
    const rates: number[] = [];
    const wallRates: number[] = [];
    for (let r = 0; r < cfg.reps; r++) {
      const t = timed(pass, records, cfg.repMs);
      passes += t.passes;
      wallNs += t.wallNs * t.passes * records;
      rates.push(1e9 / t.cpuNs);
      wallRates.push(1e9 / t.wallNs);
    }
    const encodeShare = (made.encodeNs() - n0) / wallNs;
    const events = made.events() - e0;
    const eventsPerPass = events / passes;
    const rate = summarize(rates);
    out.push({
      name: mix.name,
      description: mix.description,
      records,
      batches: mix.buffers.length,
      kinds,
      eventsPerPass,
      /** The first pass's events by kind (detections by rule). */
      eventKinds,
      bytesPerPass: (made.bytes() - b0) / passes,
      encodeShare,
      encodeUsPerEvent: events ? (made.encodeNs() - n0) / events / 1000 : NaN,
      rates,
      rate,
      wallRate: summarize(wallRates),
      eventsPerS: summarize(rates.map((x) => (x * eventsPerPass) / records)),
    });
  }
  return out;
}

function rules(cfg: RateConfig, tmp: string) {
  const out = [];
  for (const mix of mixes(tmp)) {
    const decoded: DecodedBatch[] = mix.buffers.map((b) => decodeBatch(b));
    const records = decoded.reduce((s, b) => s + b.records.length, 0);
    const kinds: Record<string, number> = {};
    for (const b of decoded) for (const r of b.records) kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
    const a = makePipeline(tmp, `rules-a-${mix.name}`, mix.lookupProcs);
    const b = makePipeline(tmp, `rules-b-${mix.name}`, mix.lookupProcs);
    const c = makePipeline(tmp, `rules-c-${mix.name}`, mix.lookupProcs);
    withoutDetector(b.pipeline);
    rulesOnly(c.pipeline);
    const passOf = (m: Made) => () => {
      for (const d of decoded) m.pipeline.onBatch(d);
    };
    const runs = [a, b, c].map((m) => ({ m, pass: passOf(m), passes: 0, ns: [] as number[], e0: 0, n0: 0 }));
    for (let i = 0; i < 5; i++) for (const x of runs) x.pass();
    for (const x of runs) {
      x.e0 = x.m.events();
      x.n0 = x.m.encodeNs();
    }
    for (let r = 0; r < cfg.reps; r++) {
      // Side by side, the order rotating: the three share the machine's state of the moment.
      for (let k = 0; k < runs.length; k++) {
        const x = runs[(r + k) % runs.length];
        const t = timed(x.pass, records, cfg.repMs);
        x.passes += t.passes;
        x.ns.push(t.cpuNs);
      }
    }
    const [ra, rb, rc] = runs;
    const perPass = (x: (typeof runs)[number], v: number) => v / x.passes;
    out.push({
      name: mix.name,
      description: mix.description,
      records,
      kinds,
      eventsPerPassWith: perPass(ra, a.events() - ra.e0),
      eventsPerPassWithout: perPass(rb, b.events() - rb.e0),
      /** Of the added ns per record, how much is encoding (protobuf + JSON line) of the extra (detection) events (wall ns). */
      encodeAddedNs: (perPass(ra, a.encodeNs() - ra.n0) - perPass(rb, b.encodeNs() - rb.n0)) / records,
      withNs: summarize(ra.ns),
      withoutNs: summarize(rb.ns),
      addedNs: summarize(ra.ns.map((x, i) => x - rb.ns[i])),
      added: ra.ns.map((x, i) => x - rb.ns[i]),
      /** The rules run, what they find dropped: no detection event built, stamped or encoded. */
      rulesOnlyNs: summarize(rc.ns),
      /** rules only − without, per repetition: evaluating the rules. */
      evalNs: summarize(rc.ns.map((x, i) => x - rb.ns[i])),
      /** with − rules only, per repetition: building, stamping and encoding the detection events. */
      detectionEventsNs: summarize(ra.ns.map((x, i) => x - rc.ns[i])),
    });
  }
  return out;
}

async function main(): Promise<void> {
  const [mode, json] = process.argv.slice(2);
  // The collector as `ctrwatch run` tunes it (src/heap-tuning.ts): node started with
  // --allocation-site-pretenuring keeps V8's default (the GC A/B); PIPELINE_HEAP=small adds --small-heap's flag.
  tuneGc();
  if (process.env.PIPELINE_HEAP === 'small') tuneHeapForSize();
  // The old generation's growth limited as ctrwatch run does by default; PIPELINE_GROWTH=off:
  // V8's own factor, PIPELINE_GROWTH=N: N% (the A/B and the growth-off run).
  const growth = process.env.PIPELINE_GROWTH;
  if (growth !== 'off') limitHeapGrowth(growth ? Number(growth) : HEAP_GROWTH_DEFAULT);
  // The young generation capped as ctrwatch run does by default; PIPELINE_YOUNG=off: V8's own
  // sizing, PIPELINE_YOUNG=N: capped at N MiB (the A/Bs).
  const young = process.env.PIPELINE_YOUNG;
  if (young !== 'off') capYoungGeneration(young ? Number(young) : YOUNG_MB_DEFAULT);
  const cfg = JSON.parse(json ?? '{}') as Record<string, unknown>;
  const tmp = mkdtempSync(join(tmpdir(), 'ctrwatch-bench-pipeline-'));
  try {
    let result: unknown;
    if (mode === 'scale') result = await scale(cfg as unknown as ScaleConfig, tmp);
    else if (mode === 'throughput') result = throughput(cfg as unknown as RateConfig, tmp);
    else if (mode === 'rules') result = rules(cfg as unknown as RateConfig, tmp);
    else throw new Error(`unknown mode ${mode}`);
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`pipeline-proc: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
