import type { KillClass, KillOutcome, KillReason, NsName, SyscallName } from './layout';

/** The decoded form of the records in bpf/ctrwatch.h. */

export type Namespaces = Record<NsName, number>;

export interface TaskInfo {
  pid: number;
  tgid: number;
  ppid: number;
  /** tgid as seen inside its own pid namespace (1 for a container's init). */
  nspid: number;
  uid: number;
  euid: number;
  gid: number;
  egid: number;
  /** Start time (CLOCK_BOOTTIME ns): with tgid, the identity that survives pid reuse. */
  startNs: bigint;
  parentStartNs: bigint;
  capEffective: bigint;
  /** kernfs id of its cgroup in the tracked hierarchy. */
  cgroupId: bigint;
  ns: Namespaces;
  flags: number;
  comm: string;
}

interface Base {
  /** CLOCK_MONOTONIC ns when the kernel made the record. */
  ktime: bigint;
  cpu: number;
  task: TaskInfo;
}

export interface ForkRecord extends Base {
  kind: 'fork';
  /** Namespaces in which the child differs from its parent. */
  newNs: NsName[];
  /**
   * The kernel held this fork back (its parent ran what it exec'd, the child shared all its
   * namespaces and cgroup) and sent it when the child forked in turn: the task as it is then,
   * newNs empty.
   */
  late: boolean;
}

export interface ExecRecord extends Base {
  kind: 'exec';
  filename: string;
  argv: string[];
  argsTruncated: boolean;
  oldPid: number;
  exe: { ino: bigint; dev: number; fsMagic: number; nlink: number; mtime: number; ctime: number };
}

export interface ExitRecord extends Base {
  kind: 'exit';
  /** Wait status: (code << 8) | signal. */
  exitStatus: number;
}

export interface CgroupRecord extends Base {
  kind: 'cgroup_mkdir' | 'cgroup_rmdir' | 'cgroup_attach';
  cgroupId: bigint;
  hierarchyId: number;
  level: number;
  path: string;
}

/** What the kernel did about an escape action (struct cw_kill); absent when the record is no containment class. */
export interface KernelKill {
  cls: KillClass;
  /** undefined: the class was armed for report only. */
  outcome?: KillOutcome;
  reason?: KillReason;
  /** As armed when decided: 0 report, 1 kill, 2 dry-run. */
  arm: number;
  /** reason send_error: bpf_send_signal's -errno. */
  err: number;
}

export interface SyscallRecord extends Base {
  kind: 'syscall';
  kill?: KernelKill;
  syscall: SyscallName;
  ret: number;
  args: bigint[];
  oldNs: Namespaces;
  path0: string;
  path1: string;
  fstype: string;
}

/** The process an object record names (proc/<pid>/mem, a pidfd, process_vm_writev's pid). */
export interface ObjectTarget {
  /** Host pid, or with `vpid` the pid number as the actor's pid namespace sees it. */
  tgid: number;
  vpid: boolean;
  /** The target's own pid namespace (vpid: the actor's). */
  pidns: number;
  /** In the actor's pid namespace or one nested in it (kernel's view; false when vpid). */
  inNs: boolean;
  startNs: bigint;
}

/** What a syscall touched, read from kernel objects at its exit (struct cw_obj). */
export interface ObjectRecord extends Base {
  kind: 'object';
  kill?: KernelKill;
  syscall: SyscallName;
  ret: number;
  /** The call's flags (open flags, mount flags, open_tree flags…). */
  arg: bigint;
  /** Superblock: device (kernel encoding major << 20 | minor), magic, type name. */
  dev: number;
  magic: number;
  fstype: string;
  /** Inode of the file, mount root or new root. */
  ino: bigint;
  fMode: number;
  /** enum cw_obj_flags */
  flags: number;
  mntId: number;
  /** Dentry names from the superblock's root down ('sys/kernel/core_pattern' as ['sys', 'kernel', 'core_pattern']). */
  chain: string[];
  chainTruncated: boolean;
  /** The path as passed, for messages only. */
  path: string;
  target?: ObjectTarget;
  /** chroot/pivot_root: root (device, inode) of the container's init, or the actor's own before the call; beneath: the new root is it or below it. */
  ref?: { dev: number; ino: bigint; beneath: boolean };
}

/** A signal or ptrace aimed at the sensor. task: the sender or tracer. */
export interface GuardRecord extends Base {
  kind: 'guard';
  kill?: KernelKill;
  what: 'signal' | 'ptrace';
  /** The sensor's thread aimed at. */
  targetTid: number;
  /** signal: its number; ptrace: the request (PTRACE_ATTACH 16, PTRACE_SEIZE 0x4206). */
  sig: number;
  /** signal: si_code. */
  code: number;
  /** signal: TRACE_SIGNAL_* (0 delivered, 1 ignored, 2 already pending, …); ptrace: the return value. */
  result: number;
}

/** A connect decided from the socket object at sys_exit. */
export interface ConnectRecord extends Base {
  kind: 'connect';
  family: 'unix' | 'inet' | 'inet6';
  ret: number;
  fd: number;
  /** unix: the peer's bound file, the kernel's s_dev encoding (major << 20 | minor). */
  peerDev: number;
  peerIno: bigint;
  /** unix: the name the server bound (not the client's path). */
  peerPath: string;
  /** inet/inet6: destination port and address. */
  port: number;
  addr: string;
}

/** An io_uring submission of a watched opcode (open, connect, socket). */
export interface UringRecord extends Base {
  kind: 'uring';
  opcode: number;
  userData: bigint;
  sqThread: boolean;
}

export type KernelRecord =
  ForkRecord | ExecRecord | ExitRecord | CgroupRecord | SyscallRecord | ObjectRecord | GuardRecord | ConnectRecord | UringRecord;

export interface DecodeError {
  offset: number;
  reason: string;
}

export interface DecodedBatch {
  records: KernelRecord[];
  errors: DecodeError[];
}
