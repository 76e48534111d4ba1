// The one registry of child processes that tests and benches start: each is killed when its
// test or bench is done (its whole process group when it was spawned detached), even when
// something failed on the way.

import type { ChildProcess } from 'node:child_process';

const live = new Map<ChildProcess, { group: boolean }>();

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

/** Registers a child; `group`: it was spawned detached, kill its process group. */
export function track<T extends ChildProcess>(p: T, o: { group?: boolean } = {}): T {
  live.set(p, { group: o.group ?? false });
  p.once('exit', () => live.delete(p));
  return p;
}

/** SIGKILLs every tracked child still alive; returns how many. */
export function killTracked(): number {
  let n = 0;
  for (const [p, o] of live) {
    if (!p.pid || !alive(p)) continue;
    try {
      if (o.group) process.kill(-p.pid, 'SIGKILL');
      else p.kill('SIGKILL');
      n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

/** killTracked, then waits until every one of them has exited. */
export async function killTrackedAndWait(): Promise<void> {
  const waits = [...live.keys()].filter(alive).map((p) => new Promise<void>((r) => p.once('exit', () => r())));
  killTracked();
  await Promise.all(waits);
}
