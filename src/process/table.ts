import type { KernelRecord, Namespaces, TaskInfo } from '../decode/records';
import { sameStart } from './clock';
import { TaskFlag } from '../decode/layout';
import { NewestProcs } from './newest';

/** Task flags that make a process worth keeping until its exit: the kernel follows it. */
const FOLLOWED_MASK = TaskFlag.IN_CONTAINER | TaskFlag.FOLLOWED;

/**
 * comm and exe strings, one copy each: a node runs a few hundred distinct programs, and the
 * decoder makes a new string for every record (a 10,000-container node held 54,000 copies of
 * "sh"). Bounded: cleared when full.
 */
const NAMES_MAX = 8192;
const names = new Map<string, string>();

function intern(s: string): string {
  const have = names.get(s);
  if (have !== undefined) return have;
  if (names.size >= NAMES_MAX) names.clear();
  names.set(s, s);
  return s;
}

/** A process's argv before any exec is seen: one frozen empty array for all. */
const EMPTY_ARGV = Object.freeze([]) as unknown as string[];

/** What the sensor knows of one process. Identity: (tgid, startNs). */
export interface Proc {
  tgid: number;
  startNs: bigint;
  ppid: number;
  parentStartNs: bigint;
  nspid: number;
  comm: string;
  /** Path given to the last execve, '' until one is seen (a fork shows its parent's). */
  exe: string;
  /** Mount namespace it was in at its last exec; undefined when it never exec'd (its argv is its parent's). */
  execMnt?: number;
  argv: string[];
  uid: number;
  euid: number;
  capEffective: bigint;
  ns: Namespaces;
  cgroupId: bigint;
  /** It forked a child the table saw: it may be a live process's ancestor after its exit. */
  forked: boolean;
  /** CLOCK_MONOTONIC ns of its exit, once it has exited (its status goes with the exit's event). */
  exitedAt?: bigint;
  /**
   * The container its line belongs to, cached by the lifecycle (container/lifecycle.ts
   * owner()): a number for the host's (the lifecycle's epoch when that was found: it dates the
   * answer), undefined until asked. One field for both: a field costs 0.5 MiB per 65,536
   * processes. Opaque here, so that process/ never depends on container/.
   */
  owner?: object | number;
}

/**
 * Reads a process the kernel did not report (it started before the sensor, or only forked): the
 * process with this pid now; null when no process has the pid (the one asked for is gone for
 * good); undefined when it could not be read.
 */
export type ProcLookup = (tgid: number) => Proc | null | undefined;

/**
 * Processes known gone (a lookup found no process with their pid), and unreadable ones: at most
 * this many of each remembered.
 */
export const GONE_MAX = 4096;

export interface ProcessTableOptions {
  /** How long an exited process that forked stays, for its descendants' lineage (ns). */
  retainExitedNs?: bigint;
  /** How many exited processes that never forked stay, the newest, for records still in flight. */
  recentExited?: number;
  /** Upper bound on entries; the oldest exited, then the oldest, go first. */
  maxEntries?: number;
  /** How many unfollowed host processes to keep after their exec. */
  recentHost?: number;
  lookup?: ProcLookup;
}

/**
 * The node's process tree as far as records and /proc show it. Pure but for
 * the injected lookup: unit tests feed it records.
 */
export class ProcessTable {
  private procs = new Map<number, Proc>();
  /**
   * Host processes the kernel does not follow send their exec and nothing
   * else (no exit): kept here, the newest few thousand, so that their children
   * find them as parents without a /proc read; older ones are read from /proc
   * again when needed. Keeping them all would grow with every exec on the node.
   */
  private readonly recent: NewestProcs<Proc>;
  /**
   * Exited processes that never forked, oldest overwritten first: each leaves the table when
   * this many newer ones have exited. Nobody's ancestor, only a record still in flight can ask
   * for one: a child's fork in the priority ring written after that ring was read and before
   * its parent's exit was read from the bulk ring, so read in the next drain. Past the ring a
   * late child finds its parent through the lookup, like any unknown one. Keeping each for
   * the full retention instead made a busy container's every short-lived tool a long-lived
   * object: the table sat at its bound, evicting, and the collector promoted and marked tens
   * of thousands of dead processes.
   */
  private readonly exitedLeaves: (Proc | undefined)[];
  private leafAt = 0;
  private readonly retain: bigint;
  private readonly max: number;
  private readonly lookup?: ProcLookup;
  /**
   * Start times of processes the lookup found gone, by pid. An ancestor that exited before the
   * sensor saw it (a runtime's own process, once the container runs) is asked for by every
   * detection's chain and every lineage walk through it; a process, once gone, never comes back
   * under the same pid and start, so one failed lookup answers for it from then on. Oldest first
   * out.
   */
  private readonly gone = new Map<number, bigint>();
  /**
   * Start times of processes the lookup could not read (it found the process but not all of it),
   * by pid: asked again only after the next sweep, since the failure may pass. A container's init
   * is often reparented to the node's PID 1 or a subreaper, so every detection's chain walks
   * through it: where /proc refuses that process's namespace links (a micro-VM's init here), each
   * walk read it again, 0.2-5 ms of /proc reads between a start line and its detection line.
   */
  private readonly unreadable = new Map<number, bigint>();

