import { describe, expect, it } from 'vitest';
import { decodeBatch } from '../../src/decode/decode';
import type { KernelRecord, TaskInfo } from '../../src/decode/records';
import { TaskFlag } from '../../src/decode/layout';
import { GONE_MAX, ProcessTable } from '../../src/process/table';
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

describe('process table: lookups of processes the kernel did not report', () => {
  /** A lookup that counts its calls and answers from `live` (null: no such pid). */
  function counting(live: Map<number, ReturnType<typeof proc>>, unreadable = new Set<number>()) {
    const calls: number[] = [];
    const lookup = (pid: number) => {
      calls.push(pid);
      if (unreadable.has(pid)) return undefined;
      return live.get(pid) ?? null;
    };
    return { calls, lookup };
  }
  function proc(pid: number, startNs: bigint) {
    const table = new ProcessTable();
    feed(table, [forkRecord(task({ pid, tgid: pid, ppid: 1, nspid: pid, startNs, parentStartNs: 1000n, flags: FOLLOWED }))]);
    return table.get(pid)!;
  }

  it('asks once for an ancestor that is gone, however often its descendants are walked', () => {
    const { calls, lookup } = counting(new Map());
    const table = new ProcessTable({ lookup });
    feed(table, [forkRecord(t(41, 40))]); // the fork asks for its parent
    const child = table.get(41)!;
    for (let i = 0; i < 5; i++) expect(table.chain(child).map((p) => p.tgid)).toEqual([41]);
    expect(calls).toEqual([40]);
    // Without a start time the pid is asked again: another process may hold it now.
    expect(table.get(40)).toBeUndefined();
    expect(calls).toEqual([40, 40]);
  });

  it('inOtherMountNs: a live process held in another mount namespace; not an exited one, not one it does not hold', () => {
    const table = new ProcessTable({ lookup: () => null });
    const host = t(50, 1).ns.mnt;
    // pid 60 is a container's init (its own mount namespace), 61 a host process.
    const init = task({
      pid: 60,
      tgid: 60,
      ppid: 50,
      nspid: 1,
      startNs: 60_000n,
      parentStartNs: 50_000n,
      flags: FOLLOWED,
      ns: { ...t(50, 1).ns, mnt: host + 7 },
    });
    feed(table, [forkRecord(init), forkRecord(t(61, 50, 61_000n, 50_000n))]);
    expect(table.inOtherMountNs(60, host)).toBe(true);
    expect(table.inOtherMountNs(61, host)).toBe(false);
    expect(table.inOtherMountNs(62, host)).toBe(false);
    feed(table, [exitRecord(init)]);
    expect(table.inOtherMountNs(60, host)).toBe(false);
  });

  it('peek answers from the table alone: no lookup for a pid it does not hold', () => {
    const { calls, lookup } = counting(new Map([[40, proc(40, 5000n)]]));
    const table = new ProcessTable({ lookup });
    feed(table, [forkRecord(t(41, 40))]);
    expect(calls).toEqual([40]);
    expect(table.peek(41)?.tgid).toBe(41);
    expect(table.peek(40)?.tgid).toBe(40);
    expect(table.peek(42)).toBeUndefined();
    expect(calls).toEqual([40]);
  });

  it('remembers at most GONE_MAX gone processes, the oldest forgotten first', () => {
    const { calls, lookup } = counting(new Map());
    const table = new ProcessTable({ lookup });
    const start = (pid: number) => BigInt(pid) * 1_000_000_000n;
    for (let pid = 10_000; pid <= 10_000 + GONE_MAX; pid++) table.get(pid, start(pid));
    expect(calls.length).toBe(GONE_MAX + 1);
    table.get(10_000 + GONE_MAX, start(10_000 + GONE_MAX)); // the newest: remembered
    table.get(10_001, start(10_001)); // the oldest left: remembered
    expect(calls.length).toBe(GONE_MAX + 1);
    table.get(10_000, start(10_000)); // the first one: forgotten, asked again
    expect(calls.length).toBe(GONE_MAX + 2);
  });

  it('asks again for a process it could not read only after the next sweep, and finds a process that reused the pid', () => {
    const live = new Map<number, ReturnType<typeof proc>>();
    const unreadable = new Set([40]);
    const { calls, lookup } = counting(live, unreadable);
    const table = new ProcessTable({ lookup });
    feed(table, [forkRecord(t(41, 40))]); // the fork asks for its parent
    for (let i = 0; i < 5; i++) expect(table.chain(table.get(41)!).map((p) => p.tgid)).toEqual([41]);
    expect(calls).toEqual([40]);
    // Another identity under the pid is another process: asked for.
    expect(table.get(40, 77_000_000_000n)).toBeUndefined();
    expect(calls).toEqual([40, 40]);
    // After a sweep the failure may have passed: asked again, once.
    table.sweep(0n);
    expect(table.parent(table.get(41)!)).toBeUndefined();
    expect(table.parent(table.get(41)!)).toBeUndefined();
    expect(calls).toEqual([40, 40, 40]);
    // Gone now; then pid 40 is taken by a new process: the old identity stays gone, the new one is found.
    unreadable.clear();
    table.sweep(0n);
    expect(table.parent(table.get(41)!)).toBeUndefined();
    live.set(40, proc(40, 99_000_000_000n));
    expect(table.get(40, 40_000n)).toBeUndefined();
    expect(table.get(40, 99_000_000_000n)?.startNs).toBe(99_000_000_000n);
    expect(calls).toEqual([40, 40, 40, 40, 40]);
  });

  it('remembers at most GONE_MAX unreadable processes, the oldest forgotten first', () => {
    const unreadable = new Set<number>();
    for (let pid = 10_000; pid <= 10_000 + GONE_MAX; pid++) unreadable.add(pid);
    const { calls, lookup } = counting(new Map(), unreadable);
    const table = new ProcessTable({ lookup });
    const start = (pid: number) => BigInt(pid) * 1_000_000_000n;
    for (let pid = 10_000; pid <= 10_000 + GONE_MAX; pid++) table.get(pid, start(pid));
    expect(calls.length).toBe(GONE_MAX + 1);
    table.get(10_001, start(10_001)); // the oldest left: remembered
    expect(calls.length).toBe(GONE_MAX + 1);
    table.get(10_000, start(10_000)); // the first one: forgotten, asked again
    expect(calls.length).toBe(GONE_MAX + 2);
  });
});
