// The common part of the local sinks (stdout, file): offer() queues, one batch at a time is
// written off the caller's path, and what cannot be queued is counted. An urgent event (a
// container's start or end, a detection) starts a write at once when none is under way, with
// everything queued before it; the rest waits for the caller's turn to end (setImmediate). A
// write that completes at once (stdout to a pipe with room) leaves the next urgent event free
// to write at once too; one that does not holds every later event until it is done.

import type { Logger } from 'pino';
import { ClassQueue, type ClassQueueLimits } from './class-queue';
import { countDrop, emptyStats, type DropReason, type Sink, type SinkEvent, type SinkStats } from './types';

export interface QueuedSinkOptions {
  logger: Logger;
  queue?: Partial<ClassQueueLimits>;
  /** Events a write at most. */
  batchEvents?: number;
  /** How long close() keeps writing what is queued. */
  closeTimeoutMs?: number;
}

export abstract class QueuedSink implements Sink {
  protected readonly log: Logger;
  protected readonly counters: SinkStats;
  protected readonly queue: ClassQueue;
  protected closed = false;
  private writing = false;
  private scheduled = false;
  private idle: (() => void)[] = [];
  private closing?: Promise<void>;
  onDelivered?: (seconds: number, events: number) => void;

  constructor(
    readonly name: string,
    protected readonly qo: QueuedSinkOptions,
  ) {
    this.log = qo.logger.child({ component: 'sink', sink: name });
    this.counters = emptyStats(name);
    this.queue = new ClassQueue({ maxEvents: qo.queue?.maxEvents ?? 100_000, maxBytes: qo.queue?.maxBytes ?? 64 << 20 });
  }

  /**
   * Write one batch, in sequence order: return nothing when it is written already (or throw),
   * else a promise that resolves when it is.
   */
  protected abstract writeBatch(batch: SinkEvent[]): Promise<void> | void;
  /** Release files; runs once, after the last write. */
  protected abstract release(): Promise<void>;

  /** A write failed: by default the batch is counted as lost and writing goes on. */
  protected onWriteError(err: NodeJS.ErrnoException, batch: SinkEvent[]): void {
    this.counters.failures.write = (this.counters.failures.write ?? 0) + 1;
    this.drop('write_error', batch);
    this.log.error({ err, events: batch.length }, 'write failed: events lost');
  }

  protected drop(reason: DropReason, evs: readonly SinkEvent[]): void {
    for (const ev of evs) countDrop(this.counters, reason, ev.cls);
  }

  offer(ev: SinkEvent): void {
    this.counters.offered++;
    if (this.closed) return this.drop('closed', [ev]);
    const lost = this.queue.push(ev);
    if (lost.length) this.drop('queue_full', lost);
    if (ev.urgent && !this.writing) this.flush();
    else this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.writing) return;
    const batch = this.queue.drain(this.qo.batchEvents ?? 4096, 4 << 20);
    if (!batch.length) {
      for (const f of this.idle.splice(0)) f();
      return;
    }
    this.writing = true;
    let pending: Promise<void> | void;
    try {
      pending = this.writeBatch(batch);
    } catch (err) {
      return this.written(batch, err as NodeJS.ErrnoException);
    }
    // Written already (a pipe with room): the next urgent event may write at once too.
    if (!pending) return this.written(batch);
    pending.then(
      () => this.written(batch),
      (err: NodeJS.ErrnoException) => this.written(batch, err),
    );
  }

  private written(batch: SinkEvent[], err?: NodeJS.ErrnoException): void {
    this.writing = false;
    if (err) this.onWriteError(err, batch);
    else {
      this.counters.delivered += batch.length;
      const secs = (Date.now() - batch[0]!.offeredMs) / 1000;
      this.counters.lastLatencySeconds = secs;
      this.onDelivered?.(secs, batch.length);
    }
    if (this.closed && this.closedForGood) {
      this.drop('closed', this.queue.drain(Infinity));
    }
    this.schedule();
  }

  /** Set by a sink whose destination is gone (EPIPE): what is queued will never be written. */
  protected closedForGood = false;

  stats(): SinkStats {
    return {
      ...this.counters,
      queued: this.queue.length,
      dropped: structuredClone(this.counters.dropped),
      failures: { ...this.counters.failures },
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (!this.closedForGood && (this.queue.length || this.writing)) {
        const drained = new Promise<void>((resolve) => this.idle.push(resolve));
        this.schedule();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, this.qo.closeTimeoutMs ?? 5000)))]);
        clearTimeout(timer);
      }
      this.drop('closed', this.queue.drain(Infinity));
      await this.release();
    })();
    return this.closing;
  }
}
