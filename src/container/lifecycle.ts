import { NS_NAMES } from '../decode/layout';
import type { KernelRecord, Namespaces } from '../decode/records';
import type { Proc, ProcessTable } from '../process/table';
import { parseManager, parseOciRuntime, type ManagerCall, type OciRuntimeCall } from './runtime-cli';

/**
 * Containers from kernel facts, whoever made them (design.md):
 * - created: a process in a mount namespace that is not the host's changes its
 *   root (pivot_root or chroot) — the runtime has built the container;
 * - started: that process (or PID 1 of its new pid namespace) execs the entrypoint;
 * - exec: a process that entered the container's namespaces from outside
 *   (runc exec, docker exec, nsenter) execs there;
 * - exited: the init exits, or the container's cgroup is removed.
 * A mount namespace without a new root (`unshare -m` by a service) is not a container.
 */

export type HostNs = 'PID' | 'NET' | 'IPC' | 'UTS' | 'MNT' | 'CGROUP' | 'USER';
const HOST_NS: [keyof Namespaces, HostNs][] = [
  ['pid', 'PID'], ['net', 'NET'], ['ipc', 'IPC'], ['uts', 'UTS'], ['mnt', 'MNT'], ['cgroup', 'CGROUP'], ['user', 'USER'],
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
  /** Created with no runtime in sight: reported together with its start, or never. */
  deferredCreate?: boolean;
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

const procKey = (p: Proc) => `${p.tgid}:${p.startNs}`;

export class Lifecycle {
  private readonly byKey = new Map<number, ContainerFacts>();
  private readonly byInit = new Map<number, ContainerFacts>();
  /** Processes that entered a container from outside and were reported. */
  private readonly entered = new Set<string>();

  constructor(private readonly procs: ProcessTable, private readonly host: Namespaces) {}

  running(): ContainerFacts[] {
    return [...this.byKey.values()];
  }

  get(key: number): ContainerFacts | undefined {
    return this.byKey.get(key);
  }

  /** Containers found by the startup scan: known, reported once, never as new. */
  adopt(c: ContainerFacts): void {
    this.byKey.set(c.key, c);
    this.byInit.set(c.initTgid, c);
  }

  /** p: the process after the table applied r. */
  onRecord(r: KernelRecord, p: Proc): LifecycleEvent[] {
    switch (r.kind) {
      case 'syscall':
        if ((r.syscall === 'pivot_root' || r.syscall === 'chroot') && r.ret === 0) return this.rootChanged(r.syscall, p, r.ktime);
        return [];
      case 'exec':
        return this.exec(p, r.ktime);
      case 'exit': {
        const c = this.byInit.get(p.tgid);
        this.entered.delete(procKey(p));
        if (!c || c.initStartNs !== p.startNs) return [];
        return this.exit(c, r.ktime, r.exitStatus);
      }
      case 'cgroup_rmdir': {
        const out: LifecycleEvent[] = [];
        for (const c of this.byKey.values()) {
          if (c.cgroupId === r.cgroupId && c.cgroupId !== 0n) out.push(...this.exit(c, r.ktime));
        }
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
        if (rc && rc.subcommand !== 'exec') runtimeCall = { ...rc, pid: a.tgid };
      }
      if (!manager) {
        const m = parseManager(a.argv);
        if (m) manager = { ...m, pid: a.tgid };
      }
    }
    const c: ContainerFacts = {
      key, status: 'created', initTgid: p.tgid, initStartNs: p.startNs, ns: p.ns, cgroupId: p.cgroupId,
      rootChange: how, runtimeCall, manager, creator, createdNs: ktime, existing: false,
    };
    this.byKey.set(key, c);
    this.byInit.set(p.tgid, c);
    // Without a runtime's create in its ancestry, a root change alone is not
    // yet a container: image unpackers (docker-untar, storage-untar) chroot in
    // a private mount namespace and never exec. Report it when it starts.
    if (!runtimeCall && !manager) {
      c.deferredCreate = true;
      return [];
    }
    return [{ kind: 'created', c, ktime }];
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
      }
      c.status = 'started';
      c.ns = p.ns;
      c.cgroupId = p.cgroupId;
      c.startedNs = ktime;
      c.entry = p;
      const started: LifecycleEvent = { kind: 'started', c, ktime, process: p };
      if (!c.deferredCreate) return [started];
      c.deferredCreate = false;
      return [{ kind: 'created', c, ktime: c.createdNs }, started];
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
      if (cur !== p && this.entered.has(procKey(cur))) return false;
      const parent = this.procs.parent(cur);
      if (!parent || parent.ns.mnt !== c.key) break;
      cur = parent;
    }
    if (this.entered.has(procKey(p))) return false;
    this.entered.add(procKey(p));
    return true;
  }

  private exit(c: ContainerFacts, ktime: bigint, exitStatus?: number): LifecycleEvent[] {
    if (c.status === 'exited') return [];
    const reported = !c.deferredCreate;
    c.status = 'exited';
    this.byKey.delete(c.key);
    if (this.byInit.get(c.initTgid) === c) this.byInit.delete(c.initTgid);
    return reported ? [{ kind: 'exited', c, ktime, exitStatus }] : [];
  }
}
