import { NS_NAMES, TaskFlag } from '../decode/layout';
import type { KernelRecord, Namespaces } from '../decode/records';
import { sameStart } from '../process/clock';
import type { Proc, ProcessTable } from '../process/table';
import { ByCgroup } from './by-cgroup';
import { basename as basenameOf, parseManager, parseOciRuntime, type ManagerCall, type OciRuntimeCall } from './runtime-cli';

/**
 * Containers from kernel facts, whoever made them (design.md):
 * - created: a process in a mount namespace that is not the host's changes its
 *   root (pivot_root or chroot) — the runtime has built the container;
 * - started: that process (or PID 1 of its new pid namespace) execs the entrypoint;
 * - exec: a process that entered the container's namespaces from outside
 *   (runc exec, docker exec, nsenter) execs there;
 * - exited: the init exits, or the container's cgroup is removed.
 * A mount namespace without a new root (`unshare -m` by a service) is not a container.
 *
 * Whose a process is goes by lineage (owner()): a process belongs to the
 * container its line descends from, whatever mount, user or other namespace it
 * moved into since; a host process that entered a container (runc exec,
 * nsenter) belongs to it by the container's mount or PID namespace or cgroup.
 * A container made by a process of another container is nested in it (`outer`).
 */

export type HostNs = 'PID' | 'NET' | 'IPC' | 'UTS' | 'MNT' | 'CGROUP' | 'USER';
/** The owner the lifecycle cached on a process (opaque to process/): a number (an epoch) is the host. */
const cached = (p: Proc): ContainerFacts | null | undefined => {
  const o = p.owner;
  return typeof o === 'number' ? null : (o as ContainerFacts | undefined);
};

const HOST_NS: [keyof Namespaces, HostNs][] = [
  ['pid', 'PID'],
  ['net', 'NET'],
  ['ipc', 'IPC'],
  ['uts', 'UTS'],
  ['mnt', 'MNT'],
  ['cgroup', 'CGROUP'],
  ['user', 'USER'],
];

export interface ContainerFacts {
  /** Mount namespace inode: the kernel's identity of the container. */
  key: number;
  status: 'created' | 'started' | 'exited';
  /** The process that changed root, then the one that exec'd the entrypoint. */
  initTgid: number;
  initStartNs: bigint;
  ns: Namespaces;
  cgroupId: bigint;
  rootChange: 'pivot_root' | 'chroot' | 'existing';
  /** The OCI runtime call and the manager above it, from the creating process chain. */
  runtimeCall?: OciRuntimeCall & { pid: number };
  manager?: ManagerCall & { pid: number };
  /** The runtime process that made it (the chain's first non-init ancestor). */
  creator?: Proc;
  createdNs: bigint;
  startedNs?: bigint;
  entry?: Proc;
  existing: boolean;
  /** Created with no runtime in sight: reported together with its start (or first activity), or never. */
  deferredCreate?: boolean;
  /** Deferred, and reported on the first fork, exit or syscall of its line even without an exec. */
  reportOnActivity?: boolean;
  /** The container whose line made this one (nested containers), by lineage. */
  outer?: ContainerFacts;
  /** Started by its line's first activity, before any exec: the init's first exec becomes its entry. */
  activityStart?: boolean;
  /** Free slot for enrichment, owned by the caller. */
  meta?: unknown;
}

export type LifecycleEvent =
  | { kind: 'created'; c: ContainerFacts; ktime: bigint }
  | { kind: 'started'; c: ContainerFacts; ktime: bigint; process: Proc }
  | { kind: 'exec'; c: ContainerFacts; ktime: bigint; process: Proc }
  | { kind: 'exited'; c: ContainerFacts; ktime: bigint; exitStatus?: number };

export function hostNamespacesShared(ns: Namespaces, host: Namespaces): HostNs[] {
  return HOST_NS.filter(([k]) => ns[k] === host[k]).map(([, v]) => v);
}

export function nsFromArray(a: number[]): Namespaces {
  const o: Partial<Namespaces> = {};
  NS_NAMES.forEach((n, i) => (o[n] = a[i]));
  return o as Namespaces;
}

