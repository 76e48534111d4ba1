import { describe, expect, it } from 'vitest';
import { ByCgroup } from '../../src/container/by-cgroup';

describe('containers by cgroup id', () => {
  it('holds one or several to an id, in the order added, and forgets each on its own', () => {
    const [a, b, c] = [{ n: 'a' }, { n: 'b' }, { n: 'c' }];
    const m = new ByCgroup<{ n: string }>();
    m.add(7n, a);
    m.add(7n, b);
    m.add(7n, b); // once only
    m.add(9n, c);
    expect(m.get(7n)).toEqual([a, b]);
    expect(m.get(9n)).toEqual([c]);
    expect(m.get(8n)).toEqual([]);
    m.delete(7n, a);
    expect(m.get(7n)).toEqual([b]);
    m.delete(9n, a); // not there: nothing changes
    expect(m.get(9n)).toEqual([c]);
    m.delete(7n, b);
    m.delete(9n, c);
    expect(m.size).toBe(0);
  });

  it('gives a copy: ending the containers it lists while walking them misses none', () => {
    const xs = [{ n: 1 }, { n: 2 }, { n: 3 }];
    const m = new ByCgroup<{ n: number }>();
    for (const x of xs) m.add(5n, x);
    const seen: number[] = [];
    for (const x of m.get(5n)) {
      m.delete(5n, x);
      seen.push(x.n);
    }
    expect(seen).toEqual([1, 2, 3]);
    expect(m.get(5n)).toEqual([]);
  });
});
