import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { transformSync } from 'esbuild';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli';
import {
  BUSY_TO_RESET,
  flagGiven,
  GIVEN_BACK_BYTES,
  QUIET_COLLECTIONS_MAX,
  QUIET_RECORDS_PER_S,
  QuietHeap,
  YOUNG_SMALL_BYTES,
} from '../../src/heap-tuning';
import { trimCHeap } from '../../src/malloc-trim';
import { runUpkeep, upkeep } from '../../src/upkeep';

// What --small-heap relies on: V8 reads --optimize-for-size when its collector runs, so setting
// it after start (as src/heap-tuning.ts does) still shrinks the committed heap. A child node
// builds ~40 MB of live objects with garbage in between, then reports heapTotal after two GCs.
const CHILD = `
const small = process.argv[1] === 'small';
if (small) require('node:v8').setFlagsFromString('--optimize-for-size');
const keep = [];
for (let i = 0; i < 400000; i++) {
  keep.push({ a: i, b: 'x' + (i % 1000), c: [i, i + 1], d: BigInt(i) });
  for (let j = 0; j < 3; j++) ({ junk: new Array(8).fill(i) });
}
gc(); gc();
const m = process.memoryUsage();
process.stdout.write(JSON.stringify({ total: m.heapTotal, used: m.heapUsed, kept: keep.length }));
`;

function heap(mode: string): { total: number; used: number } {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', CHILD, mode], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { total: number; used: number };
}

// What tuneGc does, seen from V8's heap: objects made at an allocation site whose objects all
// survive land in the old generation as they are made (pretenured) while pretenuring is on.
// V8 decides that only at collections of a young generation at (or near) its largest size, so
// the child runs with a small one (1 MB semispaces) to decide it quickly; when it has decided
// differs between node versions (node 18 takes longer). The child loads src/heap-tuning.ts
// (transpiled here: it needs node:v8 only) and keeps objects of a site, 200,000 at a time, each
// time measuring where 5,000 more land (a collection in between shows as a space shrinking and
// is measured again), until they land in the old generation or 2,000,000 are kept; then calls
// tuneGc with its own command line and does the same with a new site.
const PRETENURE_CHILD = `
const v8 = require('node:v8');
const used = (n) => v8.getHeapSpaceStatistics().find((s) => s.space_name === n).space_used_size;
function pretenured(make) {
  const keep = [];
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 200000; i++) keep.push(make(i));
    for (let attempt = 0; attempt < 10; attempt++) {
      const batch = new Array(5000);
      const old0 = used('old_space'), young0 = used('new_space');
      for (let i = 0; i < batch.length; i++) batch[i] = make(i);
      const old = used('old_space') - old0, young = used('new_space') - young0;
      keep.push(batch);
      if (old < 0 || young < 0) continue;
      if (old > young) return true;
      break;
    }
  }
  return false;
}
const before = pretenured((i) => ({ a: i, b: i + 1, c: null }));
const set = tuneGc(process.execArgv);
const after = pretenured((i) => ({ x: i, y: i + 1, z: null }));
process.stdout.write(JSON.stringify({ before, set, after }));
`;

/** A child's script with src/heap-tuning.ts's exports in scope (transpiled here: it needs node: modules only). */
function withHeapTuning(names: string, script: string): string {
  const mod = transformSync(readFileSync(join(__dirname, '../../src/heap-tuning.ts'), 'utf8'), { loader: 'ts', format: 'cjs' }).code;
  return `const { ${names} } = (() => {\nconst module = { exports: {} }, exports = module.exports;\n${mod}\nreturn module.exports;\n})();\n${script}`;
}

function pretenuring(nodeFlags: string[]): { before: boolean; set: boolean; after: boolean } {
  const code = withHeapTuning('tuneGc', PRETENURE_CHILD);
  const r = spawnSync(process.execPath, ['--max-semi-space-size=1', ...nodeFlags, '-e', code], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { before: boolean; set: boolean; after: boolean };
}

describe('ctrwatch run: allocation-site pretenuring off (tuneGc)', () => {
  it('respects the flag on node command line, either way and in any of the forms V8 reads', () => {
    for (const a of [
      '--allocation-site-pretenuring',
      '--no-allocation-site-pretenuring',
      '--noallocation-site-pretenuring',
      '--allocation_site_pretenuring',
      '--allocation-site-pretenuring=true',
    ])
      expect(flagGiven('allocation-site-pretenuring', ['--expose-gc', a]), a).toBe(true);
    for (const a of ['--max-semi-space-size=4', '--allocation-site', 'allocation-site-pretenuring', '--trace-pretenuring'])
      expect(flagGiven('allocation-site-pretenuring', [a]), a).toBe(false);
  });

  it('set at run time, a site whose objects all survive is no longer pretenured', () => {
    expect(pretenuring([])).toEqual({ before: true, set: true, after: false });
  }, 60_000);

  it('node started with --allocation-site-pretenuring keeps it', () => {
    expect(pretenuring(['--allocation-site-pretenuring'])).toEqual({ before: true, set: false, after: true });
  }, 60_000);
});

describe('ctrwatch run --small-heap', () => {
  it('is an option of run, checked like the others', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['run', '--small-heap', '--check', '--log-level', 'silent'])).toBe(0);
      expect(await main(['run', '--small-heaps', '--check', '--log-level', 'silent'])).not.toBe(0);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });

  it('set after start, V8 keeps less heap committed beyond what is live', () => {
    const fast = heap('fast');
    const small = heap('small');
    expect(small.total - small.used).toBeLessThan((fast.total - fast.used) * 0.75);
  }, 120_000);
});