/**
 * The runtime's and the manager's call as one fixed shape each: a spread (`{ ...rc, pid }`) gave
 * every container a hidden class of its own (10,000 containers held 10,000 maps and descriptor
 * arrays, 0.3 KiB each).
 */
function withPid(rc: OciRuntimeCall, pid: number): OciRuntimeCall & { pid: number } {
  return {
    runtime: rc.runtime,
    subcommand: rc.subcommand,
    id: rc.id,
    bundle: rc.bundle,
    root: rc.root,
    systemdCgroup: rc.systemdCgroup,
    pid,
  };
}

function managerWithPid(m: ManagerCall, pid: number): ManagerCall & { pid: number } {
  return { kind: m.kind, runtime: m.runtime, id: m.id, namespace: m.namespace, bundle: m.bundle, pid };
}

const LINE_FLAGS = TaskFlag.IN_CONTAINER | TaskFlag.FOLLOWED;

/**
 * Host programs that unpack images by changing root in a private mount
 * namespace and never exec (docker-untar, storage-untar): a no-exec root change
 * whose line is the host's and comes from one of these stays unreported.
 * These are the host's own executables (paths the kernel exec'd on the host),
 * not names a container controls.
 */
const UNPACKING_DAEMONS = new Set(['dockerd', 'containerd', 'podman', 'buildah', 'buildkitd', 'crio', 'skopeo']);

export class Lifecycle {
  private readonly byKey = new Map<number, ContainerFacts>();
  private readonly byInit = new Map<number, ContainerFacts>();
  /** A container's own PID namespace and cgroup (not shared with its creator), for processes that entered it. */
  private readonly byPidNs = new Map<number, ContainerFacts>();
  private readonly byCgroup = new Map<bigint, ContainerFacts>();
  /** Every container in byKey by its cgroup, its own or shared: what a cgroup's removal ends. */
  private readonly inCgroup = new ByCgroup<ContainerFacts>();
  /**
   * Processes that entered a container from outside and were reported: start time by pid. Keyed
   * by the number, not a "pid:start" string: every exit on the node asks, and building and
   * hashing that string cost more than the rest of an exit's handling here.
   */
  private readonly entered = new Map<number, bigint>();
  /** Deferred containers waiting for their line's first activity. */
  private waiting = 0;
  /** Bumped when a container appears: a cached "host process" answer older than this is asked again. */
  private epoch = 0;

  constructor(
    private readonly procs: ProcessTable,
    private readonly host: Namespaces,
  ) {}

  /** Containers created or started, not yet exited. */
  get count(): number {
    return this.byKey.size;
  }

  get(key: number): ContainerFacts | undefined {
    return this.byKey.get(key);
  }

  /** Containers found by the startup scan: known, reported once, never as new. */
  adopt(c: ContainerFacts): void {
    const init = this.procs.get(c.initTgid, c.initStartNs);
    const up = init && this.procs.parent(init);
    if (c.outer === undefined) c.outer = (up && this.owner(up)) || undefined;
    this.register(c, up?.cgroupId);
    if (init) init.owner = c;
  }

  private register(c: ContainerFacts, creatorCgroup: bigint | undefined): void {
    const was = this.byKey.get(c.key);
    if (was !== c) {
      if (was) this.inCgroup.delete(was.cgroupId, was);
      this.inCgroup.add(c.cgroupId, c);
    }
    this.byKey.set(c.key, c);
    this.byInit.set(c.initTgid, c);
    this.epoch++;
    this.claim(c, creatorCgroup);
  }

  /** Whether c's cgroup is its own: not the host's, its creator's or another container's. */
  ownsCgroup(c: ContainerFacts): boolean {
    return this.byCgroup.get(c.cgroupId) === c;
  }

