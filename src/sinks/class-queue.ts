// A bounded in-memory queue that keeps sequence order and, when full, drops the oldest event of
// the lowest class first (stats, then records, then detections), never a higher class to make
// room for a lower one. One FIFO a class, merged by sequence number on the way out.

import { EventClass, type SinkEvent } from './types';

/** A FIFO with O(1) shift (Array#shift is O(n) on large arrays). */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(x: T): void {
    this.items.push(x);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
}

const NONE: readonly SinkEvent[] = Object.freeze([]);

export interface ClassQueueLimits {
  maxEvents: number;
  maxBytes: number;
}

export class ClassQueue {
  private readonly lanes = [new Fifo<SinkEvent>(), new Fifo<SinkEvent>(), new Fifo<SinkEvent>()];
  private bytes = 0;
  private count = 0;

  constructor(private readonly limits: ClassQueueLimits) {}

  get length(): number {
    return this.count;
  }
  get byteLength(): number {
    return this.bytes;
  }

  /**
   * Add `ev`. Returns the events dropped to make room (oldest of the lowest class not above
   * ev's), or [ev] itself when only higher classes are queued.
   */
  push(ev: SinkEvent): readonly SinkEvent[] {
    if (this.count + 1 <= this.limits.maxEvents && this.bytes + ev.bytes.length <= this.limits.maxBytes) {
      // Room: the common case, without an array of drops for every event.
      this.lanes[ev.cls]!.push(ev);
      this.count++;
      this.bytes += ev.bytes.length;
      return NONE;
    }
    const dropped: SinkEvent[] = [];
    while (this.count > 0 && (this.count + 1 > this.limits.maxEvents || this.bytes + ev.bytes.length > this.limits.maxBytes)) {
      let victim: SinkEvent | undefined;
      for (let c = EventClass.Stats; c <= ev.cls; c++) {
        if (this.lanes[c]!.length) {
          victim = this.take(c);
          break;
        }
      }
      if (!victim) {
        dropped.push(ev);
        return dropped;
      }
      dropped.push(victim);
    }
    this.lanes[ev.cls]!.push(ev);
    this.count++;
    this.bytes += ev.bytes.length;
    return dropped;
  }

  private take(c: number): SinkEvent {
    const ev = this.lanes[c]!.shift()!;
    this.count--;
    this.bytes -= ev.bytes.length;
    return ev;
  }

  /** The next event in sequence order. */
  shift(): SinkEvent | undefined {
    let best = -1;
    for (let c = 0; c < 3; c++) {
      const h = this.lanes[c]!.peek();
      if (h && (best < 0 || h.seq < this.lanes[best]!.peek()!.seq)) best = c;
    }
    return best < 0 ? undefined : this.take(best);
  }

  /** Up to `max` events (and about `maxBytes`) in sequence order. */
  drain(max: number, maxBytes = Infinity): SinkEvent[] {
    const out: SinkEvent[] = [];
    let bytes = 0;
    while (out.length < max && bytes < maxBytes) {
      const ev = this.shift();
      if (!ev) break;
      out.push(ev);
      bytes += ev.bytes.length;
    }
    return out;
  }
}
