import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { BoltFile } from '../meta/bolt';
import { readContainerdSandbox, type PodLabels } from '../meta/pod';

/**
 * Pods' labels and annotations from containerd's metadata stores, found as the meta.db files
 * that containerd daemons in the host's mount namespace hold open (so a containerd started
 * with any --root is found, and the file is reached through /proc/<pid>/fd/<n>: the same
 * inode, whatever mount namespace the sensor runs in). No CRI socket is asked: a runtime that
 * does not answer costs nothing here. A sandbox's labels never change: they are cached.
 */
export interface StoreScanIo {
  pids(): number[];
  comm(pid: number): string | undefined;
  mntNs(pid: number): string | undefined;
  /** fd number → link target. */
  fds(pid: number): [string, string][];
}

const procIo: StoreScanIo = {
  pids: () =>
    safe(() =>
      readdirSync('/proc')
        .filter((n) => /^\d+$/.test(n))
        .map(Number),
    ) ?? [],
  comm: (pid) => safe(() => readFileSync(`/proc/${pid}/comm`, 'utf8').trim()),
  mntNs: (pid) => safe(() => readlinkSync(`/proc/${pid}/ns/mnt`)),
  fds: (pid) => {
    const out: [string, string][] = [];
    for (const fd of safe(() => readdirSync(`/proc/${pid}/fd`)) ?? []) {
      const l = safe(() => readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (l) out.push([fd, l]);
    }
    return out;
  },
};

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

const CONTAINERD_COMMS = new Set(['containerd', 'k3s', 'k3s-server', 'k3s-agent']);
const META_DB = /\/io\.containerd\.metadata\.v1\.bolt\/meta\.db$/;
const CACHE = 4096;

export interface PodLabelSource {
  /** The sandbox's labels and annotations, or undefined with the reason in problems. */
  sandbox(ns: string, sandboxId: string, problems: string[]): PodLabels | undefined;
  /** Lookups that failed (store unreadable, sandbox missing, hostile record). */
  readonly failures: number;
}

export class ContainerdPodStore implements PodLabelSource {
  private stores: string[] = [];
  private lastScan = -Infinity;
  private readonly cache = new Map<string, PodLabels>();
  failures = 0;

  constructor(
    private readonly io: StoreScanIo = procIo,
    /** The host's mount namespace ("mnt:[…]"); the sensor's own without it. */
    private readonly hostMnt: string | undefined = safe(() => readlinkSync('/proc/self/ns/mnt')),
    private readonly now: () => number = () => Date.now(),
    private readonly rescanMs = 1000,
    /** Pids the sensor knows to be in a container's mount namespace: not read (see scanRuntimeSockets). */
    private readonly skip: (pid: number) => boolean = () => false,
  ) {}

  /** Every meta.db a host containerd holds open, as /proc/<pid>/fd/<n>. */
  scan(): string[] {
    this.lastScan = this.now();
    const out: string[] = [];
    for (const pid of this.io.pids()) {
      if (this.skip(pid)) continue;
      const comm = this.io.comm(pid);
      if (!comm || !CONTAINERD_COMMS.has(comm)) continue;
      if (this.hostMnt && this.io.mntNs(pid) !== this.hostMnt) continue; // a "containerd" in a container is not the node's
      for (const [fd, target] of this.io.fds(pid)) if (META_DB.test(target)) out.push(`/proc/${pid}/fd/${fd}`);
    }
    this.stores = out;
    return out;
  }

  private lookup(ns: string, sandboxId: string, problems: string[]): PodLabels | undefined {
    for (const path of this.stores) {
      let db: BoltFile | undefined;
      try {
        db = new BoltFile(path);
        const found = readContainerdSandbox(db, ns, sandboxId);
        if (found) return found;
      } catch (err) {
        problems.push((err as Error).message);
      } finally {
        db?.close();
      }
    }
    return undefined;
  }

  sandbox(ns: string, sandboxId: string, problems: string[]): PodLabels | undefined {
    const key = `${ns}/${sandboxId}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const before = problems.length;
    let found = this.lookup(ns, sandboxId, problems);
    // A containerd started after the last scan, or a store that moved: rescan, at most once a second.
    if (!found && this.now() - this.lastScan >= this.rescanMs) {
      this.scan();
      problems.length = before;
      found = this.lookup(ns, sandboxId, problems);
    }
    if (!found) {
      this.failures++;
      if (problems.length === before)
        problems.push(`pod sandbox ${sandboxId.slice(0, 12)} not found in any containerd metadata store (${this.stores.length} open)`);
      return undefined;
    }
    problems.length = before; // a store that failed does not matter once another had it
    if (this.cache.size >= CACHE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, found);
    return found;
  }
}
