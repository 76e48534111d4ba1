import { spawnSync } from 'node:child_process';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli';

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
