/**
 * Delivery bench (not a test): `node dist/bench/delivery.js` after `make build` (no root).
 * Prints figures and writes bench/out/delivery.json. Parts, each in fresh processes:
 *   codec     encode/JSON rates of the sink codec beside schema.encodeEvent/toJsonLine
 *   sinks     end-to-end events/s, side by side: stdout (to /dev/null), file:, grpc:// to a
 *             loopback collector (every event encoded, spooled, shipped, written, fsynced, acked)
 *   ceilings  each side of grpc alone: the sensor against a collector that acks at once, the
 *             collector fed pre-encoded batches (on 2 cores, end to end shares them)
 *   outage    a sensor at RATE events/s, the collector SIGKILLed after WARM s for OUTAGE s, then
 *             back; the sensor's RSS sampled every second; then every event checked exactly once
 * Environment (defaults in brackets):
 *   DELIVERY_ONLY [codec,sinks,ceilings,outage]   DELIVERY_EVENTS [300000]   DELIVERY_RATE [1000]
 *   DELIVERY_WARM_S [20]   DELIVERY_OUTAGE_S [120; the issue's figure is 600]   DELIVERY_AFTER_S [30]
 *   DELIVERY_JSON [bench/out/delivery.json]   where the results go (run.js's `ship` part sets it)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { runCollector } from '../src/collect/collector';
import { loadEventSchema } from '../src/proto/schema';
import { compileEventCodec } from '../src/proto/codec';
import { SHIP_PATH } from '../src/proto/wire';
import { startSinks } from '../src/sinks/open';
import { decodeAck, decodeBatch, encodeAck, encodeBatch } from '../src/proto/wire';
import { syntheticEvent } from '../test/support/events';
import { killTracked, track } from '../test/support/children';

const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const log = (msg: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NODE = 'bench-node';
const BOOT = '3f1e2d4c-0000-4000-8000-000000000001';

// ---- child roles ------------------------------------------------------------------------------

interface SensorArgs {
  outputs: string[];
  spoolDir: string;
  count: number;
  /** Events a second; 0: as fast as the sinks take them. */
  rate: number;
  run: string;
}

async function sensorRole(a: SensorArgs): Promise<void> {
  const logger = pino({ level: 'warn' }, pino.destination({ fd: 2, sync: true }));
  const hub = await startSinks(a.outputs, {
    logger,
    node: NODE,
    bootId: BOOT,
    spoolDir: a.spoolDir,
    spoolMaxBytes: 2 * 2 ** 30,
    stdout: fs.openSync('/dev/null', 'w'),
    tuning: { closeTimeoutMs: 600_000, backoffMaxMs: 2000, queueMaxEvents: 50_000, maxInflight: env('DELIVERY_INFLIGHT', 8) },
  });
  const cpu0 = process.cpuUsage();
  const report = (what: string) => {
    const s = hub.stats().sinks[0]!;
    const c = process.cpuUsage(cpu0);
    process.stdout.write(
      `${JSON.stringify({ what, t: Date.now(), offered: s.offered, delivered: s.delivered, spooled: s.spooledEvents, queued: s.queued, dropped: s.dropped, failures: s.failures, rss: process.memoryUsage().rss, heapMB: Math.round(process.memoryUsage().heapUsed / 2 ** 20), heapTotalMB: Math.round(process.memoryUsage().heapTotal / 2 ** 20), bufMB: Math.round(process.memoryUsage().arrayBuffers / 2 ** 20), cpuS: (c.user + c.system) / 1e6 })}\n`,
    );
  };
  const timer = setInterval(() => report('progress'), 1000);
  report('start');
  let seq = 0;
  const t0 = Date.now();
  while (seq < a.count) {
    if (a.rate) {
      const due = Math.min(a.count, Math.floor(((Date.now() - t0) / 1000) * a.rate));
      while (seq < due) hub.publish(syntheticEvent(++seq, a.run, NODE, BOOT));
      await sleep(10);
    } else {
      // As fast as the sink drains its memory queue: the bench holds back, the hub never does.
      if (hub.stats().sinks[0]!.queued > 20_000) await sleep(1);
      else for (let i = 0; i < 1000 && seq < a.count; i++) hub.publish(syntheticEvent(++seq, a.run, NODE, BOOT));
      await new Promise((r) => setImmediate(r));
    }
  }
  report('published');
  await hub.close();
  clearInterval(timer);
  report('closed');
}