  constructor(o: ProcessTableOptions = {}) {
    this.retain = o.retainExitedNs ?? 30_000_000_000n;
    this.max = o.maxEntries ?? 65_536;
    this.recent = new NewestProcs(o.recentHost ?? 4096);
    this.exitedLeaves = new Array<Proc | undefined>(Math.max(1, o.recentExited ?? 1024)).fill(undefined);
    this.lookup = o.lookup;
  }

  get size(): number {
    return this.procs.size + this.recent.size;
  }

  /** The live (or recently exited) process with this pid; with startNs, only that one. */
  get(tgid: number, startNs?: bigint): Proc | undefined {
    let p = this.peek(tgid);
    if (!p && this.lookup) {
      if (startNs !== undefined) {
        const g = this.gone.get(tgid);
        if (g !== undefined && sameStart(g, startNs)) return undefined;
        const u = this.unreadable.get(tgid);
        if (u !== undefined && sameStart(u, startNs)) return undefined;
      }
      const found = this.lookup(tgid);
      if (found) this.put((p = found));
      else if (startNs !== undefined) this.remember(found === null ? this.gone : this.unreadable, tgid, startNs);
    }
    if (p && startNs !== undefined && !sameStart(p.startNs, startNs)) return undefined;
    return p;
  }

  /** The process with this pid if the table holds it: no /proc lookup. */
  peek(tgid: number): Proc | undefined {
    return this.procs.get(tgid) ?? this.recent.get(tgid);
  }

  /**
   * A live process of this pid is held, in a mount namespace other than `hostMnt` (a container's):
   * no host daemon. From the table alone: the /proc scans for the host's runtime daemons skip it.
   */
  inOtherMountNs(tgid: number, hostMnt: number): boolean {
    const p = this.peek(tgid);
    return p !== undefined && p.exitedAt === undefined && p.ns.mnt !== hostMnt;
  }

  parent(p: Proc): Proc | undefined {
    return p.ppid ? this.get(p.ppid, p.parentStartNs) : undefined;
  }

  /** p, its parent, and so on: at most `max` entries. */
  chain(p: Proc, max = 12): Proc[] {
    const out: Proc[] = [p];
    let cur: Proc | undefined = p;
    while (out.length < max && (cur = this.parent(cur))) out.push(cur);
    return out;
  }

  private remember(m: Map<number, bigint>, tgid: number, startNs: bigint): void {
    m.delete(tgid);
    if (m.size >= GONE_MAX) m.delete(m.keys().next().value!);
    m.set(tgid, startNs);
  }

  put(p: Proc): void {
    this.procs.set(p.tgid, p);
    if (this.procs.size >= this.max) this.evict();
  }

  /** Updates the table from one record; returns the process it is about. */
  apply(r: KernelRecord): Proc {
    const p = this.upsert(r.task);
    if (r.kind === 'exec') {
      if (p.exe !== r.filename) p.exe = intern(r.filename);
      p.argv = r.argv;
      p.execMnt = r.task.ns.mnt;
    } else if (r.kind === 'exit') {
      p.exitedAt = r.ktime;
      if (!p.forked) this.exitedLeaf(p);
    }
    return p;
  }

