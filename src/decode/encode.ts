// The inverse of decode.ts: kernel records back into the kernel's bytes (bpf/ctrwatch.h, by
// the offsets of layout.ts). For tests and benches that feed the decoder without a kernel;
// test/unit/decode-roundtrip.test.ts holds decodeBatch(encodeRecords(rs)) equal to rs.

import {
  CHAIN_DEPTH,
  cw_cgroup,
  cw_connect,
  cw_exec,
  cw_exit,
  cw_fork,
  cw_guard,
  cw_hdr,
  cw_kill,
  cw_obj,
  cw_syscall,
  cw_task,
  cw_uring,
  EXEC_ARGS_MAX,
  EXEC_FILENAME_MAX,
  EXEC_FIXED_SIZE,
  GuardWhat,
  KILL_CLASSES,
  KILL_OUTCOMES,
  KILL_REASONS,
  NAME_LEN,
  NS_NAMES,
  ObjFlag,
  PeerKind,
  RecordType,
  SYSCALL_NAMES,
} from './layout';
import type { KernelKill, KernelRecord, Namespaces, TaskInfo } from './records';

const TASK_AT = cw_fork.fields.task[0]; // the same offset in every record
const CGROUP_TYPES = {
  cgroup_mkdir: RecordType.CGROUP_MKDIR,
  cgroup_rmdir: RecordType.CGROUP_RMDIR,
  cgroup_attach: RecordType.CGROUP_ATTACH,
} as const;

/** A string into a fixed-size, NUL-terminated field (cut to fit, as the kernel does). */
export function writeCstr(buf: Buffer, at: number, len: number, s: string): void {
  buf.write(s.slice(0, len - 1), at, len - 1, 'utf8');
}

export function writeHeader(buf: Buffer, type: number, size: number, ktime: bigint, cpu: number): void {
  buf.writeUInt16LE(type, cw_hdr.fields.type[0]);
  buf.writeUInt16LE(size, cw_hdr.fields.size[0]);
  buf.writeUInt32LE(cpu, cw_hdr.fields.cpu[0]);
  buf.writeBigUInt64LE(ktime, cw_hdr.fields.ktime[0]);
}

export function writeNamespaces(buf: Buffer, at: number, ns: Namespaces): void {
  NS_NAMES.forEach((n, i) => buf.writeUInt32LE(ns[n], at + 4 * i));
}

export function writeTask(buf: Buffer, at: number, t: TaskInfo): void {
  const F = cw_task.fields;
  buf.writeBigUInt64LE(t.startNs, at + F.start_ns[0]);
  buf.writeBigUInt64LE(t.parentStartNs, at + F.parent_start_ns[0]);
  buf.writeBigUInt64LE(t.capEffective, at + F.cap_effective[0]);
  buf.writeBigUInt64LE(t.cgroupId, at + F.cgroup_id[0]);
  for (const k of ['pid', 'tgid', 'ppid', 'nspid', 'uid', 'euid', 'gid', 'egid', 'flags'] as const) buf.writeUInt32LE(t[k], at + F[k][0]);
  writeNamespaces(buf, at + F.ns[0], t.ns);
  writeCstr(buf, at + F.comm[0], F.comm[1], t.comm);
}

/** A record of `size` bytes with its header and task written. */
function start(r: KernelRecord, type: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  writeHeader(b, type, size, r.ktime, r.cpu);
  writeTask(b, TASK_AT, r.task);
  return b;
}

function execBytes(r: Extract<KernelRecord, { kind: 'exec' }>): Buffer {
  const F = cw_exec.fields;
  const args = r.argv.length ? Buffer.from(`${r.argv.join('\0')}\0`) : Buffer.alloc(0);
  const len = Math.min(args.length, EXEC_ARGS_MAX);
  // As bpf_probe_read_kernel_str copies it: at most EXEC_FILENAME_MAX bytes, the NUL included.
  const name = Buffer.from(r.filename).subarray(0, EXEC_FILENAME_MAX - 1);
  const nameLen = name.length + 1;
  const b = start(r, RecordType.EXEC, EXEC_FIXED_SIZE + ((nameLen + len + 7) & ~7));
  b.writeBigUInt64LE(r.exe.ino, F.exe_ino[0]);
  b.writeBigInt64LE(BigInt(r.exe.mtime), F.exe_mtime[0]);
  b.writeBigInt64LE(BigInt(r.exe.ctime), F.exe_ctime[0]);
  b.writeUInt32LE(r.exe.dev, F.exe_dev[0]);
  b.writeUInt32LE(r.exe.fsMagic, F.exe_fs_magic[0]);
  b.writeUInt32LE(r.exe.nlink, F.exe_nlink[0]);
  b.writeUInt32LE(r.oldPid, F.old_pid[0]);
  b.writeUInt32LE(len, F.args_len[0]);
  b.writeUInt32LE(r.argsTruncated ? 1 : 0, F.args_truncated[0]);
  b.writeUInt32LE(nameLen, F.filename_len[0]);
  name.copy(b, F.data[0]);
  args.copy(b, F.data[0] + nameLen, 0, len);
  return b;
}

