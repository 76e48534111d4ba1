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
    start_ns: [0, 8], parent_start_ns: [8, 8], cap_effective: [16, 8], cgroup_id: [24, 8],
    pid: [32, 4], tgid: [36, 4], ppid: [40, 4], nspid: [44, 4],
    uid: [48, 4], euid: [52, 4], gid: [56, 4], egid: [60, 4],
    ns: [64, 32], flags: [96, 4], comm: [104, 16],
  },
} as const);

export const cw_fork = s({
  size: 144,
  fields: { hdr: [0, 16], task: [16, 120], new_ns: [136, 4] },
} as const);

export const cw_exec = s({
  size: 1464,
  fields: {
    hdr: [0, 16], task: [16, 120], exe_ino: [136, 8], exe_mtime: [144, 8], exe_ctime: [152, 8],
    exe_dev: [160, 4], exe_fs_magic: [164, 4], exe_nlink: [168, 4], old_pid: [172, 4],
    args_len: [176, 4], args_truncated: [180, 4], filename: [184, 256], args: [440, 1024],
  },
} as const);

export const cw_exit = s({
  size: 144,
  fields: { hdr: [0, 16], task: [16, 120], exit_code: [136, 4] },
} as const);

export const cw_cgroup = s({
  size: 664,
  fields: {
    hdr: [0, 16], task: [16, 120], cgroup_id: [136, 8], hierarchy_id: [144, 4], level: [148, 4],
    path: [152, 512],
  },
} as const);

export const cw_syscall = s({
  size: 752,
  fields: {
    hdr: [0, 16], task: [16, 120], args: [136, 32], old_ns: [168, 32], sc: [200, 4], ret: [204, 4],
    path0: [208, 256], path1: [464, 256], fstype: [720, 32],
  },
} as const);

export const structs = { cw_hdr, cw_task, cw_fork, cw_exec, cw_exit, cw_cgroup, cw_syscall } as const;

/** enum cw_type */
export const RecordType = {
  FORK: 1, EXEC: 2, EXIT: 3, CGROUP_MKDIR: 4, CGROUP_RMDIR: 5, CGROUP_ATTACH: 6, SYSCALL: 7,
} as const;
export const RECORD_TYPE_MAX = 8;

/** enum cw_ns, in slot order. */
export const NS_NAMES = ['mnt', 'pid', 'net', 'uts', 'ipc', 'cgroup', 'user', 'time'] as const;
export type NsName = (typeof NS_NAMES)[number];

/** enum cw_task_flags */
export const TaskFlag = { IN_CONTAINER: 1, FOLLOWED: 2, LEADER: 4 } as const;

/** enum cw_sc */
export const SYSCALL_NAMES = [
  '', 'setns', 'unshare', 'mount', 'chroot', 'pivot_root', 'ptrace', 'open_write', 'connect_unix', 'init_module', 'finit_module',
] as const;
export type SyscallName = Exclude<(typeof SYSCALL_NAMES)[number], ''>;

/** Size of the exec record before args[]. */
export const EXEC_FIXED_SIZE = cw_exec.fields.args[0];

/** enum cw_stat: slot names of the kernel's per-CPU counters. */
export const STAT_PENDING_FULL = RECORD_TYPE_MAX * 2;
export function statNames(): string[] {
  const names: string[] = [];
  const types = ['none', 'fork', 'exec', 'exit', 'cgroup_mkdir', 'cgroup_rmdir', 'cgroup_attach', 'syscall'];
  for (const t of types) names.push(`sent_${t}`, `dropped_${t}`);
  names.push('syscall_pending_full', 'follow_set_full', 'args_fault', 'wakeups');
  return names;
}
