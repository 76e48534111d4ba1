import { CHAIN_DEPTH, cw_cgroup, cw_connect, cw_exec, cw_exit, cw_fork, cw_guard, cw_hdr, cw_obj, cw_syscall, cw_task, cw_uring, EXEC_FIXED_SIZE, NAME_LEN, NS_NAMES, ObjFlag, RecordType, SYSCALL_NAMES } from '../../src/decode/layout';
import type { TaskInfo } from '../../src/decode/records';

/** Builds records in the kernel's byte layout, for unit tests without a kernel. */

export function task(over: Partial<TaskInfo> = {}): TaskInfo {
  return {
    pid: 100, tgid: 100, ppid: 1, nspid: 100, uid: 0, euid: 0, gid: 0, egid: 0,
    startNs: 1_000_000_000n, parentStartNs: 5_000_000n, capEffective: 0x1ffffffffffn, cgroupId: 1n,
    ns: { mnt: 4026531841, pid: 4026531836, net: 4026531840, uts: 4026531838, ipc: 4026531839, cgroup: 4026531835, user: 4026531837, time: 4026531834 },
    flags: 4, comm: 'sh',
    ...over,
  };
}

function cstr(buf: Buffer, at: number, len: number, s: string) {
  buf.write(s.slice(0, len - 1), at, 'utf8');
}

function hdr(buf: Buffer, type: number, size: number, ktime = 42n, cpu = 1) {
  buf.writeUInt16LE(type, cw_hdr.fields.type[0]);
  buf.writeUInt16LE(size, cw_hdr.fields.size[0]);
  buf.writeUInt32LE(cpu, cw_hdr.fields.cpu[0]);
  buf.writeBigUInt64LE(ktime, cw_hdr.fields.ktime[0]);
}

function putTask(buf: Buffer, at: number, t: TaskInfo) {
  const F = cw_task.fields;
  buf.writeBigUInt64LE(t.startNs, at + F.start_ns[0]);
  buf.writeBigUInt64LE(t.parentStartNs, at + F.parent_start_ns[0]);
  buf.writeBigUInt64LE(t.capEffective, at + F.cap_effective[0]);
  buf.writeBigUInt64LE(t.cgroupId, at + F.cgroup_id[0]);
  for (const k of ['pid', 'tgid', 'ppid', 'nspid', 'uid', 'euid', 'gid', 'egid', 'flags'] as const) {
    buf.writeUInt32LE(t[k], at + F[k][0]);
  }
  NS_NAMES.forEach((n, i) => buf.writeUInt32LE(t.ns[n], at + F.ns[0] + 4 * i));
  cstr(buf, at + F.comm[0], F.comm[1], t.comm);
}

const TASK_AT = cw_fork.fields.task[0];

export function forkRecord(t = task(), newNsMask = 0): Buffer {
  const b = Buffer.alloc(cw_fork.size);
  hdr(b, RecordType.FORK, cw_fork.size);
  putTask(b, TASK_AT, t);
  b.writeUInt32LE(newNsMask, cw_fork.fields.new_ns[0]);
  return b;
}

export function execRecord(t = task(), filename = '/bin/sh', argv: string[] = ['sh', '-c', 'true'], truncated = false, exe: { nlink?: number; fsMagic?: number } = {}): Buffer {
  const args = Buffer.from(argv.join('\0') + '\0');
  const len = Math.min(args.length, cw_exec.fields.args[1]);
  const size = EXEC_FIXED_SIZE + ((len + 7) & ~7);
  const b = Buffer.alloc(size);
  hdr(b, RecordType.EXEC, size);
  putTask(b, TASK_AT, t);
  const F = cw_exec.fields;
  b.writeBigUInt64LE(1234n, F.exe_ino[0]);
  b.writeBigInt64LE(1700000000n, F.exe_mtime[0]);
  b.writeBigInt64LE(1700000001n, F.exe_ctime[0]);
  b.writeUInt32LE(66, F.exe_dev[0]);
  b.writeUInt32LE(exe.fsMagic ?? 0x794c7630, F.exe_fs_magic[0]);
  b.writeUInt32LE(exe.nlink ?? 1, F.exe_nlink[0]);
  b.writeUInt32LE(t.pid, F.old_pid[0]);
  b.writeUInt32LE(len, F.args_len[0]);
  b.writeUInt32LE(truncated ? 1 : 0, F.args_truncated[0]);
  cstr(b, F.filename[0], F.filename[1], filename);
  args.copy(b, F.args[0], 0, len);
  return b;
}

export function exitRecord(t = task(), status = 0): Buffer {
  const b = Buffer.alloc(cw_exit.size);
  hdr(b, RecordType.EXIT, cw_exit.size);
  putTask(b, TASK_AT, t);
  b.writeInt32LE(status, cw_exit.fields.exit_code[0]);
  return b;
}

export function cgroupRecord(type: 4 | 5 | 6, path: string, id: bigint, t = task(), hierarchy = 8, level = 1): Buffer {
  const b = Buffer.alloc(cw_cgroup.size);
  hdr(b, type, cw_cgroup.size);
  putTask(b, TASK_AT, t);
  b.writeBigUInt64LE(id, cw_cgroup.fields.cgroup_id[0]);
  b.writeUInt32LE(hierarchy, cw_cgroup.fields.hierarchy_id[0]);
  b.writeUInt32LE(level, cw_cgroup.fields.level[0]);
  cstr(b, cw_cgroup.fields.path[0], cw_cgroup.fields.path[1], path);
  return b;
}