/** struct cw_kill, the inverse of decode's killAt. */
function writeKill(b: Buffer, at: number, k: KernelKill | undefined): void {
  if (!k) return;
  const K = cw_kill.fields;
  b.writeUInt8(KILL_CLASSES.indexOf(k.cls), at + K.cls[0]);
  b.writeUInt8(k.outcome ? KILL_OUTCOMES.indexOf(k.outcome) : 0, at + K.outcome[0]);
  b.writeUInt8(k.reason ? KILL_REASONS.indexOf(k.reason) : 0, at + K.reason[0]);
  b.writeUInt8(k.arm, at + K.arm[0]);
  b.writeInt32LE(k.err, at + K.err[0]);
}

function syscallBytes(r: Extract<KernelRecord, { kind: 'syscall' }>): Buffer {
  const F = cw_syscall.fields;
  const b = start(r, RecordType.SYSCALL, cw_syscall.size);
  r.args.forEach((a, i) => b.writeBigUInt64LE(a, F.args[0] + 8 * i));
  writeNamespaces(b, F.old_ns[0], r.oldNs);
  b.writeUInt32LE(SYSCALL_NAMES.indexOf(r.syscall), F.sc[0]);
  b.writeInt32LE(r.ret, F.ret[0]);
  writeCstr(b, F.path0[0], F.path0[1], r.path0);
  writeCstr(b, F.path1[0], F.path1[1], r.path1);
  writeCstr(b, F.fstype[0], F.fstype[1], r.fstype);
  writeKill(b, F.kill[0], r.kill);
  return b;
}

function objectBytes(r: Extract<KernelRecord, { kind: 'object' }>): Buffer {
  const F = cw_obj.fields;
  const b = start(r, RecordType.OBJECT, cw_obj.size);
  b.writeUInt32LE(SYSCALL_NAMES.indexOf(r.syscall), F.sc[0]);
  b.writeInt32LE(r.ret, F.ret[0]);
  b.writeBigUInt64LE(r.arg, F.arg[0]);
  b.writeBigUInt64LE(r.ino, F.ino[0]);
  b.writeUInt32LE(r.dev, F.dev[0]);
  b.writeUInt32LE(r.magic, F.magic[0]);
  b.writeUInt32LE(r.fMode, F.f_mode[0]);
  // The flags the decoder derives fields from follow from those fields, as in the kernel.
  let flags =
    r.flags & ~(ObjFlag.TARGET | ObjFlag.TARGET_VPID | ObjFlag.TARGET_IN_NS | ObjFlag.REF | ObjFlag.REF_BENEATH | ObjFlag.CHAIN_TRUNC);
  if (r.chainTruncated) flags |= ObjFlag.CHAIN_TRUNC;
  if (r.target) {
    flags |= ObjFlag.TARGET | (r.target.vpid ? ObjFlag.TARGET_VPID : 0) | (r.target.inNs ? ObjFlag.TARGET_IN_NS : 0);
    b.writeUInt32LE(r.target.tgid, F.target_tgid[0]);
    b.writeUInt32LE(r.target.pidns, F.target_pidns[0]);
    b.writeBigUInt64LE(r.target.startNs, F.target_start_ns[0]);
  }
  if (r.ref) {
    flags |= ObjFlag.REF | (r.ref.beneath ? ObjFlag.REF_BENEATH : 0);
    b.writeUInt32LE(r.ref.dev, F.ref_dev[0]);
    b.writeBigUInt64LE(r.ref.ino, F.ref_ino[0]);
  }
  b.writeUInt32LE(flags, F.oflags[0]);
  b.writeUInt32LE(r.mntId, F.mnt_id[0]);
  writeCstr(b, F.fstype[0], F.fstype[1], r.fstype);
  // The kernel writes the dentry chain leaf first.
  [...r.chain]
    .reverse()
    .slice(0, CHAIN_DEPTH)
    .forEach((n, i) => writeCstr(b, F.chain[0] + i * NAME_LEN, NAME_LEN, n));
  writeCstr(b, F.path[0], F.path[1], r.path);
  writeKill(b, F.kill[0], r.kill);
  return b;
}

