// grpc://, grpcs:// — a long-lived Collector.Ship stream. Events go from offer() into a bounded
// memory queue, from there to the spool on disk (every event, see spool.ts), and from the spool
// to the collector in batches, at most `maxInflight` unacknowledged at a time. When the stream
// breaks (collector away, reset, garbage, no ack in time) the in-flight batches are given up,
// the spool rewinds to the last acknowledged seq, and after a backoff with jitter a new stream
// sends again from there. The collector drops what it already has.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Backoff } from '../spool/backoff';
import { ClassQueue } from '../class-queue';
import { Spool, type FsyncPolicy, type SpoolBatch, type SpoolIdentity } from '../spool/spool';
import { countDrop, emptyStats, type Sink, type SinkEvent, type SinkStats, spooledStats } from '../types';
import { decodeAck, encodeBatch, SHIP_PATH, type Ack } from '../../proto/wire';

export interface GrpcSpec {
  kind: 'grpc';
  url: string;
  host: string;
  port: number;
  tls: boolean;
  batchEvents: number;
  compress: boolean;
  fsync: FsyncPolicy;
}

export interface GrpcSinkOptions {
  logger: Logger;
  spec: GrpcSpec;
  identity: SpoolIdentity;
  /** This sink's spool directory. */
  spoolDir: string;
  spoolMaxBytes: number;
  credentials: grpc.ChannelCredentials;
  token?: string;
  queueMaxEvents?: number;
  queueMaxBytes?: number;
  batchMaxBytes?: number;
  maxInflight?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A stream with batches in flight and no ack for this long is given up. */
  ackTimeoutMs?: number;
  /** How long close() keeps sending; what is left stays in the spool for the next run. */
  closeTimeoutMs?: number;
  segmentBytes?: number;
}

interface InFlight {
  batchId: bigint;
  batch: SpoolBatch;
}

type Call = grpc.ClientDuplexStream<Buffer, Ack>;

export class GrpcSink implements Sink {
  readonly name: string;
  onDelivered?: (seconds: number, events: number) => void;
  private readonly log: Logger;
  private readonly counters: SinkStats;
  private readonly queue: ClassQueue;
  private readonly client: grpc.Client;
  private readonly backoff: Backoff;
  private call?: Call;
  private connected = false;
  private inflight: InFlight[] = [];
  private batchId = 0n;
  private lastProgress = Date.now();
  private flushing = false;
  private pumping = false;
  private closing?: Promise<void>;
  private stopped = false;
  private reconnectTimer?: NodeJS.Timeout;
  private watchdog: NodeJS.Timeout;
  private lastWarn = 0;
  private idle: (() => void)[] = [];

  private constructor(private readonly o: GrpcSinkOptions, private readonly spool: Spool) {
    this.name = o.spec.url;
    this.log = o.logger.child({ component: 'sink', sink: this.name });
    this.counters = emptyStats(this.name);
    this.queue = new ClassQueue({ maxEvents: o.queueMaxEvents ?? 50_000, maxBytes: o.queueMaxBytes ?? 32 << 20 });
    this.backoff = new Backoff({ initialMs: o.backoffInitialMs ?? 250, maxMs: o.backoffMaxMs ?? 30_000 });
    const options: grpc.ChannelOptions = {
      'grpc.max_send_message_length': 8 << 20,
      'grpc.max_receive_message_length': 1 << 20,
      'grpc.initial_reconnect_backoff_ms': o.backoffInitialMs ?? 250,
      'grpc.max_reconnect_backoff_ms': o.backoffMaxMs ?? 30_000,
    };
    if (o.spec.compress) options['grpc.default_compression_algorithm'] = 2; // gzip
    this.client = new grpc.Client(`${o.spec.host.includes(':') ? `[${o.spec.host}]` : o.spec.host}:${o.spec.port}`, o.credentials, options);
    this.watchdog = setInterval(() => this.checkAcks(), Math.min(1000, o.ackTimeoutMs ?? 20_000));
    this.watchdog.unref();
  }

  static async create(o: GrpcSinkOptions): Promise<GrpcSink> {
    const counters: { sink?: GrpcSink } = {};
    const spool = await Spool.open({
      dir: o.spoolDir,
      identity: o.identity,
      maxBytes: o.spoolMaxBytes,
      fsync: o.spec.fsync,
      segmentBytes: o.segmentBytes,
      logger: o.logger.child({ sink: o.spec.url }),
      onDrop: (reason, cls, n) => counters.sink && countDrop(counters.sink.counters, reason, cls, n),
    });
    const sink = new GrpcSink(o, spool);
    counters.sink = sink;
    sink.connect();
    return sink;
  }