describe("ctrwatch run's upkeep", () => {
  it('sweeps (with the /proc prune when asked), gives the quiet heap its count, then trims the C heap, each time', () => {
    const calls: string[] = [];
    let records = 0;
    const pipeline = {
      sweep: (_now?: bigint, prune?: boolean) => void calls.push(`sweep prune=${prune}`),
      recordCount: () => (records += 7),
    };
    const quiet = { tick: (n: number) => (calls.push(`quiet ${n}`), false) } as unknown as QuietHeap;
    const trim = () => (calls.push('trim'), true);
    upkeep(pipeline, { prune: true, quiet, trim });
    upkeep(pipeline, { prune: false, quiet, trim });
    expect(calls).toEqual(['sweep prune=true', 'quiet 7', 'trim', 'sweep prune=false', 'quiet 14', 'trim']);
  });

  it('logs each quiet collection, with its pause and the heap before and after, and nothing else', () => {
    const lines: [Record<string, number>, string][] = [];
    const log = { debug: (o: Record<string, number>, m: string) => void lines.push([o, m]) };
    const answers = [false, true];
    const quiet = { tick: () => answers.shift() } as unknown as QuietHeap;
    const pipeline = { sweep: () => undefined, recordCount: () => 0 };
    upkeep(pipeline, { prune: false, quiet, log });
    expect(lines).toEqual([]);
    upkeep(pipeline, { prune: false, quiet, log });
    expect(lines.map(([, m]) => m)).toEqual(['quiet: heap given back']);
    expect(Object.keys(lines[0][0]).sort()).toEqual(['heapAfterMiB', 'heapMiB', 'pauseMs']);
    expect(lines[0][0].heapMiB).toBeGreaterThan(0);
  });

  it("run's task: the sweep with the /proc prune, the quiet heap, the trim, each time", () => {
    const calls: string[] = [];
    const pipeline = { sweep: (_now?: bigint, prune?: boolean) => void calls.push(`sweep prune=${prune}`), recordCount: () => 3 };
    const quiet = { tick: (n: number) => (calls.push(`quiet ${n}`), false) } as unknown as QuietHeap;
    const task = runUpkeep(pipeline, { debug: () => undefined, warn: () => undefined }, () => (calls.push('trim'), true), quiet);
    task();
    task();
    expect(calls).toEqual(['sweep prune=true', 'quiet 3', 'trim', 'sweep prune=true', 'quiet 3', 'trim']);
  });

  it('a quiet heap that throws is stopped and logged, and the trim still runs: the timer never throws', () => {
    const warned: string[] = [];
    let trims = 0;
    const q = new QuietHeap({ nowMs: () => 0, youngBytes: () => 32 << 20, heapBytes: () => 100 << 20, collect: () => true });
    q.tick = () => {
      throw new Error('no collector');
    };
    const stop = vi.spyOn(q, 'stop');
    const task = runUpkeep(
      { sweep: () => undefined, recordCount: () => 0 },
      { debug: () => undefined, warn: (_o: unknown, m: string) => void warned.push(m) },
      () => (trims++, true),
      q,
    );
    expect(() => task()).not.toThrow();
    expect([warned, trims, stop.mock.calls.length]).toEqual([['quiet heap off: its collection failed'], 1, 1]);
  });

  it('trims through the addon by default', () => {
    const binding = { trimMalloc: vi.fn(() => false) };
    expect(trimCHeap(binding)).toBe(false);
    expect(binding.trimMalloc).toHaveBeenCalledTimes(1);
  });
});