  /** Its PID namespace and cgroup identify it when they are its own (not the host's, its creator's or another's). */
  private claim(c: ContainerFacts, creatorCgroup: bigint | undefined): void {
    if (c.ns.pid !== this.host.pid && !this.byPidNs.has(c.ns.pid) && c.ns.pid !== c.outer?.ns.pid) this.byPidNs.set(c.ns.pid, c);
    if (c.cgroupId > 1n && c.cgroupId !== creatorCgroup && !this.byCgroup.has(c.cgroupId) && c.cgroupId !== c.outer?.cgroupId)
      this.byCgroup.set(c.cgroupId, c);
  }

  /**
   * The container p belongs to by lineage, started or not; null for the host's.
   * Its parent's container if the parent has one (whatever namespaces p moved
   * into since); else, for a line of the host's, the container whose mount or
   * PID namespace or cgroup p entered. Cached on p.
   */
  owner(p: Proc): ContainerFacts | null {
    const o = p.owner;
    if (o !== undefined && (typeof o === 'object' || o === this.epoch)) return cached(p)!;
    let found: ContainerFacts | null = null;
    const parent = p.ppid ? this.procs.parent(p) : undefined;
    const chain: Proc[] = [p];
    let cur = parent;
    // Walks up only while ancestors are not yet cached (a line's first record): bounded. An
    // ancestor known as the host's stays so whenever it was asked: a line's origin does not change.
    for (let i = 0; cur && i < 64; i++) {
      const co = cached(cur);
      if (co !== undefined) {
        found = co;
        break;
      }
      const byInit = this.byInit.get(cur.tgid);
      if (byInit && sameStart(byInit.initStartNs, cur.startNs)) {
        found = byInit;
        break;
      }
      chain.push(cur);
      cur = cur.ppid ? this.procs.parent(cur) : undefined;
    }
    // From the top of the walk down: a host line is found by the namespaces it entered.
    for (let i = chain.length - 1; i >= 0; i--) {
      const q = chain[i];
      const own = this.byInit.get(q.tgid);
      if (own && sameStart(own.initStartNs, q.startNs)) found = own;
      else if (!found) found = this.byNamespaces(q);
      q.owner = found ?? this.epoch;
    }
    return found;
  }

  private byNamespaces(p: Proc): ContainerFacts | null {
    return (
      this.byKey.get(p.ns.mnt) ??
      (p.ns.pid !== this.host.pid ? this.byPidNs.get(p.ns.pid) : undefined) ??
      (p.cgroupId > 1n ? this.byCgroup.get(p.cgroupId) : undefined) ??
      null
    );
  }

  /**
   * The started container whose rules apply to what p does: its owner, or for a
   * nested container not started (or gone), the container that made it.
   */
  actingFor(p: Proc, flags?: number): ContainerFacts | undefined {
    // Neither in a container's namespaces nor followed by the kernel: a host line.
    if (flags !== undefined && (flags & LINE_FLAGS) === 0) return undefined;
    let c: ContainerFacts | undefined = this.owner(p) ?? undefined;
    for (let i = 0; c && i < 16; i++) {
      if (c.status === 'started') return c;
      c = c.outer;
    }
    return undefined;
  }

  /** p: the process after the table applied r. */
  onRecord(r: KernelRecord, p: Proc): LifecycleEvent[] {
    // A host process that entered other namespaces may have entered a container.
    if (((r.kind === 'syscall' && r.syscall === 'setns') || r.kind === 'cgroup_attach') && typeof p.owner === 'number') p.owner = undefined;
    let out: LifecycleEvent[] | undefined;
    if (
      this.waiting > 0 &&
      r.kind !== 'exec' &&
      r.kind !== 'cgroup_mkdir' &&
      r.kind !== 'cgroup_rmdir' &&
      r.kind !== 'cgroup_attach' &&
      !(r.kind === 'syscall' && (r.syscall === 'pivot_root' || r.syscall === 'chroot'))
    ) {
      out = this.activity(p, r.ktime);
    }
    const evs = this.dispatch(r, p);
    return out ? out.concat(evs) : evs;
  }