  offer(ev: SinkEvent): void {
    this.counters.offered++;
    if (this.closing) return countDrop(this.counters, 'closed', ev.cls);
    for (const lost of this.queue.push(ev)) countDrop(this.counters, 'queue_full', lost.cls);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flushToSpool());
    }
  }

  /** Memory queue → spool, a batch at a time; then wake the sender. */
  private async flushToSpool(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length) {
        await this.spool.append(this.queue.drain(8192, 8 << 20));
        void this.pump();
      }
    } catch (err) {
      this.log.error({ err }, 'spool append failed');
    } finally {
      this.flushing = false;
    }
  }

  // ---- the stream ---------------------------------------------------------------------------

  private connect(): void {
    if (this.stopped || this.call) return;
    const md = new grpc.Metadata();
    if (this.o.token) md.set('authorization', `Bearer ${this.o.token}`);
    const call = this.client.makeBidiStreamRequest(SHIP_PATH, (b: Buffer) => b, decodeAck, md);
    this.call = call;
    this.connected = false;
    this.lastProgress = Date.now();
    call.on('metadata', () => {
      if (this.call !== call) return;
      this.connected = true;
      this.spool.setLive(true);
      this.log.info('connected to the collector');
      void this.pump();
    });
    call.on('data', (ack: Ack) => this.onAck(call, ack));
    call.on('error', (err: grpc.ServiceError) => this.broken(call, err));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) this.fail(call, 'ended', 'the collector ended the stream');
    });
    void this.pump();
  }

  private onAck(call: Call, ack: Ack): void {
    if (this.call !== call) return;
    const head = this.inflight[0];
    if (!head || ack.batchId !== head.batchId || ack.instanceId !== head.batch.id.instanceId || ack.seq < head.batch.lastSeq) {
      this.fail(call, 'bad_ack', `ack for batch ${ack.batchId} (${ack.instanceId} seq ${ack.seq}) does not match batch ${head?.batchId ?? 'none'} in flight`);
      return;
    }
    this.inflight.shift();
    this.connected = true;
    this.backoff.reset();
    this.lastProgress = Date.now();
    this.spool.delivered(head.batch, ack.seq);
    const n = head.batch.records.length;
    this.counters.delivered += n;
    const secs = (Date.now() - head.batch.records[0]!.offeredMs) / 1000;
    this.counters.lastLatencySeconds = secs;
    this.onDelivered?.(secs, n);
    if (ack.duplicates) this.counters.failures.resent_duplicates = (this.counters.failures.resent_duplicates ?? 0) + ack.duplicates;
    void this.pump();
  }

  /** Give up a stream: count why, rewind the spool, reconnect after a backoff. */
  private fail(call: Call, reason: string, detail: string): void {
    if (this.call !== call) return;
    this.counters.failures[reason] = (this.counters.failures[reason] ?? 0) + 1;
    this.call = undefined;
    this.connected = false;
    this.spool.setLive(false);
    call.removeAllListeners('data');
    call.on('error', () => undefined);
    call.cancel();
    for (const f of this.inflight) this.spool.unacknowledged(f.batch);
    const lost = this.inflight.length;
    this.inflight = [];
    this.spool.rewind();
    if (this.stopped) return;
    const delay = this.backoff.next();
    const now = Date.now();
    if (now - this.lastWarn > 10_000 || this.backoff.attempts <= 1) {
      this.lastWarn = now;
      this.log.warn({ reason, detail, batchesInFlight: lost, retryMs: delay, spooled: this.spool.stats().events }, 'collector stream failed: spooling, will send again from the last ack');
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
  }

  private broken(call: Call, err: grpc.ServiceError): void {
    const name = grpc.status[err.code] ?? `code_${err.code}`;
    this.fail(call, name.toLowerCase(), err.details ?? err.message);
  }

  private checkAcks(): void {
    const call = this.call;
    if (call && this.inflight.length && Date.now() - this.lastProgress > (this.o.ackTimeoutMs ?? 20_000)) {
      this.fail(call, 'ack_timeout', `no ack for ${this.o.ackTimeoutMs ?? 20_000} ms`);
    }
  }

  /** Send spooled batches while the window has room. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const call = this.call;
        const window = this.connected ? (this.o.maxInflight ?? 8) : 1;
        if (!call || this.inflight.length >= window) break;
        const batch = await this.spool.next(this.o.spec.batchEvents, this.o.batchMaxBytes ?? 1 << 20);
        if (!batch) break;
        if (this.call !== call) {
          // The stream broke while reading: the spool has rewound, this batch goes again later.
          this.spool.unacknowledged(batch);
          continue;
        }
        const batchId = ++this.batchId;
        const msg = encodeBatch({ node: batch.id.node, bootId: batch.id.bootId, instanceId: batch.id.instanceId, floorSeq: batch.firstSeq, batchId }, batch.records.map((r) => r.bytes));
        if (!this.inflight.length) this.lastProgress = Date.now();
        this.inflight.push({ batchId, batch });
        call.write(msg);
      }
    } catch (err) {
      this.log.error({ err }, 'sending from the spool failed');
    } finally {
      this.pumping = false;
    }
    if (!this.inflight.length && !this.queue.length && !this.flushing && this.spool.empty) for (const f of this.idle.splice(0)) f();
  }

  stats(): SinkStats {
    return spooledStats(this.counters, this.queue.length, this.connected, this.spool.stats());
  }

  /** Resolves once everything offered so far is acknowledged (tests, benches). */
  whenDelivered(): Promise<void> {
    return new Promise((resolve) => {
      this.idle.push(resolve);
      void this.pump();
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.flushing || this.queue.length) {
        if (!this.flushing) void this.flushToSpool();
        await new Promise((r) => setTimeout(r, 5));
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.whenDelivered(), new Promise((r) => (timer = setTimeout(r, this.o.closeTimeoutMs ?? 5000)))]);
      clearTimeout(timer);
      this.stopped = true;
      clearInterval(this.watchdog);
      clearTimeout(this.reconnectTimer);
      const call = this.call;
      this.call = undefined;
      if (call) {
        call.removeAllListeners();
        call.on('error', () => undefined);
        call.cancel();
      }
      for (const f of this.inflight) this.spool.unacknowledged(f.batch);
      this.inflight = [];
      this.client.close();
      const left = this.spool.stats();
      await this.spool.close();
      if (left.events) this.log.warn({ events: left.events, bytes: left.bytes }, 'closed with events not yet acknowledged: they stay in the spool for the next run');
    })();
    return this.closing;
  }
}
