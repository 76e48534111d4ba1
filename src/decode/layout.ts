/**
 * Byte layout of the records in bpf/ctrwatch.h. The decoder reads offsets from
 * here only, and test/unit/layout.test.ts checks every entry against the BTF
 * of the built BPF object, so the two sides cannot drift apart.
 */

/** [offset, size] of a field inside its struct. */
export type Field = readonly [offset: number, size: number];

export interface StructLayout {
  readonly size: number;
  readonly fields: Readonly<Record<string, Field>>;
}

const s = <T extends StructLayout>(l: T): T => l;

export const cw_hdr = s({
  size: 16,
  fields: { type: [0, 2], size: [2, 2], cpu: [4, 4], ktime: [8, 8] },
} as const);

export const cw_task = s({
  size: 120,
  fields: {
    start_ns: [0, 8],
    parent_start_ns: [8, 8],
    cap_effective: [16, 8],
    cgroup_id: [24, 8],
    pid: [32, 4],
    tgid: [36, 4],
    ppid: [40, 4],
    nspid: [44, 4],
    uid: [48, 4],
    euid: [52, 4],
    gid: [56, 4],
    egid: [60, 4],
    ns: [64, 32],
    flags: [96, 4],
    comm: [104, 16],
  },
} as const);

export const cw_fork = s({
  size: 144,
  fields: { hdr: [0, 16], task: [16, 120], new_ns: [136, 4], late: [140, 4] },
} as const);

export const cw_exec = s({
  size: 1472,
  fields: {
    hdr: [0, 16],
    task: [16, 120],
    exe_ino: [136, 8],
    exe_mtime: [144, 8],
    exe_ctime: [152, 8],
    exe_dev: [160, 4],
    exe_fs_magic: [164, 4],
    exe_nlink: [168, 4],
    old_pid: [172, 4],
    args_len: [176, 4],
    args_truncated: [180, 4],
    filename_len: [184, 4],
    data: [192, 1280],
  },
} as const);

export const cw_exit = s({
  size: 144,
  fields: { hdr: [0, 16], task: [16, 120], exit_code: [136, 4] },
} as const);

export const cw_cgroup = s({
  size: 664,
  fields: {
    hdr: [0, 16],
    task: [16, 120],
    cgroup_id: [136, 8],
    hierarchy_id: [144, 4],
    level: [148, 4],
    path: [152, 512],
  },
} as const);

/** What the kernel did about one escape action (struct cw_kill): the last 8 bytes of cw_syscall, cw_obj and cw_guard. */
export const cw_kill = s({
  size: 8,
  fields: { cls: [0, 1], outcome: [1, 1], reason: [2, 1], arm: [3, 1], err: [4, 4] },
} as const);

export const cw_syscall = s({
  size: 760,
  fields: {
    hdr: [0, 16],
    task: [16, 120],
    args: [136, 32],
    old_ns: [168, 32],
    sc: [200, 4],
    ret: [204, 4],
    path0: [208, 256],
    path1: [464, 256],
    fstype: [720, 32],
    kill: [752, 8],
  },
} as const);

export const cw_obj = s({
  size: 760,
  fields: {
    hdr: [0, 16],
    task: [16, 120],
    sc: [136, 4],
    ret: [140, 4],
    arg: [144, 8],
    ino: [152, 8],
    target_start_ns: [160, 8],
    ref_ino: [168, 8],
    dev: [176, 4],
    magic: [180, 4],
    f_mode: [184, 4],
    oflags: [188, 4],
    mnt_id: [192, 4],
    target_tgid: [196, 4],
    target_pidns: [200, 4],
    ref_dev: [204, 4],
    fstype: [208, 32],
    chain: [240, 256],
    path: [496, 256],
    kill: [752, 8],
  },
} as const);

/** cw_obj.chain: CW_CHAIN_DEPTH names of CW_NAME_LEN bytes. */
export const CHAIN_DEPTH = 8;
export const NAME_LEN = 32;

export const cw_guard = s({
  size: 168,
  fields: {
    hdr: [0, 16],
    task: [16, 120],
    what: [136, 4],
    target_tid: [140, 4],
    sig: [144, 4],
    code: [148, 4],
    result: [152, 4],
    kill: [160, 8],
  },
} as const);

export const cw_connect = s({
  size: 296,
  fields: {
    hdr: [0, 16],
    task: [16, 120],
    peer_ino: [136, 8],
    peer_dev: [144, 4],
    peer_kind: [148, 4],
    ret: [152, 4],
    fd: [156, 4],
    family: [160, 2],
    port: [162, 2],
    addr: [168, 16],
    path: [184, 112],
  },
} as const);

export const cw_uring = s({
  size: 152,
  fields: { hdr: [0, 16], task: [16, 120], user_data: [136, 8], opcode: [144, 4], sq_thread: [148, 4] },
} as const);

export const structs = {
  cw_hdr,
  cw_task,
  cw_fork,
  cw_exec,
  cw_exit,
  cw_cgroup,
  cw_kill,
  cw_syscall,
  cw_obj,
  cw_guard,
  cw_connect,
  cw_uring,
} as const;