  /** The first fork, exit or syscall of a deferred container's line: it works without exec'ing. */
  private activity(p: Proc, ktime: bigint): LifecycleEvent[] | undefined {
    const c = this.owner(p);
    if (!c || !c.deferredCreate || !c.reportOnActivity || c.status !== 'created') return undefined;
    c.deferredCreate = false;
    c.reportOnActivity = false;
    this.waiting--;
    c.status = 'started';
    c.startedNs = ktime;
    c.activityStart = true;
    const init = this.procs.get(c.initTgid, c.initStartNs);
    c.entry = init ?? p;
    return [
      { kind: 'created', c, ktime: c.createdNs },
      { kind: 'started', c, ktime, process: c.entry },
    ];
  }

  private dispatch(r: KernelRecord, p: Proc): LifecycleEvent[] {
    switch (r.kind) {
      case 'syscall':
        if ((r.syscall === 'pivot_root' || r.syscall === 'chroot') && r.ret === 0) return this.rootChanged(r.syscall, p, r.ktime);
        return [];
      case 'exec':
        return this.exec(p, r.ktime);
      case 'exit': {
        const c = this.byInit.get(p.tgid);
        if (this.wasEntered(p)) this.entered.delete(p.tgid);
        // An init found by the scan has a start time from /proc, at clock-tick resolution.
        if (!c || !sameStart(c.initStartNs, p.startNs)) return [];
        return this.exit(c, r.ktime, r.exitStatus);
      }
      case 'cgroup_rmdir': {
        if (r.cgroupId === 0n) return [];
        const out: LifecycleEvent[] = [];
        for (const c of this.inCgroup.get(r.cgroupId)) out.push(...this.exit(c, r.ktime));
        return out;
      }
      default:
        return [];
    }
  }

  private rootChanged(how: 'pivot_root' | 'chroot', p: Proc, ktime: bigint): LifecycleEvent[] {
    const key = p.ns.mnt;
    if (key === this.host.mnt || this.byKey.has(key)) return [];
    const chain = this.procs.chain(p, 16);
    let runtimeCall: ContainerFacts['runtimeCall'];
    let manager: ContainerFacts['manager'];
    let creator: Proc | undefined;
    for (const a of chain) {
      // A forked child shows its parent's argv until it execs: only a program
      // exec'd outside the new namespace can be the runtime that made it.
      if (a.execMnt === undefined || a.execMnt === key) continue;
      creator ??= a;
      if (!runtimeCall) {
        const rc = parseOciRuntime(a.argv);
        if (rc && rc.subcommand !== 'exec') runtimeCall = withPid(rc, a.tgid);
      }
      if (!manager) {
        const m = parseManager(a.argv);
        if (m) manager = managerWithPid(m, a.tgid);
      }
    }
    // The container whose line made it: the runtime's, when one made it (a pod's next container
    // may join another's PID namespace, yet runc on the host made it), else the root changer's own.
    const parent = this.procs.parent(p);
    const maker = runtimeCall ? this.procs.get(runtimeCall.pid) : manager ? this.procs.get(manager.pid) : undefined;
    const outer = this.owner(maker ?? p) ?? undefined;
    const c: ContainerFacts = {
      key,
      status: 'created',
      initTgid: p.tgid,
      initStartNs: p.startNs,
      ns: p.ns,
      cgroupId: p.cgroupId,
      rootChange: how,
      runtimeCall,
      manager,
      creator,
      createdNs: ktime,
      startedNs: undefined,
      entry: undefined,
      existing: false,
      deferredCreate: undefined,
      reportOnActivity: undefined,
      outer,
      activityStart: undefined,
      meta: undefined,
    };
    this.register(c, (creator ?? parent)?.cgroupId);
    p.owner = c;
    // Without a runtime's create in its ancestry, a root change is reported
    // when it starts (exec), or else on the first fork, exit or syscall of its
    // line: a sandbox whose children do the work never execs. Image unpackers
    // (docker-untar, storage-untar) chroot in a private mount namespace and
    // never exec either: a host line from an unpacking daemon stays quiet.
    if (!runtimeCall && !manager) {
      c.deferredCreate = true;
      if (outer || !this.fromUnpacker(chain)) {
        c.reportOnActivity = true;
        this.waiting++;
      }
      return [];
    }
    return [{ kind: 'created', c, ktime }];
  }

