// stdout and file sinks, the hub's fan-out, the wire form of collector.proto, metrics.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import pino from 'pino';
import * as protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEventSchema, toJsonLine, type EventInput } from '../../src/proto/schema';
import { compileEventCodec } from '../../src/proto/codec';
import { FileSink } from '../../src/sinks/local/file';
import { SinkHub } from '../../src/sinks/hub';
import { SensorMetrics } from '../../src/telemetry/metrics';
import { buildSensorStats, countersFrom, startStatsTicker } from '../../src/telemetry/stats-event';
import { StdoutSink } from '../../src/sinks/local/stdout';
import { pipeWriter } from '../../src/sinks/local/chunk-writer';
import { emptyStats, type Sink, type SinkEvent } from '../../src/sinks/types';
import { decodeAck, decodeBatch, encodeAck, encodeBatch } from '../../src/proto/wire';

const logger = pino({ level: 'silent' });
const schema = loadEventSchema();
const codec = compileEventCodec(schema);
const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrwatch-sink-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const head = (seq: number) => ({ seq, timeUnixNano: 1795923700581988444n, node: 'n', bootId: 'b' });
const event = (seq: number): EventInput => ({ ...head(seq), containerStarted: { container: { id: `c${seq}`, runtime: 'RUNC' } } });
/** containerExec: an event that is not urgent (types.ts urgentKind). */
const execEvent = (seq: number): EventInput => ({ ...head(seq), containerExec: { container: { id: `c${seq}`, runtime: 'RUNC' } } });
const lines = (...evs: EventInput[]) => evs.map((e) => `${toJsonLine(e)}\n`).join('');
const tick = () => new Promise((r) => setTimeout(r, 20));
/** The O_NONBLOCK bit of fd's open file description, from /proc/self/fdinfo. */
const nonBlocking = (fd: number) =>
  (parseInt(/flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8) & fs.constants.O_NONBLOCK) !== 0;

/** A sink that takes everything and never finishes anything. */
class StuckSink implements Sink {
  readonly name = 'stuck';
  offered = 0;
  offer(): void {
    this.offered++;
  }
  stats() {
    return emptyStats(this.name);
  }
  close() {
    return Promise.resolve();
  }
}

describe('stdout sink', () => {
  it('writes toJsonLine lines, a batch a write', async () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (d: Buffer) => chunks.push(d.toString()));
    const hub = new SinkHub({ logger, codec, instanceId: 'i', sinks: [new StdoutSink({ logger, codec, out })] });
    for (let i = 1; i <= 3; i++) hub.publish(execEvent(i));
    await hub.close();
    expect(chunks.join('')).toBe(lines(execEvent(1), execEvent(2), execEvent(3)));
    expect(chunks.length).toBe(1);
  });

  it('writes a container start at once with what was queued before it; the rest of the turn waits for one more write', async () => {
    const writes: string[] = [];
    const out = new Writable({
      write: (c: Buffer, _e, cb) => {
        writes.push(c.toString());
        cb();
      },
    });
    const hub = new SinkHub({ logger, codec, instanceId: 'i', sinks: [new StdoutSink({ logger, codec, out })] });
    hub.publish(execEvent(1));
    expect(writes).toEqual([]);
    hub.publish(event(2)); // containerStarted: urgent
    expect(writes).toEqual([lines(execEvent(1), event(2))]);
    hub.publish(event(3)); // a write is under way: this one waits, with the rest
    hub.publish(execEvent(4));
    expect(writes.length).toBe(1);
    await tick();
    expect(writes).toEqual([lines(execEvent(1), event(2)), lines(event(3), execEvent(4))]);
    await hub.close();
  });

  it('on EPIPE closes for good, counts the rest as dropped, tells the caller once', async () => {
    let closedCalls = 0;
    const out = new Writable({ write: (_c, _e, cb) => cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })) });
    const sink = new StdoutSink({ logger, codec, out, onClosed: () => closedCalls++ });
    const hub = new SinkHub({ logger, codec, instanceId: 'i', sinks: [sink] });
    hub.publish(event(1));
    await tick();
    hub.publish(event(2));
    await tick();
    expect(closedCalls).toBe(1);
    expect(sink.stats().dropped).toEqual({ closed: { record: 2 } });
    await hub.close();
  });
});

