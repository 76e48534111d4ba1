// grpc://, grpcs:// — a long-lived Collector.Ship stream, on the SpooledSink loop: offer() →
// bounded memory queue → spool on disk → batches, at most `maxInflight` unacknowledged at a
// time. send() writes a batch on the stream and resolves with its ack. When the stream breaks
// (collector away, reset, garbage, no ack in time) every batch in flight is given back for a
// retry after one backoff step, and they go on the next stream in spool order: the collector
// takes a batch's floor_seq as "everything below is settled", and drops what it already has.

import * as grpc from '@grpc/grpc-js';
import { decodeAck, encodeBatch, SHIP_PATH, type Ack } from '../../proto/wire';
import type { FsyncPolicy, SpoolBatch } from '../spool/spool';
import { SpooledSink, type SendResult, type SpooledSinkOptions } from '../spool/spooled-sink';

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

export interface GrpcSinkOptions extends Omit<SpooledSinkOptions, 'name' | 'fsync' | 'batchEvents'> {
  spec: GrpcSpec;
  credentials: grpc.ChannelCredentials;
  token?: string;
  /** A stream with batches in flight and no ack for this long is given up. */
  ackTimeoutMs?: number;
}

interface InFlight {
  batchId: bigint;
  batch: SpoolBatch;
  settle: (r: SendResult) => void;
}

type Call = grpc.ClientDuplexStream<Buffer, Ack>;

export class GrpcSink extends SpooledSink {
  private readonly client: grpc.Client;
  private call?: Call;
  /** Written on `call`, waiting for their acks, in order. */
  private inflight: InFlight[] = [];
  /** Every batch handed to send() and not yet acknowledged → the stream it was last written on. */
  private readonly unacked = new Map<SpoolBatch, Call | undefined>();
  private turns: (() => void)[] = [];
  private batchId = 0n;
  private lastProgress = Date.now();
  private readonly watchdog: NodeJS.Timeout;
  private ending = false;

  private constructor(private readonly o: GrpcSinkOptions) {
    super({ maxInflight: 8, ...o, name: o.spec.url, fsync: o.spec.fsync, batchEvents: o.spec.batchEvents });
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

  /** Open the spool (recovering what earlier runs left), connect, and start sending. */
  static async create(o: GrpcSinkOptions): Promise<GrpcSink> {
    const sink = new GrpcSink(o);
    await sink.start();
    if (!sink.call) sink.connect();
    return sink;
  }

  // ---- the stream ---------------------------------------------------------------------------

  private connect(): Call {
    const md = new grpc.Metadata();
    if (this.o.token) md.set('authorization', `Bearer ${this.o.token}`);
    const call = this.client.makeBidiStreamRequest(SHIP_PATH, (b: Buffer) => b, decodeAck, md);
    this.call = call;
    this.lastProgress = Date.now();
    call.on('metadata', () => {
      if (this.call === call) this.log.info('connected to the collector');
    });
    call.on('data', (ack: Ack) => this.onAck(call, ack));
    call.on('error', (err: grpc.ServiceError) => this.broken(call, err));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) this.fail(call, 'ended', 'the collector ended the stream');
    });
    return call;
  }

  private onAck(call: Call, ack: Ack): void {
    if (this.call !== call) return;
    const head = this.inflight[0];
    if (!head || ack.batchId !== head.batchId || ack.instanceId !== head.batch.id.instanceId || ack.seq < head.batch.lastSeq) {
      this.fail(
        call,
        'bad_ack',
        `ack for batch ${ack.batchId} (${ack.instanceId} seq ${ack.seq}) does not match batch ${head?.batchId ?? 'none'} in flight`,
      );
      return;
    }
    this.inflight.shift();
    this.unacked.delete(head.batch);
    this.lastProgress = Date.now();
    if (ack.duplicates) this.counters.failures.resent_duplicates = (this.counters.failures.resent_duplicates ?? 0) + ack.duplicates;
    head.settle({ kind: 'ok' });
  }

  /** Give up a stream: its batches in flight go again, after one backoff step, on a new one. */
  private fail(call: Call, reason: string, detail: string): void {
    if (this.call !== call) return;
    this.call = undefined; // the SpooledSink loop marks the sink disconnected when it sees the retry
    call.removeAllListeners('data');
    call.on('error', () => undefined);
    call.cancel();
    const afterMs = this.backoff.next();
    for (const f of this.inflight.splice(0)) f.settle({ kind: 'retry', reason, detail, afterMs });
    this.nextTurn();
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

  // ---- the SpooledSink side -----------------------------------------------------------------

  /** Wake the sends waiting for their turn. */
  private nextTurn(): void {
    for (const f of this.turns.splice(0)) f();
  }

  /**
   * A batch may go on a stream once every batch before it that is not yet acknowledged went on
   * that stream. Only the first of them opens a new stream, after its own backoff.
   */
  private streamFor(batch: SpoolBatch): Call | undefined {
    let first = true;
    for (const [b, on] of this.unacked) {
      if (b.firstSeq >= batch.firstSeq) continue;
      first = false;
      if (!this.call || on !== this.call) return undefined;
    }
    return this.call ?? (first ? this.connect() : undefined);
  }

  protected async send(batch: SpoolBatch): Promise<SendResult> {
    if (!this.unacked.has(batch)) this.unacked.set(batch, undefined);
    for (;;) {
      if (this.ending) return { kind: 'retry', reason: 'closing', detail: 'the sink is closing' };
      const call = this.streamFor(batch);
      if (call) return this.write(call, batch);
      await new Promise<void>((resolve) => this.turns.push(resolve));
    }
  }

  private write(call: Call, batch: SpoolBatch): Promise<SendResult> {
    return new Promise((settle) => {
      const batchId = ++this.batchId;
      const msg = encodeBatch(
        { node: batch.id.node, bootId: batch.id.bootId, instanceId: batch.id.instanceId, floorSeq: batch.firstSeq, batchId },
        batch.records.map((r) => r.bytes),
      );
      if (!this.inflight.length) this.lastProgress = Date.now();
      this.inflight.push({ batchId, batch, settle });
      this.unacked.set(batch, call);
      call.write(msg);
      this.nextTurn();
    });
  }

  protected override interrupt(): void {
    this.ending = true;
    const call = this.call;
    if (call) this.fail(call, 'closing', 'the sink is closing');
    this.nextTurn();
  }

  protected async release(): Promise<void> {
    clearInterval(this.watchdog);
    const call = this.call;
    this.call = undefined;
    if (call) {
      call.removeAllListeners();
      call.on('error', () => undefined);
      call.cancel();
    }
    this.client.close();
  }
}