  /** A line of the host's whose nearest programs include an image-unpacking daemon. */
  private fromUnpacker(chain: Proc[]): boolean {
    for (let i = 0; i < Math.min(chain.length, 4); i++) {
      const a = chain[i];
      if (i > 0 && this.owner(a) !== null) return false;
      const exe = a.exe || (a.argv[0] ?? '');
      if (UNPACKING_DAEMONS.has(basenameOf(exe))) return true;
    }
    return false;
  }

  private exec(p: Proc, ktime: bigint): LifecycleEvent[] {
    const c = this.byKey.get(p.ns.mnt);
    if (!c || c.status === 'exited') return [];
    if (c.status === 'created') {
      const newPidNs = p.ns.pid !== this.host.pid;
      if (p.tgid !== c.initTgid && !(newPidNs && p.nspid === 1)) return [];
      if (p.tgid !== c.initTgid) {
        this.byInit.delete(c.initTgid);
        c.initTgid = p.tgid;
        c.initStartNs = p.startNs;
        this.byInit.set(p.tgid, c);
        p.owner = c;
      }
      if (c.reportOnActivity) {
        c.reportOnActivity = false;
        this.waiting--;
      }
      c.status = 'started';
      c.ns = p.ns;
      if (c.cgroupId !== p.cgroupId) {
        this.inCgroup.delete(c.cgroupId, c);
        this.inCgroup.add(p.cgroupId, c);
        c.cgroupId = p.cgroupId;
      }
      c.startedNs = ktime;
      c.entry = p;
      const started: LifecycleEvent = { kind: 'started', c, ktime, process: p };
      if (!c.deferredCreate) return [started];
      c.deferredCreate = false;
      return [{ kind: 'created', c, ktime: c.createdNs }, started];
    }
    // Started by its line's first activity (no exec yet): the init's first exec is its entrypoint after all.
    if (c.activityStart && p.tgid === c.initTgid) {
      c.activityStart = false;
      c.entry = p;
      return [];
    }
    return this.isEntry(p, c) ? [{ kind: 'exec', c, ktime, process: p }] : [];
  }

  /**
   * Walks up from p while the ancestors are in the container: reaching its init
   * (or a process already reported as entering) means p was born inside; reaching
   * the edge elsewhere means p's line came in from outside through setns.
   */
  private isEntry(p: Proc, c: ContainerFacts): boolean {
    let cur: Proc | undefined = p;
    for (let i = 0; i < 64 && cur; i++) {
      if (cur.tgid === c.initTgid) return false;
      if (cur !== p && this.wasEntered(cur)) return false;
      const parent = this.procs.parent(cur);
      if (!parent || parent.ns.mnt !== c.key) break;
      cur = parent;
    }
    if (this.wasEntered(p)) return false;
    this.entered.set(p.tgid, p.startNs);
    return true;
  }

  private wasEntered(p: Proc): boolean {
    const s = this.entered.get(p.tgid);
    return s !== undefined && sameStart(s, p.startNs);
  }

  private exit(c: ContainerFacts, ktime: bigint, exitStatus?: number): LifecycleEvent[] {
    if (c.status === 'exited') return [];
    const reported = !c.deferredCreate;
    if (c.reportOnActivity) {
      c.reportOnActivity = false;
      this.waiting--;
    }
    c.status = 'exited';
    if (this.byKey.get(c.key) === c) {
      this.byKey.delete(c.key);
      this.inCgroup.delete(c.cgroupId, c);
    }
    if (this.byInit.get(c.initTgid) === c) this.byInit.delete(c.initTgid);
    if (this.byPidNs.get(c.ns.pid) === c) this.byPidNs.delete(c.ns.pid);
    if (this.byCgroup.get(c.cgroupId) === c) this.byCgroup.delete(c.cgroupId);
    return reported ? [{ kind: 'exited', c, ktime, exitStatus }] : [];
  }
}