describe('urgent events', () => {
  it('by kind: starts, ends and detections are urgent, execs and stats are not; the sensor startup report says none is', () => {
    const seen: SinkEvent[] = [];
    const sink: Sink = { name: 'rec', offer: (e) => void seen.push(e), stats: () => emptyStats('rec'), close: () => Promise.resolve() };
    const hub = new SinkHub({ logger, codec, instanceId: 'i', sinks: [sink] });
    hub.publish(event(1));
    hub.publish(execEvent(2));
    hub.publish({ ...event(3), containerStarted: undefined, detection: { ruleId: 'r', message: 'm' } });
    hub.publish(event(4), false);
    expect(seen.map((e) => [Number(e.seq), e.urgent])).toEqual([
      [1, true],
      [2, false],
      [3, true],
      [4, false],
    ]);
  });
});

describe('stdout sink on a pipe', () => {
  it('writes each container start before publish() returns while the pipe has room; other events wait for the turn to end', async () => {
    const fifo = path.join(tmp(), 'p');
    execFileSync('mkfifo', [fifo]);
    const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const wfd = fs.openSync(fifo, fs.constants.O_WRONLY);
    const buf = Buffer.alloc(1 << 16);
    const read = () => {
      try {
        return buf.subarray(0, fs.readSync(rfd, buf, 0, buf.length, null)).toString();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return '';
        throw err;
      }
    };
    const hub = new SinkHub({ logger, codec, instanceId: 'i', sinks: [new StdoutSink({ logger, codec, out: wfd })] });
    try {
      hub.publish(execEvent(1));
      expect(read()).toBe('');
      hub.publish(event(2));
      expect(read()).toBe(lines(execEvent(1), event(2)));
      hub.publish(event(3)); // the last write is done: this one goes at once too
      expect(read()).toBe(lines(event(3)));
      hub.publish(execEvent(4));
      expect(read()).toBe('');
      await tick();
      expect(read()).toBe(lines(execEvent(4)));
      await hub.close();
    } finally {
      fs.closeSync(wfd);
      fs.closeSync(rfd);
    }
  });
});