describe('the heap given back when quiet (QuietHeap)', () => {
  function fake(youngBytes: number) {
    const t = { now: 0, young: youngBytes, heap: 100 << 20, collected: 0 };
    const q = new QuietHeap({
      nowMs: () => t.now,
      youngBytes: () => t.young,
      heapBytes: () => t.heap,
      collect: () => (t.collected++, true),
    });
    return { t, q };
  }

  it('collects after a quiet interval, then again while the young generation is grown or the last collection gave memory back', () => {
    const { t, q } = fake(YOUNG_SMALL_BYTES); // small from the start, as when capped
    const n = 1_000_000 + 10 * QUIET_RECORDS_PER_S;
    expect(q.tick(1_000_000)).toBe(false); // the first call only starts the count
    t.now += 5000;
    expect(q.tick(1_000_000 + 5 * QUIET_RECORDS_PER_S)).toBe(false); // at the threshold: busy
    t.now += 5000;
    expect(q.tick(n - 5)).toBe(true); // just under it: the quiet time's first collection
    t.now += 5000;
    t.heap -= GIVEN_BACK_BYTES; // by the next upkeep it gave back that much
    expect(q.tick(n)).toBe(true);
    t.now += 5000;
    t.heap -= GIVEN_BACK_BYTES - 1; // less: given back already
    expect(q.tick(n)).toBe(false);
    t.now += 5000;
    t.young = YOUNG_SMALL_BYTES + 1; // a grown young generation is worth one more
    expect(q.tick(n)).toBe(true);
    expect([t.collected, q.collections]).toEqual([3, 3]);
  });

  it('counts the rate over the time since the last call, however long', () => {
    const { t, q } = fake(32 << 20);
    q.tick(0);
    t.now += 60_000; // a late timer: 30,000 records in a minute is quiet
    expect(q.tick(30_000)).toBe(true);
    t.now += 1000; // the same count in one second is not
    expect(q.tick(60_000)).toBe(false);
  });

  it('collects at most QUIET_COLLECTIONS_MAX times in one quiet time, again only after BUSY_TO_RESET busy upkeeps in a row', () => {
    const { t, q } = fake(32 << 20); // a V8 that never shrinks it
    let records = 0;
    q.tick(records);
    const quiet = (n = 10) => Array.from({ length: n }, () => ((t.now += 5000), q.tick(records))).filter(Boolean).length;
    const busy = () => ((t.now += 5000), (records += 5 * QUIET_RECORDS_PER_S), q.tick(records));
    expect(quiet()).toBe(QUIET_COLLECTIONS_MAX);
    for (let i = 1; i < BUSY_TO_RESET; i++) expect(busy()).toBe(false);
    expect(quiet()).toBe(0); // one busy blip does not start a new quiet time
    for (let i = 0; i < BUSY_TO_RESET; i++) expect(busy()).toBe(false);
    expect(quiet()).toBe(QUIET_COLLECTIONS_MAX);
    expect(t.collected).toBe(2 * QUIET_COLLECTIONS_MAX);
  });

  it('stops asking once there is no collection to make (a node that gives no gc())', () => {
    let asked = 0;
    const t = { now: 0 };
    const q = new QuietHeap({
      nowMs: () => t.now,
      youngBytes: () => 32 << 20,
      heapBytes: () => 100 << 20,
      collect: () => (asked++, false),
    });
    q.tick(0);
    const ticks = Array.from({ length: 5 }, () => ((t.now += 5000), q.tick(0)));
    expect(ticks).toEqual([false, false, false, false, false]);
    expect([asked, q.collections]).toEqual([1, 0]);
  });

  // V8 itself: a child grows its young generation and fills its old one with objects that then
  // die (as a burst of records does), then allocates little; the upkeep's ticks, 2.5 s apart,
  // collect until the young generation is given back (V8 shrinks it at a collection once it has
  // allocated little for a few seconds: ticks a second apart did not). node is not started with --expose-gc: the
  // collection comes through QuietHeap's own gc(), which leaves no gc() in the global scope.
  const QUIET_CHILD = `
const v8 = require('node:v8');
const space = (n) => v8.getHeapSpaceStatistics().find((s) => s.space_name === n).space_size;
let keep = [];
for (let i = 0; i < 3000000; i++) { const o = { i, s: 'x' + i }; if (i % 10 === 0) keep.push(o); }
keep = null;
const grown = space('new_space'), oldBefore = space('old_space');
const q = new QuietHeap();
q.tick(0);
const busy = q.tick(100000000);
let ticks = 0;
const timer = setInterval(() => {
  q.tick(100000000);
  if (space('new_space') <= 4 << 20 || ++ticks >= 8) {
    clearInterval(timer);
    process.stdout.write(JSON.stringify({ grown, busy, after: space('new_space'), oldBefore, oldAfter: space('old_space'), collections: q.collections, gcGlobal: typeof globalThis.gc, gcLater: require('node:vm').runInNewContext('typeof gc') }));
  }
}, 2500);
`;

  it("makes V8 give back the young generation and the old one's garbage once the node is quiet", () => {
    const r = spawnSync(process.execPath, ['-e', withHeapTuning('QuietHeap', QUIET_CHILD)], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, number | boolean | string>;
    expect(out.grown).toBeGreaterThan(16 << 20);
    expect(out.busy).toBe(false);
    expect(out.after).toBeLessThanOrEqual(YOUNG_SMALL_BYTES);
    expect(out.collections).toBeGreaterThan(0);
    expect(out.collections).toBeLessThanOrEqual(QUIET_COLLECTIONS_MAX);
    expect(out.oldAfter as number).toBeLessThan((out.oldBefore as number) / 2);
    expect(out.gcGlobal).toBe('undefined');
    expect(out.gcLater).toBe('undefined'); // --expose-gc is off again: a context made later has none
  }, 60_000);
});