/** A collector that acknowledges every batch at once and writes nothing: the sensor side's ceiling. */
async function ackOnlyRole(): Promise<void> {
  const server = new grpc.Server();
  const id = (b: Buffer) => b;
  server.addService(
    {
      Ship: {
        path: SHIP_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
      },
    },
    {
      Ship: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.sendMetadata(new grpc.Metadata());
        call.on('data', (b: Buffer) => {
          const { header, events } = decodeBatch(b);
          call.write(
            encodeAck({
              instanceId: header.instanceId,
              seq: header.floorSeq + BigInt(events.length) - 1n,
              batchId: header.batchId,
              written: events.length,
              duplicates: 0,
            }),
          );
        });
      },
    },
  );
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  process.stdout.write(`${JSON.stringify({ listening: `127.0.0.1:${port}`, port })}\n`);
  process.once('SIGTERM', () => process.exit(0));
}

/** Pre-encoded batches, 8 in flight, as fast as the collector acknowledges: its ceiling. */
async function blastRole(a: { port: number; count: number }): Promise<void> {
  const codec = compileEventCodec(loadEventSchema());
  const evs = Array.from({ length: a.count }, (_, i) => codec.encode(syntheticEvent(i + 1, 'x', NODE, BOOT)));
  const client = new grpc.Client(`127.0.0.1:${a.port}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(SHIP_PATH, (b: Buffer) => b, decodeAck, new grpc.Metadata());
  let sent = 0;
  let acked = 0;
  let batchId = 0n;
  const t0 = Date.now();
  const pump = () => {
    while (sent < a.count && sent - acked < 8000) {
      const part = evs.slice(sent, sent + 1000);
      call.write(
        encodeBatch({ node: NODE, bootId: BOOT, instanceId: `blast-${process.pid}`, floorSeq: BigInt(sent + 1), batchId: ++batchId }, part),
      );
      sent += part.length;
    }
  };
  await new Promise<void>((resolve, reject) => {
    call.on('data', (ack: { written: number; duplicates: number }) => {
      acked += ack.written + ack.duplicates;
      if (acked >= a.count) resolve();
      else pump();
    });
    call.on('error', reject);
    pump();
  });
  process.stdout.write(`${JSON.stringify({ what: 'done', eventsPerS: Math.round(a.count / ((Date.now() - t0) / 1000)) })}\n`);
  call.end();
  client.close();
}

async function ceilings(n: number): Promise<Record<string, unknown>> {
  const ack = child('ackonly', {});
  const port = (await ack.wait((l) => 'listening' in l, 30_000)).port as number;
  const sensor = child('sensor', { outputs: [`grpc://127.0.0.1:${port}`], spoolDir: tmp('spool'), count: n, rate: 0, run: 'c' });
  const start = (await sensor.wait((l) => l.what === 'start', 30_000)).t as number;
  const closed = await sensor.wait((l) => l.what === 'closed', 600_000);
  ack.proc.kill('SIGTERM');
  await Promise.all([ack.exited, sensor.exited]);
  const sensorSide = Math.round(n / (((closed.t as number) - start) / 1000));
  const outDir = tmp('out');
  const col = child('collector', { listen: '127.0.0.1:0', outDir });
  const cport = (await col.wait((l) => 'listening' in l, 30_000)).port as number;
  const blast = child('blast', { port: cport, count: n });
  const done = await blast.wait((l) => l.what === 'done', 600_000);
  col.proc.kill('SIGTERM');
  await Promise.all([col.exited, blast.exited]);
  fs.rmSync(outDir, { recursive: true, force: true });
  const res = { sensorSideEventsPerS: sensorSide, sensorCpuS: closed.cpuS, collectorSideEventsPerS: done.eventsPerS };
  log(
    `ceilings: sensor side (encode, spool, ship; a collector that acks at once) ${sensorSide} events/s; collector side (decode, dedupe, JSON, fsync; pre-encoded batches) ${String(done.eventsPerS)} events/s`,
  );
  return res;
}

async function collectorRole(a: { listen: string; outDir: string }): Promise<void> {
  const logger = pino({ level: 'warn' }, pino.destination({ fd: 2, sync: true }));
  const c = await runCollector({ ...a, logger });
  process.stdout.write(`${JSON.stringify({ listening: c.address, port: c.port })}\n`);
  setInterval(() => process.stdout.write(`${JSON.stringify({ stats: c.stats(), rss: process.memoryUsage().rss, t: Date.now() })}\n`), 1000);
  process.once('SIGTERM', () => {
    setTimeout(() => process.exit(3), 8000).unref();
    void c.close().then(() => process.exit(0));
  });
}

// ---- the orchestrator ---------------------------------------------------------------------------

interface Child {
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  wait(pred: (l: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown>>;
  exited: Promise<void>;
}

function child(role: string, args: unknown): Child {
  const proc = spawn(process.execPath, [__filename, '--role', role, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
  track(proc);
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const wait = async (pred: (l: Record<string, unknown>) => boolean, ms: number) => {
    const end = Date.now() + ms;
    for (;;) {
      const l = lines.find(pred);
      if (l) return l;
      if (proc.exitCode !== null || Date.now() > end)
        throw new Error(`${role}: no expected line (exit ${proc.exitCode}); last ${JSON.stringify(lines.at(-1))}`);
      await sleep(20);
    }
  };
  return { proc, lines, wait, exited };
}

const tmps: string[] = [];

function tmp(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `ctrwatch-bench-${prefix}-`));
  tmps.push(d);
  return d;
}

/** Lines of the collector's output for NODE: count and distinct (run, seq). */
function outputCounts(outDir: string): { lines: number; distinct: number } {
  const dir = path.join(outDir, NODE);
  const seen = new Set<string>();
  let lines = 0;
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.jsonl'))) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      // Event lines only: the node's log (e.g. sensorSilent) shares the directory.
      const m = /"seq":"?(\d+)/.exec(line);
      if (!m) continue;
      lines++;
      seen.add(m[1]!);
    }
  }
  return { lines, distinct: seen.size };
}

function codecPart(): Record<string, number> {
  const schema = loadEventSchema();
  const codec = compileEventCodec(schema);
  const evs = Array.from({ length: 2000 }, (_, i) => syntheticEvent(i + 1, 'c', NODE, BOOT));
  const rate = (ms: number, f: (i: number) => void) => {
    for (let i = 0; i < 2000; i++) f(i);
    let n = 0;
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(ms) * 1_000_000n;
    while (process.hrtime.bigint() < end) for (let i = 0; i < 200; i++, n++) f(n % 2000);
    return Math.round(n / (Number(process.hrtime.bigint() - t0) / 1e9));
  };
  const bytes = evs.map((e) => codec.encode(e));
  const out = {
    codecEncodePerS: rate(2000, (i) => codec.encode(evs[i]!)),
    schemaEncodePerS: rate(2000, (i) => schema.encodeEvent(evs[i]!)),
    codecJsonLinePerS: rate(2000, (i) => codec.jsonLine(bytes[i]!)),
    schemaToJsonLinePerS: rate(2000, (i) => schema.toJsonLine(evs[i]!)),
    meanEventBytes: Math.round(bytes.reduce((a, b) => a + b.length, 0) / bytes.length),
  };
  log(
    `codec: encode ${out.codecEncodePerS}/s (schema.encodeEvent ${out.schemaEncodePerS}/s), JSON line ${out.codecJsonLinePerS}/s (schema.toJsonLine ${out.schemaToJsonLinePerS}/s), ${out.meanEventBytes} B an event`,
  );
  return out;
}

async function sinkRun(
  name: string,
  outputs: (port: number) => string[],
  count: number,
  withCollector: boolean,
): Promise<Record<string, unknown>> {
  let col: Child | undefined;
  let port = 0;
  const outDir = tmp('out');
  if (withCollector) {
    col = child('collector', { listen: '127.0.0.1:0', outDir });
    port = (await col.wait((l) => 'listening' in l, 30_000)).port as number;
  }
  const sensor = child('sensor', { outputs: outputs(port), spoolDir: tmp('spool'), count, rate: 0, run: 'b' });
  const start = (await sensor.wait((l) => l.what === 'start', 30_000)).t as number;
  const closed = await sensor.wait((l) => l.what === 'closed', 900_000);
  const published = sensor.lines.find((l) => l.what === 'published')!;
  const secs = ((closed.t as number) - start) / 1000;
  const res: Record<string, unknown> = {
    sink: name,
    events: count,
    seconds: secs,
    eventsPerS: Math.round(count / secs),
    publishPerS: Math.round(count / (((published.t as number) - start) / 1000)),
    sensorCpuS: closed.cpuS,
    sensorMaxRssMB: Math.round(Math.max(...sensor.lines.map((l) => l.rss as number)) / 2 ** 20),
    delivered: closed.delivered,
    dropped: closed.dropped,
  };
  if (col) {
    const st = col.lines.filter((l) => 'stats' in l).at(-1)?.stats as { written: number; duplicates: number; batches: number } | undefined;
    col.proc.kill('SIGTERM');
    await col.exited;
    res.collector = {
      ...st,
      ...outputCounts(outDir),
      maxRssMB: Math.round(Math.max(...col.lines.filter((l) => l.rss).map((l) => l.rss as number)) / 2 ** 20),
    };
  }
  await sensor.exited;
  fs.rmSync(outDir, { recursive: true, force: true });
  log(
    `${name}: ${res.eventsPerS} events/s end to end (${count} in ${secs.toFixed(1)} s, sensor CPU ${Number(closed.cpuS).toFixed(1)} s, max RSS ${res.sensorMaxRssMB} MB)`,
  );
  return res;
}

async function outagePart(): Promise<Record<string, unknown>> {
  const rate = env('DELIVERY_RATE', 1000);
  const warm = env('DELIVERY_WARM_S', 20);
  const outage = env('DELIVERY_OUTAGE_S', 120);
  const after = env('DELIVERY_AFTER_S', 30);
  const count = rate * (warm + outage + after);
  const outDir = tmp('out');
  const spool = tmp('spool');
  let col = child('collector', { listen: '127.0.0.1:0', outDir });
  const port = (await col.wait((l) => 'listening' in l, 30_000)).port as number;
  const sensor = child('sensor', { outputs: [`grpc://127.0.0.1:${port}`], spoolDir: spool, count, rate, run: 'o' });
  const t0 = (await sensor.wait((l) => l.what === 'start', 30_000)).t as number;
  log(`outage: ${rate} events/s; collector up ${warm} s, down ${outage} s, then up (${count} events)`);
  await sleep(warm * 1000);
  col.proc.kill('SIGKILL');
  await col.exited;
  const down = Date.now();
  const progress = setInterval(() => {
    const l = sensor.lines.at(-1)!;
    log(`  outage ${Math.round((Date.now() - down) / 1000)} s: spooled ${l.spooled}, RSS ${Math.round((l.rss as number) / 2 ** 20)} MB`);
  }, 30_000);
  await sleep(outage * 1000);
  clearInterval(progress);
  const up = Date.now();
  col = child('collector', { listen: `127.0.0.1:${port}`, outDir });
  await col.wait((l) => 'listening' in l, 30_000);
  const closed = await sensor.wait((l) => l.what === 'closed', (after + outage + 600) * 1000);
  const caughtUp = sensor.lines.find(
    (l) => (l.t as number) > up && l.spooled === 0 && (l.delivered as number) >= (l.offered as number) - rate,
  );
  col.proc.kill('SIGTERM');
  await col.exited;
  await sensor.exited;
  const mb = (ls: Record<string, unknown>[]) => {
    const r = ls.map((l) => (l.rss as number) / 2 ** 20);
    return r.length ? { minMB: Math.round(Math.min(...r)), maxMB: Math.round(Math.max(...r)), lastMB: Math.round(r.at(-1)!) } : {};
  };
  const prog = sensor.lines.filter((l) => l.what === 'progress');
  const res = {
    rate,
    warmS: warm,
    outageS: outage,
    events: count,
    rssBefore: mb(prog.filter((l) => (l.t as number) < down)),
    rssDuring: mb(prog.filter((l) => (l.t as number) >= down && (l.t as number) < up)),
    rssAfter: mb(prog.filter((l) => (l.t as number) >= up)),
    maxSpooled: Math.max(...prog.map((l) => l.spooled as number)),
    catchUpS: caughtUp ? ((caughtUp.t as number) - up) / 1000 : undefined,
    delivered: closed.delivered,
    dropped: closed.dropped,
    failures: closed.failures,
    output: outputCounts(outDir),
    totalS: ((closed.t as number) - t0) / 1000,
    /** [seconds from start, RSS MB, events spooled, heap used MB, heap total MB, buffers MB] every 10 s. */
    timeline: prog
      .filter((_, i) => i % 10 === 0)
      .map((l) => [
        Math.round(((l.t as number) - t0) / 1000),
        Math.round((l.rss as number) / 2 ** 20),
        l.spooled,
        l.heapMB,
        l.heapTotalMB,
        l.bufMB,
      ]),
  };
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.rmSync(spool, { recursive: true, force: true });
  log(
    `outage: sensor RSS before ${JSON.stringify(res.rssBefore)}, during ${JSON.stringify(res.rssDuring)}, after ${JSON.stringify(res.rssAfter)}; spooled up to ${res.maxSpooled}; caught up ${res.catchUpS} s after return; output ${res.output.lines} lines, ${res.output.distinct} distinct of ${count}`,
  );
  return res;
}

async function main(): Promise<void> {
  const only = (process.env.DELIVERY_ONLY ?? 'codec,sinks,ceilings,outage').split(',');
  const n = env('DELIVERY_EVENTS', 300_000);
  const report: Record<string, unknown> = {
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
    when: new Date().toISOString(),
  };
  if (only.includes('codec')) report.codec = codecPart();
  if (only.includes('sinks')) {
    report.sinks = [
      await sinkRun('stdout (/dev/null)', () => ['stdout'], n, false),
      await sinkRun('file', () => [`file:${path.join(tmp('file'), 'events.pb')}?max-mb=64`], n, false),
      await sinkRun('grpc loopback', (port) => [`grpc://127.0.0.1:${port}`], n, true),
    ];
  }
  if (only.includes('ceilings')) report.ceilings = await ceilings(n);
  if (only.includes('outage')) report.outage = await outagePart();
  for (const d of tmps) fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync(path.join(__dirname, '..', '..', 'bench', 'out'), { recursive: true });
  const file = process.env.DELIVERY_JSON ?? path.join(__dirname, '..', '..', 'bench', 'out', 'delivery.json');
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  log(`written ${file}`);
}

const roleAt = process.argv.indexOf('--role');
const stopChildren = () => {
  killTracked();
};
process.on('exit', stopChildren);
process.on('SIGINT', () => (stopChildren(), process.exit(130)));
if (roleAt >= 0) {
  const args = JSON.parse(process.argv[roleAt + 2]!) as never;
  const role = process.argv[roleAt + 1];
  const run =
    role === 'sensor' ? sensorRole(args) : role === 'ackonly' ? ackOnlyRole() : role === 'blast' ? blastRole(args) : collectorRole(args);
  run.catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
} else {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    stopChildren();
    process.exit(1);
  });
}