describe('pipeWriter', () => {
  it('writes from the caller while the pipe has room, waits for the reader when it is full; bytes in order, fd left blocking', async () => {
    const fifo = path.join(tmp(), 'p');
    execFileSync('mkfifo', [fifo]);
    const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const wfd = fs.openSync(fifo, fs.constants.O_WRONLY);
    const w = pipeWriter(wfd)!;
    try {
      expect(w).toBeDefined();
      let small: unknown = 'pending';
      w.write(Buffer.from('abc'), (err) => (small = err));
      expect(small).toBeNull(); // written before write() returned: no thread hand-off
      const big = Buffer.alloc(1 << 20, 0).map((_, i) => i % 251);
      let bigDone: unknown = 'pending';
      w.write(big, (err) => (bigDone = err));
      expect(bigDone).toBe('pending'); // more than the pipe holds: the rest waits for the reader
      expect(nonBlocking(wfd)).toBe(false);
      const got: Buffer[] = [];
      let n = 0;
      const buf = Buffer.alloc(1 << 16);
      for (const end = Date.now() + 10_000; (n < 3 + big.length || bigDone === 'pending') && Date.now() < end;) {
        try {
          const k = fs.readSync(rfd, buf, 0, buf.length, null);
          got.push(Buffer.from(buf.subarray(0, k)));
          n += k;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      expect(bigDone).toBeNull();
      expect(Buffer.concat(got).equals(Buffer.concat([Buffer.from('abc'), big]))).toBe(true);
    } finally {
      w?.close();
      fs.closeSync(wfd);
      fs.closeSync(rfd);
    }
  });

  it('is not used for a regular file (a reopened file would write from offset 0)', () => {
    const fd = fs.openSync(path.join(tmp(), 'f'), 'w');
    try {
      expect(pipeWriter(fd)).toBeUndefined();
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('file sink', () => {
  it('writes length-delimited Events that protobufjs reads back, rotating by size', async () => {
    const dir = tmp();
    const p = path.join(dir, 'events.pb');
    const sink = new FileSink({ logger, path: p, maxBytes: 150, keep: 2, batchEvents: 2 });
    const hub = new SinkHub({ logger, codec, instanceId: 'i', sinks: [sink] });
    for (let i = 1; i <= 20; i++) hub.publish(event(i));
    await hub.close();
    const files = fs.readdirSync(dir).sort();
    expect(files).toEqual(['events.pb', 'events.pb.1', 'events.pb.2']);
    const seqs: number[] = [];
    for (const f of ['events.pb.2', 'events.pb.1', 'events.pb']) {
      const r = protobuf.Reader.create(fs.readFileSync(path.join(dir, f)));
      while (r.pos < r.len) seqs.push(Number((schema.decodeEvent(r.bytes()) as { seq: string }).seq));
      expect(fs.statSync(path.join(dir, f)).size).toBeLessThanOrEqual(150);
    }
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => 21 - seqs.length + i));
    expect(sink.stats().delivered).toBe(20);
  });
});

describe('hub', () => {
  it('a stuck sink blocks neither the caller nor the other sinks; bad events are counted', async () => {
    const stuck = new StuckSink();
    const out = new PassThrough();
    let lines = 0;
    out.on('data', (d: Buffer) => (lines += d.toString().split('\n').length - 1));
    const hub = new SinkHub({ logger, codec, instanceId: 'i', sinks: [stuck, new StdoutSink({ logger, codec, out })] });
    const t0 = process.hrtime.bigint();
    for (let i = 1; i <= 5000; i++) hub.publish(event(i));
    const perEventUs = Number(process.hrtime.bigint() - t0) / 5000 / 1000;
    hub.publish({ seq: 5001, bogus: 1 } as never);
    await hub.close();
    expect(stuck.offered).toBe(5000);
    expect(lines).toBe(5000);
    expect(hub.stats().encodeErrors).toBe(1);
    expect(perEventUs).toBeLessThan(500);
  });
});

describe('collector wire', () => {
  it('EventBatch and Ack as written by hand read back with protobufjs and collector.proto, and the other way', () => {
    const root = new protobuf.Root();
    root.resolvePath = (_o, target) => path.join(__dirname, '../../proto', target.replace(/^.*proto\//, ''));
    root.loadSync('ctrwatch/v1/collector.proto');
    const Batch = root.lookupType('ctrwatch.v1.EventBatch');
    const Ack = root.lookupType('ctrwatch.v1.Ack');
    const evs = [codec.encode(event(1)), codec.encode(event(2))];
    const b = encodeBatch({ node: 'n', bootId: 'b', instanceId: 'i', floorSeq: 1n, batchId: 3n }, evs);
    const obj = Batch.toObject(Batch.decode(b), { longs: String }) as { events: { seq: string }[]; floorSeq: string; instanceId: string };
    expect(obj).toMatchObject({ node: 'n', bootId: 'b', instanceId: 'i', floorSeq: '1', batchId: '3' });
    expect(obj.events.map((e) => e.seq)).toEqual(['1', '2']);
    const back = decodeBatch(
      Buffer.from(
        Batch.encode(
          Batch.fromObject({ node: 'n', instanceId: 'x', batchId: 9, events: [event(7)].map((e) => schema.decodeEvent(codec.encode(e))) }),
        ).finish(),
      ),
    );
    expect(back.header).toMatchObject({ node: 'n', instanceId: 'x', batchId: 9n });
    expect(codec.decode(back.events[0]!)).toEqual(schema.decodeEvent(codec.encode(event(7))));
    const a = encodeAck({ instanceId: 'i', seq: 2n ** 63n, batchId: 3n, written: 2, duplicates: 1 });
    expect(Ack.toObject(Ack.decode(a), { longs: String })).toEqual({
      instanceId: 'i',
      seq: String(2n ** 63n),
      batchId: '3',
      written: 2,
      duplicates: 1,
    });
    expect(decodeAck(a)).toEqual({ instanceId: 'i', seq: 2n ** 63n, batchId: 3n, written: 2, duplicates: 1 });
    expect(() => decodeAck(Buffer.from([0xff, 0xff]))).toThrow(/Ack/);
  });
});

describe('sensorStats and metrics', () => {
  const counters = {
    eventsEmitted: 10,
    recordsDecoded: 100n,
    decodeErrors: 2,
    ringBufferDrops: 3,
    recordsByType: { exec: 60, fork: 40 },
    kernel: { dropped_exec: 3 },
    containersTracked: 4,
  };

  it('builds a sensorStats event that fits the schema, with the sinks’ counters', async () => {
    const hub = new SinkHub({ logger, codec, instanceId: 'i', sinks: [new StdoutSink({ logger, codec, out: new PassThrough() })] });
    const emitted: EventInput[] = [];
    const ticker = startStatsTicker({ intervalMs: 30, read: () => counters, hub, emit: (e) => emitted.push(e) });
    await new Promise((r) => setTimeout(r, 100));
    ticker.stop();
    expect(emitted.length).toBeGreaterThanOrEqual(2);
    const line = JSON.parse(toJsonLine({ seq: 1, ...emitted[0]! })) as { sensorStats: Record<string, unknown> };
    expect(line.sensorStats).toMatchObject({ eventsEmitted: '10', ringBufferDrops: '3', recordsDecoded: '100', containersTracked: '4' });
    expect(line.sensorStats.counters).toMatchObject({
      decode_errors: '2',
      'records.exec': '60',
      'kernel.dropped_exec': '3',
      'sink.stdout.delivered': '0',
    });
    expect(buildSensorStats({}).sinkDrops).toBe(0n);
    expect(
      countersFrom(
        { kernel: { sent_exec: 5, dropped_exec: 1 }, records: 5, decodeErrors: 0, dropped: 1 },
        { events: 3, detections: 1, processes: 9, containers: 2 },
      ),
    ).toMatchObject({
      recordsByType: { exec: 5 },
      ringBufferDrops: 1,
      eventsEmitted: 3,
      containersTracked: 2,
    });
    await hub.close();
  });

  it('serves Prometheus text with records by type, kernel drops, sink depth and latency, process metrics', async () => {
    const out = new PassThrough();
    out.resume();
    const hub = new SinkHub({ logger, codec, instanceId: 'i', sinks: [new StdoutSink({ logger, codec, out })] });
    const m = new SensorMetrics({ read: () => counters, hub });
    hub.publish(event(1));
    await tick();
    const srv = await m.listen('127.0.0.1:0', logger);
    const text = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text();
    expect((await fetch(`http://127.0.0.1:${srv.port}/`)).status).toBe(404);
    await srv.close();
    await hub.close();
    for (const want of [
      'ctrwatch_records_total{type="exec"} 60',
      'ctrwatch_kernel_drops_total 3',
      'ctrwatch_decode_errors_total 2',
      'ctrwatch_sink_queue_events{sink="stdout"} 0',
      'ctrwatch_sink_delivered_total{sink="stdout"} 1',
      'ctrwatch_sink_latency_seconds_count{sink="stdout"} 1',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
    ]) {
      expect(text).toContain(want);
    }
  });
});
