import { describe, expect, it } from 'vitest';
import { TaskFlag } from '../../src/decode/layout';
import type { KernelRecord } from '../../src/decode/records';
import { ProcessTable } from '../../src/process/table';
import { task } from '../support/records';

/** A followed process's fork record (what the table keeps until the bound). */
function fork(pid: number, exited = false): KernelRecord[] {
  const t = task({ pid, tgid: pid, ppid: 1, startNs: BigInt(pid) * 1000n, flags: TaskFlag.FOLLOWED | TaskFlag.LEADER });
  const recs: KernelRecord[] = [{ kind: 'fork', ktime: BigInt(pid), cpu: 0, task: t, newNs: [], late: false }];
  if (exited) recs.push({ kind: 'exit', ktime: BigInt(pid) + 1n, cpu: 0, task: t, exitStatus: 0 });
  return recs;
}

describe('process table bound', () => {
  it('keeps at most maxEntries followed processes, dropping exited ones first, then the oldest', () => {
    const table = new ProcessTable({ maxEntries: 10 });
    for (let pid = 1000; pid < 1025; pid++) for (const r of fork(pid, pid === 1020)) table.apply(r);
    expect(table.size).toBeLessThanOrEqual(10);
    // The newest are there, with their state; the oldest and the exited one are gone.
    expect(table.get(1024)?.tgid).toBe(1024);
    expect(table.get(1023, 1023n * 1000n)?.startNs).toBe(1023n * 1000n);
    expect(table.get(1000)).toBeUndefined();
    expect(table.get(1020)).toBeUndefined();
    // Still bounded after the copy an eviction makes, and the copy keeps insertion order.
    for (let pid = 2000; pid < 2030; pid++) for (const r of fork(pid)) table.apply(r);
    expect(table.size).toBeLessThanOrEqual(10);
    expect([...table.values()].map((p) => p.tgid)).toEqual([...table.values()].map((p) => p.tgid).sort((a, b) => a - b));
    expect(table.get(2029)?.tgid).toBe(2029);
  });
});
