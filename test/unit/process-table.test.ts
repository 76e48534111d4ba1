import { describe, expect, it } from 'vitest';
import { decodeBatch } from '../../src/decode/decode';
import type { KernelRecord, TaskInfo } from '../../src/decode/records';
import { TaskFlag } from '../../src/decode/layout';
import { ProcessTable } from '../../src/process/table';
import { execRecord, exitRecord, forkRecord, task } from '../support/records';

const FOLLOWED = TaskFlag.IN_CONTAINER | TaskFlag.FOLLOWED;

function t(pid: number, ppid: number, start = BigInt(pid) * 1000n, parentStart = BigInt(ppid) * 1000n): TaskInfo {
  return task({ pid, tgid: pid, ppid, nspid: pid, startNs: start, parentStartNs: parentStart, flags: FOLLOWED });
}

function feed(table: ProcessTable, bufs: Buffer[]): void {
  const { records, errors } = decodeBatch(Buffer.concat(bufs));
  expect(errors).toEqual([]);
  for (const r of records as KernelRecord[]) table.apply(r);
}

/** A shell (pid 10) runs `n` one-shot tools: fork, exec, exit each, pids from `first`. */
function tools(first: number, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let pid = first; pid < first + n; pid++) {
    out.push(forkRecord(t(pid, 10)), execRecord(t(pid, 10), '/bin/true', ['true']), exitRecord(t(pid, 10)));
  }
  return out;
}

describe('process table: exited processes', () => {
  it('keeps only the newest exited processes that never forked, so a busy container cannot fill it', () => {
    const table = new ProcessTable({ recentExited: 100, maxEntries: 100_000 });
    feed(table, [forkRecord(t(10, 1)), execRecord(t(10, 1), '/bin/sh', ['sh'])]);
    feed(table, tools(1000, 1000));
    // The shell, its parent read from nowhere (no lookup), and the newest 100 tools.
    expect(table.size).toBe(101);
    expect(table.get(1999, 1999n * 1000n)?.exitedAt).toBeDefined();
    expect(table.get(1900, 1900n * 1000n)).toBeDefined();
    expect(table.get(1899)).toBeUndefined();
  });

  it('keeps an exited parent for its descendants while its children come and go', () => {
    const table = new ProcessTable({ recentExited: 10 });
    feed(table, [forkRecord(t(10, 1)), execRecord(t(10, 1), '/bin/sh', ['sh', '-c', 'x']), forkRecord(t(11, 10)), exitRecord(t(10, 1))]);
    feed(table, tools(2000, 50)); // 50 later exits of processes that never forked
    expect(table.get(10, 10_000n)?.exitedAt).toBeDefined();
    expect(table.chain(table.get(11)!).map((p) => p.tgid)).toEqual([11, 10]);
    expect(table.get(11)?.exe).toBe('/bin/sh');
  });

  it("finds a parent whose exit was read before its child's fork (priority ring read first)", () => {
    const table = new ProcessTable({ recentExited: 10 });
    feed(table, [forkRecord(t(20, 1)), execRecord(t(20, 1), '/usr/sbin/runc', ['runc', 'create', 'x']), exitRecord(t(20, 1))]);
    feed(table, [forkRecord(t(21, 20), 0b11111)]);
    expect(table.get(21)?.exe).toBe('/usr/sbin/runc');
    expect(table.parent(table.get(21)!)?.tgid).toBe(20);
  });

  it('keeps a process that reused the pid of an exited one when that one leaves', () => {
    const table = new ProcessTable({ recentExited: 2 });
    feed(table, [forkRecord(t(30, 1)), exitRecord(t(30, 1))]);
    feed(table, [forkRecord(t(30, 1, 99_000_000_000n)), execRecord(t(30, 1, 99_000_000_000n), '/bin/new', ['new'])]);
    expect(table.get(30, 30_000n)).toBeUndefined();
    feed(table, tools(3000, 5)); // the first pid 30 is pushed out of the newest exited
    expect(table.get(30)?.exe).toBe('/bin/new');
    expect(table.get(30, 99_000_000_000n)?.exitedAt).toBeUndefined();
  });

  it('drops an exited parent after the retention, not before', () => {
    const table = new ProcessTable({ retainExitedNs: 1000n });
    feed(table, [forkRecord(t(40, 1)), forkRecord(t(41, 40)), exitRecord(t(40, 1))]);
    const exitedAt = table.get(40)!.exitedAt!;
    expect(table.sweep(exitedAt + 999n)).toBe(0);
    expect(table.get(40)).toBeDefined();
    expect(table.sweep(exitedAt + 1001n)).toBe(1);
    expect(table.get(40)).toBeUndefined();
  });
});
