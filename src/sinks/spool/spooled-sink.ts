// The one loop of every remote output (grpc, otlp, nats): offer() → bounded ClassQueue → Spool on disk (write-through) → one
// batch at a time to the destination through send(). send() says what happened:
//   ok         the destination has the batch: the spool moves past it
//   retry      transient (connect error, 429/5xx, no ack): the same batch again after a delay
//              (the destination's Retry-After when given, else backoff with equal jitter)
//   permanent  the destination will never take it (a 4xx other than 401/403/408/413/429):
//              counted as lost, logged once a reason, the spool moves past it — never retried
//              forever. A refusal that the destination's owner can lift (credentials: 401,
//              403) is a retry: the batch stays spooled, counted in failures.
// Batches are sent strictly one after the other, so the spool's acknowledged seq only grows.

import type { Logger } from 'pino';
import { Backoff } from './backoff';
import { ClassQueue } from '../class-queue';
import { Spool, type FsyncPolicy, type SpoolBatch, type SpoolIdentity } from './spool';
import { countDrop, emptyStats, type EventClass, type Sink, type SinkEvent, type SinkStats, spooledStats } from '../types';

export type SendResult =
  | {
      kind: 'ok';
      /** Records the destination took but rejected (OTLP partial success). */
      rejected?: number;
      /** Records the destination refused one by one for their size, each lost (its class). */
      tooLarge?: EventClass[];
    }
  | { kind: 'retry'; reason: string; detail: string; afterMs?: number }
  | {
      kind: 'permanent';
      reason: string;
      detail: string;
      /** Records at the batch's start already settled (taken, or lost as tooLarge). */
      settled?: number;
      tooLarge?: EventClass[];
    };

export interface SpooledSinkOptions {
  logger: Logger;
  name: string;
  identity: SpoolIdentity;
  spoolDir: string;
  spoolMaxBytes?: number;
  fsync?: FsyncPolicy;
  segmentBytes?: number;
  queueMaxEvents?: number;
  queueMaxBytes?: number;
  batchEvents?: number;
  batchMaxBytes?: number;
  /** Batches sent at once (settled in order). Default 4. */
  maxInflight?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Longest Retry-After honoured (a hostile or confused server cannot park us for a day). */
  retryAfterMaxMs?: number;
  closeTimeoutMs?: number;
}

export abstract class SpooledSink implements Sink {
  readonly name: string;
  onDelivered?: (seconds: number, events: number) => void;
  protected readonly log: Logger;
  protected readonly counters: SinkStats;
  private readonly queue: ClassQueue;
  protected readonly backoff: Backoff;
  private spool!: Spool;
  private flushing = false;
  private sending = false;
  private stopped = false;
  private closing?: Promise<void>;
  private retryTimers = new Set<NodeJS.Timeout>();
  private retryWakes = new Set<() => void>();
  private idle: (() => void)[] = [];
  /** Wakes pump() while it waits for the oldest batch in flight. */
  private poke?: () => void;
  private loggedPermanent = new Set<string>();
  private lastWarn = 0;
  protected connected = false;

  protected constructor(protected readonly so: SpooledSinkOptions) {
    this.name = so.name;
    this.log = so.logger.child({ component: 'sink', sink: so.name });
    this.counters = emptyStats(so.name);
    this.queue = new ClassQueue({ maxEvents: so.queueMaxEvents ?? 50_000, maxBytes: so.queueMaxBytes ?? 32 << 20 });
    this.backoff = new Backoff({ initialMs: so.backoffInitialMs ?? 250, maxMs: so.backoffMaxMs ?? 30_000 });
  }

  /** Open the spool (recovering what earlier runs left) and start sending. */
  protected async start(): Promise<void> {
    this.spool = await Spool.open({
      dir: this.so.spoolDir,
      identity: this.so.identity,
      maxBytes: this.so.spoolMaxBytes ?? 1 << 30,
      fsync: this.so.fsync ?? 'interval',
      segmentBytes: this.so.segmentBytes,
      logger: this.log,
      onDrop: (reason, cls, n) => countDrop(this.counters, reason, cls, n),
    });
    void this.pump();
  }

  /** Deliver one batch (records in seq order, all of run batch.id). */
  protected abstract send(batch: SpoolBatch): Promise<SendResult>;
  /** Release connections; runs once at the end of close(). */
  protected abstract release(): Promise<void>;
  /** close() gives up: end the sends in flight now (their batches stay in the spool). */
  protected interrupt(): void {}

