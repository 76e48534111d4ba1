import { describe, expect, it } from 'vitest';
import { ClassQueue } from '../../src/sinks/class-queue';
import { SeqWindow } from '../../src/collect/seq-window';
import { Backoff } from '../../src/sinks/spool/backoff';
import { EventClass, type SinkEvent } from '../../src/sinks/types';

const ev = (seq: number, cls: EventClass, size = 10): SinkEvent => ({
  event: {},
  bytes: Buffer.alloc(size),
  seq: BigInt(seq),
  cls,
  offeredMs: 0,
});

describe('ClassQueue', () => {
  it('keeps sequence order across classes', () => {
    const q = new ClassQueue({ maxEvents: 10, maxBytes: 1000 });
    for (const [s, c] of [
      [1, 1],
      [2, 2],
      [3, 0],
      [4, 1],
    ] as const)
      q.push(ev(s, c));
    expect(q.drain(10).map((e) => Number(e.seq))).toEqual([1, 2, 3, 4]);
  });

  it('when full drops the oldest of the lowest class, never a higher class for a lower one', () => {
    const q = new ClassQueue({ maxEvents: 3, maxBytes: 1000 });
    q.push(ev(1, EventClass.Detection));
    q.push(ev(2, EventClass.Stats));
    q.push(ev(3, EventClass.Record));
    expect(q.push(ev(4, EventClass.Record)).map((e) => Number(e.seq))).toEqual([2]); // stats first
    expect(q.push(ev(5, EventClass.Record)).map((e) => Number(e.seq))).toEqual([3]); // then the oldest record
    expect(q.push(ev(6, EventClass.Stats)).map((e) => Number(e.seq))).toEqual([6]); // a stats event displaces nothing higher
    expect(q.push(ev(7, EventClass.Detection)).map((e) => Number(e.seq))).toEqual([4]);
    expect(q.drain(10).map((e) => Number(e.seq))).toEqual([1, 5, 7]);
  });

  it('bounds bytes too', () => {
    const q = new ClassQueue({ maxEvents: 100, maxBytes: 25 });
    q.push(ev(1, 1));
    q.push(ev(2, 1));
    expect(q.push(ev(3, 1)).map((e) => Number(e.seq))).toEqual([1]);
    expect(q.byteLength).toBe(20);
  });
});

describe('SeqWindow (collector de-duplication)', () => {
  it('accepts each seq once, in or out of order, and a floor closes gaps', () => {
    const w = new SeqWindow();
    expect([1, 2, 2, 4, 4, 3, 1].map((s) => w.accept(BigInt(s)))).toEqual([true, true, false, true, false, true, false]);
    expect(w.highWater).toBe(4n);
    expect(w.accept(7n)).toBe(true); // 5 and 6 dropped by the sensor
    expect(w.highWater).toBe(4n);
    w.settle(7n);
    expect(w.highWater).toBe(7n);
    expect(w.toJSON()).toEqual({ hwm: '7' });
    const back = new SeqWindow({ hwm: '7', ooo: ['9'] });
    expect(back.accept(9n)).toBe(false);
    expect(back.accept(8n)).toBe(true);
    expect(back.highWater).toBe(9n);
  });

  it('stays bounded for a sender that skips around', () => {
    const w = new SeqWindow(undefined, 10);
    for (let s = 2; s < 100; s += 2) w.accept(BigInt(s));
    expect(w.toJSON().ooo?.length ?? 0).toBeLessThanOrEqual(10);
    expect(w.overflowed).toBeGreaterThan(0);
  });
});

describe('Backoff', () => {
  it('grows exponentially with jitter up to the cap, and resets', () => {
    let r = 0;
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => r });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([50, 100, 200, 400, 500]);
    r = 0.999;
    expect(b.next()).toBe(1000);
    b.reset();
    expect(b.next()).toBe(100);
  });
});