  private upsert(t: TaskInfo): Proc {
    let p = this.procs.get(t.tgid);
    if (!p) {
      // A host process seen before, now followed (it moved into new namespaces), graduates.
      const r = this.recent.get(t.tgid);
      if (r && sameStart(r.startNs, t.startNs) && (t.flags & FOLLOWED_MASK) !== 0) {
        this.recent.delete(t.tgid);
        this.procs.set(t.tgid, r);
      }
      p = this.procs.get(t.tgid) ?? this.recent.get(t.tgid);
    }
    if (!p || !sameStart(p.startNs, t.startNs)) {
      // New, or the pid was reused: the process of the earlier start is gone.
      const parent = this.get(t.ppid, t.parentStartNs);
      // Every field set here, optional ones too, so that all records share one shape with the
      // fields inside the object (a field added later would cost each record a property array).
      // 64-bit values equal to the parent's share its BigInt (the decoder makes a new one for
      // every record): a container's processes have one cgroup and mostly one capability set.
      p = {
        tgid: t.tgid,
        startNs: t.startNs,
        ppid: t.ppid,
        parentStartNs: parent && parent.startNs === t.parentStartNs ? parent.startNs : t.parentStartNs,
        nspid: t.nspid,
        comm: intern(t.comm),
        exe: '',
        execMnt: undefined,
        argv: EMPTY_ARGV,
        uid: t.uid,
        euid: t.euid,
        capEffective: parent && parent.capEffective === t.capEffective ? parent.capEffective : t.capEffective,
        ns: t.ns,
        cgroupId: parent && parent.cgroupId === t.cgroupId ? parent.cgroupId : t.cgroupId,
        forked: false,
        exitedAt: undefined,
        owner: undefined,
      };
      // A fork without exec runs its parent's program.
      if (parent) {
        if (!parent.forked) parent.forked = true;
        p.exe = parent.exe;
        p.argv = parent.argv;
        // And belongs to its parent's container (lineage); to the host when the parent is the
        // host's and the child shares its namespaces and cgroup (container/lifecycle.ts owner()).
        const o = parent.owner;
        if (
          typeof o === 'object' ||
          (typeof o === 'number' && t.ns.mnt === parent.ns.mnt && t.ns.pid === parent.ns.pid && t.cgroupId === parent.cgroupId)
        )
          p.owner = o;
      }
      if ((t.flags & FOLLOWED_MASK) === 0) this.putRecent(p);
      else this.put(p);
      return p;
    }
    // Fields already equal keep their value (and the BigInt it is boxed in).
    if (p.startNs !== t.startNs) p.startNs = t.startNs; // exact now, where /proc gave clock ticks
    p.ppid = t.ppid;
    if (p.parentStartNs !== t.parentStartNs) p.parentStartNs = t.parentStartNs;
    p.nspid = t.nspid;
    if (p.comm !== t.comm) p.comm = intern(t.comm);
    p.uid = t.uid;
    p.euid = t.euid;
    if (p.capEffective !== t.capEffective) p.capEffective = t.capEffective;
    p.ns = t.ns;
    if (p.cgroupId !== t.cgroupId) p.cgroupId = t.cgroupId;
    return p;
  }

  private putRecent(p: Proc): void {
    this.procs.delete(p.tgid);
    this.recent.add(p);
  }

  private exitedLeaf(p: Proc): void {
    const old = this.exitedLeaves[this.leafAt];
    // Gone already (swept, evicted, its pid reused), or a child's late fork made it a parent: stays.
    if (old !== undefined && !old.forked && this.procs.get(old.tgid) === old) this.procs.delete(old.tgid);
    this.exitedLeaves[this.leafAt] = p;
    this.leafAt = (this.leafAt + 1) % this.exitedLeaves.length;
  }

  /** Drops processes that exited longer ago than the retention; unreadable ones may be asked for again. */
  sweep(nowNs: bigint): number {
    this.unreadable.clear();
    let n = 0;
    // Values only: a [key, value] pair per entry was 65,536 arrays a sweep at the table's bound.
    for (const p of this.procs.values()) {
      if (p.exitedAt !== undefined && nowNs - p.exitedAt > this.retain) {
        this.procs.delete(p.tgid);
        n++;
      }
    }
    return n;
  }

  private pruneQueue: number[] = [];

  /**
   * Drops entries for which `alive` says the process is gone (seeded or
   * looked-up ones never get an exit record). At most `budget` entries a call,
   * resuming where the last call stopped, so that the event loop never stalls.
   */
  prune(alive: (p: Proc) => boolean, budget = 2000): number {
    if (!this.pruneQueue.length) this.pruneQueue = [...this.procs.keys()];
    let n = 0;
    for (let i = 0; i < budget && this.pruneQueue.length; i++) {
      const k = this.pruneQueue.pop()!;
      const p = this.procs.get(k);
      if (p && p.exitedAt === undefined && !alive(p)) {
        this.procs.delete(k);
        n++;
      }
    }
    return n;
  }

  private evict(): void {
    this.dropOldest();
    // A Map's table only grows: filled to the bound once, it stays twice the bound's size (3.5 MiB
    // at 65,536) however few entries remain. A copy of what is left gets a table that fits.
    this.procs = new Map(this.procs);
  }

  private dropOldest(): void {
    // Map iteration is insertion order: oldest first. Exited ones first, then any.
    const target = Math.floor(this.max * 0.9);
    for (const p of this.procs.values()) {
      if (this.procs.size <= target) return;
      if (p.exitedAt !== undefined) this.procs.delete(p.tgid);
    }
    for (const k of this.procs.keys()) {
      if (this.procs.size <= target) return;
      this.procs.delete(k);
    }
  }

  *values(): IterableIterator<Proc> {
    yield* this.procs.values();
    yield* this.recent.values();
  }
}