  offer(ev: SinkEvent): void {
    this.counters.offered++;
    if (this.closing) return countDrop(this.counters, 'closed', ev.cls);
    for (const lost of this.queue.push(ev)) countDrop(this.counters, 'queue_full', lost.cls);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flushToSpool());
    }
  }

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

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.retryTimers.delete(t);
        this.retryWakes.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.retryTimers.add(t);
      this.retryWakes.add(done);
    });
  }

  /** Send one batch until it is delivered, refused for good, or the sink stops (undefined). */
  private async attempt(batch: SpoolBatch): Promise<SendResult | undefined> {
    for (;;) {
      if (this.stopped) return undefined;
      let r: SendResult;
      try {
        r = await this.send(batch);
      } catch (err) {
        r = { kind: 'retry', reason: 'send_error', detail: (err as Error).message };
      }
      if (r.kind !== 'retry') return r;
      if (this.stopped) return undefined; // interrupted by close(): not a failure of the destination
      this.counters.failures[r.reason] = (this.counters.failures[r.reason] ?? 0) + 1;
      if (this.connected !== false) this.spool.setLive(false); // an outage costs disk, not memory
      this.connected = false;
      const delay = Math.min(r.afterMs ?? this.backoff.next(), this.so.retryAfterMaxMs ?? 300_000);
      const now = Date.now();
      if (now - this.lastWarn > 10_000) {
        this.lastWarn = now;
        this.log.warn(
          { reason: r.reason, detail: r.detail, retryMs: delay, spooled: this.spool.stats().events },
          'send failed: spooling, will send again',
        );
      }
      if (this.stopped) return undefined;
      await this.sleep(delay);
    }
  }

  /** A batch is settled, in spool order: the spool moves past it. */
  private settle(batch: SpoolBatch, r: SendResult): void {
    if (r.kind === 'ok') {
      if (!this.connected) this.spool.setLive(true);
      this.connected = true;
      this.backoff.reset();
      this.spool.delivered(batch, batch.lastSeq);
      const n = batch.records.length - (r.tooLarge?.length ?? 0);
      this.counters.delivered += n;
      for (const cls of r.tooLarge ?? []) countDrop(this.counters, 'too_large', cls);
      if (r.rejected) this.counters.failures.rejected_records = (this.counters.failures.rejected_records ?? 0) + r.rejected;
      const secs = (Date.now() - batch.records[0]!.offeredMs) / 1000;
      this.counters.lastLatencySeconds = secs;
      this.onDelivered?.(secs, n);
      return;
    }
    if (r.kind === 'permanent') {
      this.counters.failures[r.reason] = (this.counters.failures[r.reason] ?? 0) + 1;
      this.counters.delivered += (r.settled ?? 0) - (r.tooLarge?.length ?? 0);
      for (const cls of r.tooLarge ?? []) countDrop(this.counters, 'too_large', cls);
      for (const rec of batch.records.slice(r.settled ?? 0)) countDrop(this.counters, 'write_error', rec.seg.lane);
      this.spool.delivered(batch, batch.lastSeq);
      if (!this.loggedPermanent.has(r.reason)) {
        this.loggedPermanent.add(r.reason);
        this.log.error(
          { reason: r.reason, detail: r.detail, events: batch.records.length },
          'the destination refused a batch for good: its events are counted as lost (logged once a reason)',
        );
      }
    }
  }

  /**
   * Up to maxInflight batches are sent at once (each retried on its own), but they are settled
   * strictly in spool order, so the acknowledged seq only grows and a segment is never deleted
   * under a batch still in flight.
   */
  private async pump(): Promise<void> {
    if (this.sending) return this.poke?.(); // new events in the spool: fill the window now
    if (!this.spool) return;
    this.sending = true;
    const window: { batch: SpoolBatch; result: Promise<SendResult | undefined> }[] = [];
    let aborted = false;
    try {
      for (;;) {
        while (!this.stopped && window.length < (this.so.maxInflight ?? 4)) {
          const batch = await this.spool.next(this.so.batchEvents ?? 1000, this.so.batchMaxBytes ?? 1 << 20);
          if (!batch) break;
          window.push({ batch, result: this.attempt(batch) });
        }
        const head = window[0];
        if (!head) break;
        const poked = new Promise<'poked'>((resolve) => (this.poke = () => resolve('poked')));
        const r = await Promise.race([head.result, poked]);
        this.poke = undefined;
        if (r === 'poked') continue;
        window.shift();
        if (!r) {
          aborted = true;
          this.spool.unacknowledged(head.batch);
          continue;
        }
        if (aborted) {
          this.spool.unacknowledged(head.batch);
          continue;
        }
        this.settle(head.batch, r);
      }
      if (aborted) this.spool.rewind();
    } catch (err) {
      this.log.error({ err }, 'sending from the spool failed');
      for (const w of window) this.spool.unacknowledged(w.batch);
      this.spool.rewind();
    } finally {
      this.sending = false;
    }
    if (!this.queue.length && !this.flushing && this.spool.empty) for (const f of this.idle.splice(0)) f();
    else if (!this.stopped && !this.flushing && this.queue.length === 0 && !this.spool.empty)
      setTimeout(() => void this.pump(), 50).unref();
  }

  stats(): SinkStats {
    return spooledStats(
      this.counters,
      this.queue.length,
      this.connected,
      this.spool?.stats() ?? { events: 0, bytes: 0, corruptSegments: 0 },
    );
  }

  /** Resolves once everything offered so far is delivered (tests, benches). */
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
      await Promise.race([this.whenDelivered(), new Promise((r) => (timer = setTimeout(r, this.so.closeTimeoutMs ?? 5000)))]);
      clearTimeout(timer);
      this.stopped = true;
      for (const wake of [...this.retryWakes]) wake();
      this.interrupt();
      while (this.sending) await new Promise((r) => setTimeout(r, 5));
      await this.release();
      const left = this.spool.stats();
      await this.spool.close();
      if (left.events)
        this.log.warn(
          { events: left.events, bytes: left.bytes },
          'closed with events not yet delivered: they stay in the spool for the next run',
        );
    })();
    return this.closing;
  }
}