/** enum cw_kill_class, by value (index 0: none). Names are the counters' and the decoder's. */
export const KILL_CLASSES = [
  '',
  'control_write',
  'setns_host',
  'mount_cgroup',
  'mount_device',
  'root_host',
  'ptrace_host',
  'proc_mem',
  'bpf',
  'sensor_signal',
] as const;
export type KillClass = Exclude<(typeof KILL_CLASSES)[number], ''>;
/** enum cw_kill_outcome, by value (index 0: not armed). */
export const KILL_OUTCOMES = ['', 'killed', 'would_kill', 'failed', 'spared', 'denied'] as const;
export type KillOutcome = Exclude<(typeof KILL_OUTCOMES)[number], ''>;
/** enum cw_kill_reason, by value. */
export const KILL_REASONS = [
  '',
  'not_container',
  'allowlisted',
  'host_init',
  'kthread',
  'self',
  'no_helper',
  'send_error',
  'inside',
] as const;
export type KillReason = Exclude<(typeof KILL_REASONS)[number], ''>;
/** enum cw_arm */
export const Arm = { REPORT: 0, KILL: 1, DRY_RUN: 2 } as const;
/** enum cw_container_verdict */
export const ContainerVerdict = { UNKNOWN: 0, ARMED: 1, SPARED: 2 } as const;

/** enum cw_type */
export const RecordType = {
  FORK: 1,
  EXEC: 2,
  EXIT: 3,
  CGROUP_MKDIR: 4,
  CGROUP_RMDIR: 5,
  CGROUP_ATTACH: 6,
  SYSCALL: 7,
  OBJECT: 8,
  GUARD: 12,
  CONNECT: 13,
  URING: 14,
} as const;
export const RECORD_TYPE_MAX = 16;

/** enum cw_guard_what */
export const GuardWhat = { SIGNAL: 1, PTRACE: 2 } as const;
/** enum cw_peer_kind */
export const PeerKind = { UNIX_PATH: 1, INET: 2 } as const;

/** enum cw_ns, in slot order. */
export const NS_NAMES = ['mnt', 'pid', 'net', 'uts', 'ipc', 'cgroup', 'user', 'time'] as const;
export type NsName = (typeof NS_NAMES)[number];

/** enum cw_task_flags */
export const TaskFlag = { IN_CONTAINER: 1, FOLLOWED: 2, LEADER: 4 } as const;

/** enum cw_obj_flags */
export const ObjFlag = {
  BDEV: 1,
  SB_ROOT: 2,
  CHAIN_TRUNC: 4,
  RDONLY: 8,
  TARGET: 16,
  TARGET_IN_NS: 32,
  TARGET_VPID: 64,
  REF: 128,
  FILE: 256,
  REF_BENEATH: 512,
  MNT_SUBTREE: 1024,
  TOKEN: 2048,
} as const;

/** enum cw_sc: index = value; '' where a value is unused (CW_SC_MAX is the length). 16–31 are
 * the doors read from kernel objects, 32–47 the sensor's guard calls. */
export const SYSCALL_NAMES = [
  '',
  'setns',
  'unshare',
  'mount',
  'chroot',
  'pivot_root',
  'ptrace',
  'open_write',
  'connect_unix',
  'init_module',
  'finit_module',
  '',
  '',
  '',
  '',
  '',
  'open',
  'openat',
  'openat2',
  'creat',
  'fsmount',
  'move_mount',
  'open_tree',
  'process_vm_writev',
  'pidfd_getfd',
  'mount_setattr',
  'open_by_handle_at',
  'exec',
  '',
  '',
  '',
  '',
  'bpf',
  'io_uring_setup',
  '',
  '',
  '',
  '',
  '',
  '',
  '',
  '',
  '',
  '',
  '',
  '',
  '',
  '',
] as const;
export type SyscallName = Exclude<(typeof SYSCALL_NAMES)[number], ''>;
export const SYSCALL_MAX = SYSCALL_NAMES.length;

/** Size of the exec record before data[] (the filename, then argv). */
export const EXEC_FIXED_SIZE = cw_exec.fields.data[0];
/** CW_FILENAME_LEN and CW_ARGS_LEN: the most of data[] the filename (its NUL included) and argv take. */
export const EXEC_FILENAME_MAX = 256;
export const EXEC_ARGS_MAX = cw_exec.fields.data[1] - EXEC_FILENAME_MAX;

/** enum cw_stat: slot names of the kernel's per-CPU counters. */
export const STAT_PENDING_FULL = RECORD_TYPE_MAX * 2;
/** Counter names of the per-type slots, by enum cw_type value (unused values are type<N>). */
const TYPE_NAMES: Record<number, string> = {
  0: 'none',
  1: 'fork',
  2: 'exec',
  3: 'exit',
  4: 'cgroup_mkdir',
  5: 'cgroup_rmdir',
  6: 'cgroup_attach',
  7: 'syscall',
  8: 'object',
  12: 'guard',
  13: 'connect',
  14: 'uring',
};
export function statNames(): string[] {
  const names: string[] = [];
  for (let t = 0; t < RECORD_TYPE_MAX; t++) {
    const n = TYPE_NAMES[t] ?? `type${t}`;
    names.push(`sent_${n}`, `dropped_${n}`);
  }
  // Per-ring counters are not named dropped_*: the per-type ones already sum every drop.
  names.push(
    'syscall_pending_full',
    'follow_set_full',
    'args_fault',
    'wakeups',
    'failed_unfollowed',
    'rate_limited',
    'ring_bulk_sent',
    'ring_bulk_dropped',
    'ring_prio_sent',
    'ring_prio_dropped',
    'uring_submits',
    'forks_held',
  );
  // CW_STAT_KILL(class, outcome): one slot per class and outcome, both from 1.
  for (const c of KILL_CLASSES.slice(1)) for (const o of KILL_OUTCOMES.slice(1)) names.push(`kill_${c}_${o}`);
  return names;
}