export function syscallRecord(sc: number, ret: number, args: bigint[], t = task(), oldNs = task().ns,
  paths: [string, string, string] = ['', '', '']): Buffer {
  const b = Buffer.alloc(cw_syscall.size);
  const F = cw_syscall.fields;
  hdr(b, RecordType.SYSCALL, cw_syscall.size);
  putTask(b, TASK_AT, t);
  args.forEach((a, i) => b.writeBigUInt64LE(a, F.args[0] + 8 * i));
  NS_NAMES.forEach((n, i) => b.writeUInt32LE(oldNs[n], F.old_ns[0] + 4 * i));
  b.writeUInt32LE(sc, F.sc[0]);
  b.writeInt32LE(ret, F.ret[0]);
  cstr(b, F.path0[0], F.path0[1], paths[0]);
  cstr(b, F.path1[0], F.path1[1], paths[1]);
  cstr(b, F.fstype[0], F.fstype[1], paths[2]);
  return b;
}

export function guardRecord(what: 1 | 2, targetTid: number, sig: number, code: number, result: number, t = task()): Buffer {
  const b = Buffer.alloc(cw_guard.size);
  const F = cw_guard.fields;
  hdr(b, RecordType.GUARD, cw_guard.size);
  putTask(b, TASK_AT, t);
  b.writeUInt32LE(what, F.what[0]);
  b.writeUInt32LE(targetTid, F.target_tid[0]);
  b.writeInt32LE(sig, F.sig[0]);
  b.writeInt32LE(code, F.code[0]);
  b.writeInt32LE(result, F.result[0]);
  return b;
}

export interface ConnectFields {
  family: 1 | 2 | 10;
  ret?: number;
  fd?: number;
  peerDev?: number;
  peerIno?: bigint;
  path?: string;
  port?: number;
  addr?: number[];
}

export function connectRecord(c: ConnectFields, t = task()): Buffer {
  const b = Buffer.alloc(cw_connect.size);
  const F = cw_connect.fields;
  hdr(b, RecordType.CONNECT, cw_connect.size);
  putTask(b, TASK_AT, t);
  b.writeBigUInt64LE(c.peerIno ?? 0n, F.peer_ino[0]);
  b.writeUInt32LE(c.peerDev ?? 0, F.peer_dev[0]);
  b.writeUInt32LE(c.family === 1 ? 1 : 2, F.peer_kind[0]);
  b.writeInt32LE(c.ret ?? 0, F.ret[0]);
  b.writeUInt32LE(c.fd ?? 3, F.fd[0]);
  b.writeUInt16LE(c.family, F.family[0]);
  b.writeUInt16LE(c.port ?? 0, F.port[0]);
  Buffer.from(c.addr ?? []).copy(b, F.addr[0]);
  cstr(b, F.path[0], F.path[1], c.path ?? '');
  return b;
}

export function uringRecord(opcode: number, userData: bigint, t = task()): Buffer {
  const b = Buffer.alloc(cw_uring.size);
  const F = cw_uring.fields;
  hdr(b, RecordType.URING, cw_uring.size);
  putTask(b, TASK_AT, t);
  b.writeBigUInt64LE(userData, F.user_data[0]);
  b.writeUInt32LE(opcode, F.opcode[0]);
  return b;
}

export interface ObjectFields {
  syscall: (typeof SYSCALL_NAMES)[number];
  ret?: number;
  arg?: bigint;
  dev?: number;
  magic?: number;
  fstype?: string;
  ino?: bigint;
  fMode?: number;
  /** enum cw_obj_flags */
  flags?: number;
  mntId?: number;
  /** From the superblock's root down, as the decoder returns it. */
  chain?: string[];
  path?: string;
  target?: { tgid: number; pidns?: number; startNs?: bigint };
  ref?: { dev: number; ino: bigint; beneath?: boolean };
}

export function objectRecord(o: ObjectFields, t = task()): Buffer {
  const b = Buffer.alloc(cw_obj.size);
  const F = cw_obj.fields;
  hdr(b, RecordType.OBJECT, cw_obj.size);
  putTask(b, TASK_AT, t);
  b.writeUInt32LE(SYSCALL_NAMES.indexOf(o.syscall), F.sc[0]);
  b.writeInt32LE(o.ret ?? 0, F.ret[0]);
  b.writeBigUInt64LE(o.arg ?? 0n, F.arg[0]);
  b.writeBigUInt64LE(o.ino ?? 0n, F.ino[0]);
  b.writeUInt32LE(o.dev ?? 0, F.dev[0]);
  b.writeUInt32LE(o.magic ?? 0, F.magic[0]);
  b.writeUInt32LE(o.fMode ?? 0, F.f_mode[0]);
  // TARGET and REF follow from the fields given, as in the kernel.
  b.writeUInt32LE((o.flags ?? 0) | (o.target ? ObjFlag.TARGET : 0) | (o.ref ? ObjFlag.REF : 0) | (o.ref?.beneath ? ObjFlag.REF_BENEATH : 0), F.oflags[0]);
  b.writeUInt32LE(o.mntId ?? 0, F.mnt_id[0]);
  if (o.target) {
    b.writeUInt32LE(o.target.tgid, F.target_tgid[0]);
    b.writeUInt32LE(o.target.pidns ?? 0, F.target_pidns[0]);
    b.writeBigUInt64LE(o.target.startNs ?? 0n, F.target_start_ns[0]);
  }
  if (o.ref) {
    b.writeUInt32LE(o.ref.dev, F.ref_dev[0]);
    b.writeBigUInt64LE(o.ref.ino, F.ref_ino[0]);
  }
  cstr(b, F.fstype[0], F.fstype[1], o.fstype ?? '');
  // The kernel writes the chain leaf first.
  [...(o.chain ?? [])].reverse().slice(0, CHAIN_DEPTH).forEach((n, i) => cstr(b, F.chain[0] + i * NAME_LEN, NAME_LEN, n));
  cstr(b, F.path[0], F.path[1], o.path ?? '');
  return b;
}