function guardBytes(r: Extract<KernelRecord, { kind: 'guard' }>): Buffer {
  const F = cw_guard.fields;
  const b = start(r, RecordType.GUARD, cw_guard.size);
  b.writeUInt32LE(r.what === 'signal' ? GuardWhat.SIGNAL : GuardWhat.PTRACE, F.what[0]);
  b.writeUInt32LE(r.targetTid, F.target_tid[0]);
  b.writeInt32LE(r.sig, F.sig[0]);
  b.writeInt32LE(r.code, F.code[0]);
  b.writeInt32LE(r.result, F.result[0]);
  writeKill(b, F.kill[0], r.kill);
  return b;
}

const FAMILY = { unix: 1, inet: 2, inet6: 10 } as const;

/** An address as decode.ts prints it, back into its bytes. */
function ipBytes(addr: string, family: 'inet' | 'inet6'): Buffer {
  if (family === 'inet') return Buffer.from(addr.split('.').map(Number));
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

function connectBytes(r: Extract<KernelRecord, { kind: 'connect' }>): Buffer {
  const F = cw_connect.fields;
  const b = start(r, RecordType.CONNECT, cw_connect.size);
  b.writeBigUInt64LE(r.peerIno, F.peer_ino[0]);
  b.writeUInt32LE(r.peerDev, F.peer_dev[0]);
  b.writeUInt32LE(r.family === 'unix' ? PeerKind.UNIX_PATH : PeerKind.INET, F.peer_kind[0]);
  b.writeInt32LE(r.ret, F.ret[0]);
  b.writeUInt32LE(r.fd, F.fd[0]);
  b.writeUInt16LE(FAMILY[r.family], F.family[0]);
  b.writeUInt16LE(r.port, F.port[0]);
  if (r.family === 'unix') writeCstr(b, F.path[0], F.path[1], r.peerPath);
  else ipBytes(r.addr, r.family).copy(b, F.addr[0]);
  return b;
}

function uringBytes(r: Extract<KernelRecord, { kind: 'uring' }>): Buffer {
  const F = cw_uring.fields;
  const b = start(r, RecordType.URING, cw_uring.size);
  b.writeBigUInt64LE(r.userData, F.user_data[0]);
  b.writeUInt32LE(r.opcode, F.opcode[0]);
  b.writeUInt32LE(r.sqThread ? 1 : 0, F.sq_thread[0]);
  return b;
}

/** One record in the kernel's layout (its size as the kernel would send it, unpadded). */
export function encodeRecord(r: KernelRecord): Buffer {
  switch (r.kind) {
    case 'fork': {
      const b = start(r, RecordType.FORK, cw_fork.size);
      b.writeUInt32LE(
        NS_NAMES.reduce((m, n, i) => (r.newNs.includes(n) ? m | (1 << i) : m), 0),
        cw_fork.fields.new_ns[0],
      );
      b.writeUInt32LE(r.late ? 1 : 0, cw_fork.fields.late[0]);
      return b;
    }
    case 'exec':
      return execBytes(r);
    case 'exit': {
      const b = start(r, RecordType.EXIT, cw_exit.size);
      b.writeInt32LE(r.exitStatus, cw_exit.fields.exit_code[0]);
      return b;
    }
    case 'cgroup_mkdir':
    case 'cgroup_rmdir':
    case 'cgroup_attach': {
      const F = cw_cgroup.fields;
      const b = start(r, CGROUP_TYPES[r.kind], cw_cgroup.size);
      b.writeBigUInt64LE(r.cgroupId, F.cgroup_id[0]);
      b.writeUInt32LE(r.hierarchyId, F.hierarchy_id[0]);
      b.writeUInt32LE(r.level, F.level[0]);
      writeCstr(b, F.path[0], F.path[1], r.path);
      return b;
    }
    case 'syscall':
      return syscallBytes(r);
    case 'object':
      return objectBytes(r);
    case 'guard':
      return guardBytes(r);
    case 'connect':
      return connectBytes(r);
    case 'uring':
      return uringBytes(r);
  }
}

/** Records back to back, each padded to 8 bytes: a batch as the addon hands it over. */
export function encodeRecords(rs: readonly KernelRecord[]): Buffer {
  return Buffer.concat(
    rs.map((r) => {
      const b = encodeRecord(r);
      return b.length % 8 ? Buffer.concat([b, Buffer.alloc(8 - (b.length % 8))]) : b;
    }),
  );
}
