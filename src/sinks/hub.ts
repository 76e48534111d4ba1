// The fan-out from the event bus to every sink. publish() runs on the kernel drain loop: it
// encodes the event once and hands the same bytes to each sink's offer(), which only queues.
// A sink that is slow or gone costs its own queue and counters, never the caller or the others.

import type { Logger } from 'pino';
import type { EventInput } from '../proto/schema';
import type { EventCodec } from '../proto/codec';
import { classOfKind, totalDrops, urgentKind, type Sink, type SinkEvent, type SinkStats } from './types';

export interface HubStats {
  instanceId: string;
  published: number;
  /** Events that did not fit the schema: counted, logged, sent nowhere. */
  encodeErrors: number;
  /** Events published after close(): sent nowhere. */
  afterClose: number;
  /** Drops summed over sinks, with afterClose. */
  sinkDrops: number;
  sinks: SinkStats[];
}

export interface SinkHubOptions {
  logger: Logger;
  codec: EventCodec;
  sinks: Sink[];
  /** This sensor run: with node and boot id, the collector's de-duplication key. */
  instanceId: string;
  /** Runs last in close() (e.g. the metrics server). */
  onClose?: () => Promise<void> | void;
}

export class SinkHub {
  readonly instanceId: string;
  readonly sinks: readonly Sink[];
  private readonly log: Logger;
  private published = 0;
  private encodeErrors = 0;
  private afterClose = 0;
  private lastEncodeLog = 0;
  private closing?: Promise<void>;

  constructor(private readonly o: SinkHubOptions) {
    this.log = o.logger.child({ component: 'sinks' });
    this.instanceId = o.instanceId;
    this.sinks = o.sinks;
  }

  /**
   * Take a stamped event (seq set): encode once, offer to every sink. Never throws. urgent false:
   * no early write even for an urgent kind (the sensor's startup report goes out as one batch).
   */
  publish(event: EventInput, urgent?: false): void {
    if (this.closing) {
      this.afterClose++;
      return;
    }
    let enc: { bytes: Buffer; kind: string | undefined };
    try {
      enc = this.o.codec.encodeKind(event);
    } catch (err) {
      this.encodeErrors++;
      const now = Date.now();
      if (now - this.lastEncodeLog > 10_000) {
        this.lastEncodeLog = now;
        this.log.error({ err, seq: String(event.seq), encodeErrors: this.encodeErrors }, 'event does not fit the schema: not sent');
      }
      return;
    }
    this.offer({
      bytes: enc.bytes,
      seq: toSeq(event.seq),
      cls: classOfKind(enc.kind),
      offeredMs: Date.now(),
      urgent: urgent ?? urgentKind(enc.kind),
    });
  }

  /** Offer an already encoded event to every sink. */
  offer(ev: SinkEvent): void {
    this.published++;
    for (const s of this.o.sinks) s.offer(ev);
  }

  stats(): HubStats {
    const sinks = this.o.sinks.map((s) => s.stats());
    return {
      instanceId: this.instanceId,
      published: this.published,
      encodeErrors: this.encodeErrors,
      afterClose: this.afterClose,
      sinkDrops: this.afterClose + sinks.reduce((n, s) => n + totalDrops(s), 0),
      sinks,
    };
  }

  /** Close every sink (each delivers what it can within its own timeout). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const results = await Promise.allSettled(this.o.sinks.map((s) => s.close()));
      for (const [i, r] of results.entries())
        if (r.status === 'rejected') this.log.error({ err: r.reason, sink: this.o.sinks[i]!.name }, 'sink close failed');
      await this.o.onClose?.();
      this.log.info({ stats: this.stats() }, 'sinks closed');
    })();
    return this.closing;
  }
}

function toSeq(v: EventInput['seq']): bigint {
  if (typeof v === 'bigint') return v;
  try {
    return v === undefined ? 0n : BigInt(v);
  } catch {
    return 0n;
  }
}
