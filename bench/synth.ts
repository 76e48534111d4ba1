/**
 * Synthetic kernel records in the kernel's layout (src/decode/encode.ts writes the
 * bytes), and whole container lives as runc makes them: runc create (a host
 * exec) → cgroup mkdir → fork of runc init into new namespaces → pivot_root →
 * exec of the entrypoint, then processes inside (fork, exec), then exits and
 * the cgroup's removal. Every container gets its own mount, pid, net, uts, ipc
 * and cgroup namespace inodes and its own pids.
 */
import { encodeRecord } from '../src/decode/encode';
import { NS_NAMES, RecordType, SYSCALL_NAMES, TaskFlag, type SyscallName } from '../src/decode/layout';
import type { Namespaces, TaskInfo } from '../src/decode/records';
import type { HostFacts } from '../src/host';

/** The host namespaces of the synthetic node (those of test/support/records.ts). */
export const HOST_NS: Namespaces = {
  mnt: 4026531841,
  pid: 4026531836,
  net: 4026531840,
  uts: 4026531838,
  ipc: 4026531839,
  cgroup: 4026531835,
  user: 4026531837,
  time: 4026531834,
};

export const SYNTH_HOST: HostFacts = {
  hostNs: NS_NAMES.map((n) => HOST_NS[n]),
  nsSource: 'pid1',
  // No mount: nothing is walked or read from the real cgroup tree.
  cgroup: { mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' },
  bootId: 'bench-synthetic',
};

const FULL_CAPS = 0x1ffffffffffn;
const DEFAULT_CAPS = 0xa80425fbn; // runc's default set

const EXE = { dev: 66, fsMagic: 0x794c7630, nlink: 1, mtime: 1700000000, ctime: 1700000001 };
const CGROUP_KINDS = { 4: 'cgroup_mkdir', 5: 'cgroup_rmdir', 6: 'cgroup_attach' } as const;

export function forkRecord(t: TaskInfo, ktime: bigint, newNsMask = 0): Buffer {
  return encodeRecord({
    kind: 'fork',
    ktime,
    cpu: t.pid & 1,
    task: t,
    newNs: NS_NAMES.filter((_, i) => newNsMask & (1 << i)),
    late: false,
  });
}

export function execRecord(t: TaskInfo, ktime: bigint, filename: string, argv: string[]): Buffer {
  const exe = { ...EXE, ino: 1234n + BigInt(filename.length) };
  return encodeRecord({ kind: 'exec', ktime, cpu: t.pid & 1, task: t, filename, argv, argsTruncated: false, oldPid: t.pid, exe });
}

export function exitRecord(t: TaskInfo, ktime: bigint, status = 0): Buffer {
  return encodeRecord({ kind: 'exit', ktime, cpu: t.pid & 1, task: t, exitStatus: status });
}

export function cgroupRecord(type: 4 | 5 | 6, path: string, id: bigint, t: TaskInfo, ktime: bigint, level = 2): Buffer {
  return encodeRecord({ kind: CGROUP_KINDS[type], ktime, cpu: t.pid & 1, task: t, cgroupId: id, hierarchyId: 0, level, path });
}

export function syscallRecord(
  sc: number,
  ret: number,
  args: bigint[],
  t: TaskInfo,
  ktime: bigint,
  oldNs: Namespaces,
  paths: [string, string, string],
): Buffer {
  const syscall = SYSCALL_NAMES[sc] as SyscallName;
  return encodeRecord({
    kind: 'syscall',
    ktime,
    cpu: t.pid & 1,
    task: t,
    syscall,
    ret,
    args,
    oldNs,
    path0: paths[0],
    path1: paths[1],
    fstype: paths[2],
  });
}

const SC_PIVOT_ROOT = 5;

/** argv of the processes a container runs after its entrypoint: typical service commands. */
const INSIDE = [
  ['/bin/sh', '-c', 'exec nginx -g "daemon off;"'],
  ['/usr/sbin/nginx', '-g', 'daemon off;'],
  ['/usr/local/bin/python3', '-m', 'gunicorn', '--bind', '0.0.0.0:8000', '--workers', '4', 'app.wsgi:application'],
  ['/usr/local/bin/node', '/app/server.js', '--port', '3000'],
  ['/bin/cat', '/etc/hostname'],
  ['/usr/bin/curl', '-fsS', 'http://127.0.0.1:8080/healthz'],
];

/**
 * Makes container lives with fresh pids, start times, namespace inodes and
 * cgroup ids. The node has one "shim" host process (pid 900) above every
 * runc create, as containerd's shim or a test harness would be.
 */
export class Synth {
  private pid: number;
  private ns = 4_100_000_000;
  private cg = 1_000_000n;
  private kt = 1_000_000_000n;
  private n = 0;
  private readonly shim: TaskInfo;

  /**
   * pidBase: the first pid given out; the shim has the one before it, or 900 by default.
   * Above the kernel's pid limit (PID_MAX_LIMIT, 4,194,304) no real process has any of them, so
   * a pipeline that reads /proc for the shim finds it gone, as a runtime process that has exited.
   */
  constructor(
    readonly bundle: string,
    pidBase = 100_000,
  ) {
    this.pid = pidBase;
    const shim = pidBase === 100_000 ? 900 : pidBase - 1;
    this.shim = this.task({ tgid: shim, ppid: 1, comm: 'shim', flags: TaskFlag.LEADER, ns: HOST_NS });
  }

  private ktime(): bigint {
    this.kt += 20_000n;
    return this.kt;
  }

  private task(o: {
    tgid: number;
    ppid: number;
    comm: string;
    flags: number;
    ns: Namespaces;
    parentStartNs?: bigint;
    nspid?: number;
    cgroupId?: bigint;
    caps?: bigint;
  }): TaskInfo {
    return {
      pid: o.tgid,
      tgid: o.tgid,
      ppid: o.ppid,
      nspid: o.nspid ?? o.tgid,
      uid: 0,
      euid: 0,
      gid: 0,
      egid: 0,
      startNs: BigInt(o.tgid) * 1_000_000n,
      parentStartNs: o.parentStartNs ?? BigInt(o.ppid) * 1_000_000n,
      capEffective: o.caps ?? FULL_CAPS,
      cgroupId: o.cgroupId ?? 1n,
      ns: o.ns,
      flags: o.flags,
      comm: o.comm,
    };
  }

  /** The runc create, cgroup, fork, pivot_root, entry exec of one container, and `inside` more processes (fork + exec each). */
  start(inside: number): {
    records: Buffer[];
    init: TaskInfo;
    procs: TaskInfo[];
    runc: TaskInfo;
    cgroupId: bigint;
    cgroupPath: string;
    id: string;
  } {
    const i = this.n++;
    const id = `bench${i.toString(16).padStart(8, '0')}`;
    const out: Buffer[] = [];
    const runc = this.task({
      tgid: this.pid++,
      ppid: this.shim.tgid,
      comm: 'runc',
      flags: TaskFlag.LEADER,
      ns: HOST_NS,
      parentStartNs: this.shim.startNs,
    });
    out.push(
      execRecord(runc, this.ktime(), '/usr/sbin/runc', [
        'runc',
        '--root',
        '/run/runc',
        'create',
        '--bundle',
        this.bundle,
        '--pid-file',
        `${this.bundle}/${id}.pid`,
        id,
      ]),
    );
    const cgroupId = this.cg++;
    const cgroupPath = `/bench.slice/${id}`;
    out.push(cgroupRecord(RecordType.CGROUP_MKDIR, cgroupPath, cgroupId, runc, this.ktime()));
    const base = this.ns;
    this.ns += 8;
    const cns: Namespaces = {
      mnt: base,
      pid: base + 1,
      net: base + 2,
      uts: base + 3,
      ipc: base + 4,
      cgroup: base + 5,
      user: HOST_NS.user,
      time: HOST_NS.time,
    };
    const init = this.task({
      tgid: this.pid++,
      ppid: runc.tgid,
      parentStartNs: runc.startNs,
      nspid: 1,
      comm: 'runc:[2:INIT]',
      cgroupId,
      flags: TaskFlag.LEADER | TaskFlag.FOLLOWED | TaskFlag.IN_CONTAINER,
      ns: cns,
      caps: DEFAULT_CAPS,
    });
    out.push(forkRecord(init, this.ktime(), 0b111111));
    out.push(syscallRecord(SC_PIVOT_ROOT, 0, [0n, 0n, 0n, 0n], init, this.ktime(), cns, ['.', '.', '']));
    out.push(execRecord(init, this.ktime(), '/bin/sleep', ['sleep', 'infinity']));
    const procs: TaskInfo[] = [init];
    for (let k = 0; k < inside; k++) {
      const p = this.task({
        tgid: this.pid++,
        ppid: init.tgid,
        parentStartNs: init.startNs,
        nspid: k + 2,
        comm: 'sh',
        cgroupId,
        flags: TaskFlag.LEADER | TaskFlag.FOLLOWED | TaskFlag.IN_CONTAINER,
        ns: cns,
        caps: DEFAULT_CAPS,
      });
      out.push(forkRecord(p, this.ktime()));
      const argv = INSIDE[k % INSIDE.length];
      out.push(execRecord(p, this.ktime(), argv[0], argv));
      procs.push(p);
    }
    return { records: out, init, procs, runc, cgroupId, cgroupPath, id };
  }

  /** Exits of procs (init last) and the cgroup's removal. */
  stop(c: { procs: TaskInfo[]; runc: TaskInfo; cgroupId: bigint; cgroupPath: string }): Buffer[] {
    const out: Buffer[] = [];
    for (const p of [...c.procs.slice(1), c.procs[0]]) out.push(exitRecord(p, this.ktime(), 0));
    out.push(cgroupRecord(RecordType.CGROUP_RMDIR, c.cgroupPath, c.cgroupId, c.runc, this.ktime()));
    return out;
  }

  /** A whole life: start, `inside` processes, their exits, init's exit, cgroup rmdir. */
  life(inside: number): Buffer[] {
    const c = this.start(inside);
    return [...c.records, ...this.stop(c)];
  }

  /** An ordinary host exec (the kernel sends these for every host process). */
  hostExec(): Buffer {
    const argv = INSIDE[this.n++ % INSIDE.length];
    const t = this.task({
      tgid: this.pid++,
      ppid: this.shim.tgid,
      parentStartNs: this.shim.startNs,
      comm: 'sh',
      flags: TaskFlag.LEADER,
      ns: HOST_NS,
    });
    return execRecord(t, this.ktime(), argv[0], argv);
  }
}

/** Concatenates records into kernel-like batches of at most `per` records. */
export function batches(records: Buffer[], per: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < records.length; i += per) out.push(Buffer.concat(records.slice(i, i + per)));
  return out;
}
