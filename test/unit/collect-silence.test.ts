import { describe, expect, it } from 'vitest';
import { SilenceWatch } from '../../src/collect/silence';

const S = 1_000_000_000n;

describe('sensorSilent: a sensor whose stats stop for two intervals', () => {
  it('learns the interval from two stats, raises once after two intervals, and again after the next silence', () => {
    const w = new SilenceWatch();
    w.stats('n1', 'b', 'i', 100n * S, 0);
    w.stats('n1', 'b', 'i', 110n * S, 10_000); // a 10 s interval
    expect(w.check(29_000)).toEqual([]);
    const [s] = w.check(30_500);
    expect(s).toEqual({ node: 'n1', bootId: 'b', instanceId: 'i', lastStatsAtMs: 10_000, intervalMs: 10_000, silentForMs: 20_500 });
    expect(w.check(60_000)).toEqual([]); // once per silence
    w.stats('n1', 'b', 'i', 170n * S, 70_000); // the 60 s gap after the silence is not the interval
    expect(w.check(85_000)).toEqual([]);
    expect(w.check(95_000)).toHaveLength(1);
  });

  it('uses the default minute before a second stats, and tells nodes apart', () => {
    const w = new SilenceWatch();
    w.stats('n1', 'b', 'i', 1n * S, 0);
    w.stats('n2', 'b', 'i', 1n * S, 0);
    expect(w.check(119_000)).toEqual([]);
    expect(
      w
        .check(121_000)
        .map((s) => s.node)
        .sort(),
    ).toEqual(['n1', 'n2']);
  });

  it('a restarted sensor (a new instance on the node) takes the node over; the old one is not silent', () => {
    const w = new SilenceWatch();
    w.stats('n1', 'b', 'old', 1n * S, 0);
    w.stats('n1', 'b', 'old', 2n * S, 1000);
    w.stats('n1', 'b', 'new', 5n * S, 1500);
    w.stats('n1', 'b', 'new', 6n * S, 2500);
    expect(w.check(4000)).toEqual([]);
    expect(w.check(5000).map((s) => s.instanceId)).toEqual(['new']);
  });

  it("an old instance's stats resent from its spool by its successor are a replay, not a sign of life", () => {
    const w = new SilenceWatch();
    w.stats('n1', 'b', 'new', 10n * S, 0);
    w.stats('n1', 'b', 'new', 11n * S, 1000);
    w.stats('n1', 'b', 'old', 3n * S, 1100); // replayed: older than the newest seen
    expect(w.check(3500).map((s) => s.instanceId)).toEqual(['new']);
  });
});
