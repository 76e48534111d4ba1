import {
  cw_cgroup, cw_exec, cw_exit, cw_fork, cw_hdr, cw_syscall, cw_task, EXEC_FIXED_SIZE, NS_NAMES,
  RecordType, SYSCALL_NAMES,
} from './layout';
import type { SyscallName } from './layout';
import type {
  CgroupRecord, DecodedBatch, DecodeError, KernelRecord, Namespaces, TaskInfo,
} from './records';

const T = cw_task.fields;
const TASK_AT = cw_fork.fields.task[0]; // the same offset in every record
const MIN_SIZE: Record<number, number> = {
  [RecordType.FORK]: cw_fork.size,
  [RecordType.EXEC]: EXEC_FIXED_SIZE,
  [RecordType.EXIT]: cw_exit.size,
  [RecordType.CGROUP_MKDIR]: cw_cgroup.size,
  [RecordType.CGROUP_RMDIR]: cw_cgroup.size,
  [RecordType.CGROUP_ATTACH]: cw_cgroup.size,
  [RecordType.SYSCALL]: cw_syscall.size,
};
const CGROUP_KINDS = {
  [RecordType.CGROUP_MKDIR]: 'cgroup_mkdir',
  [RecordType.CGROUP_RMDIR]: 'cgroup_rmdir',
  [RecordType.CGROUP_ATTACH]: 'cgroup_attach',
} as const;

/** A NUL-terminated string in a fixed-size field. */
function cstr(buf: Buffer, at: number, len: number): string {
  const end = buf.indexOf(0, at);
  return buf.toString('utf8', at, end < 0 || end > at + len ? at + len : end);
}

function namespaces(buf: Buffer, at: number): Namespaces {
  return {
    mnt: buf.readUInt32LE(at), pid: buf.readUInt32LE(at + 4), net: buf.readUInt32LE(at + 8),
    uts: buf.readUInt32LE(at + 12), ipc: buf.readUInt32LE(at + 16), cgroup: buf.readUInt32LE(at + 20),
    user: buf.readUInt32LE(at + 24), time: buf.readUInt32LE(at + 28),
  };
}

function task(buf: Buffer, at: number): TaskInfo {
  return {
    startNs: buf.readBigUInt64LE(at + T.start_ns[0]),
    parentStartNs: buf.readBigUInt64LE(at + T.parent_start_ns[0]),
    capEffective: buf.readBigUInt64LE(at + T.cap_effective[0]),
    cgroupId: buf.readBigUInt64LE(at + T.cgroup_id[0]),
    pid: buf.readUInt32LE(at + T.pid[0]),
    tgid: buf.readUInt32LE(at + T.tgid[0]),
    ppid: buf.readUInt32LE(at + T.ppid[0]),
    nspid: buf.readUInt32LE(at + T.nspid[0]),
    uid: buf.readUInt32LE(at + T.uid[0]),
    euid: buf.readUInt32LE(at + T.euid[0]),
    gid: buf.readUInt32LE(at + T.gid[0]),
    egid: buf.readUInt32LE(at + T.egid[0]),
    ns: namespaces(buf, at + T.ns[0]),
    flags: buf.readUInt32LE(at + T.flags[0]),
    comm: cstr(buf, at + T.comm[0], T.comm[1]),
  };
}

/** NUL-separated argv; a trailing partial argument (truncated) is kept. */
function argv(buf: Buffer, at: number, len: number): string[] {
  const out: string[] = [];
  const end = at + len;
  let i = at;
  while (i < end) {
    let j = buf.indexOf(0, i);
    if (j < 0 || j > end) j = end;
    out.push(buf.toString('utf8', i, j));
    i = j + 1;
  }
  return out;
}

function nsMask(mask: number): (typeof NS_NAMES)[number][] {
  return NS_NAMES.filter((_, i) => mask & (1 << i));
}

function one(buf: Buffer, at: number, type: number, size: number): KernelRecord | string {
  const base = {
    ktime: buf.readBigUInt64LE(at + cw_hdr.fields.ktime[0]),
    cpu: buf.readUInt32LE(at + cw_hdr.fields.cpu[0]),
    task: task(buf, at + TASK_AT),
  };
  switch (type) {
    case RecordType.FORK:
      return { kind: 'fork', ...base, newNs: nsMask(buf.readUInt32LE(at + cw_fork.fields.new_ns[0])) };
    case RecordType.EXEC: {
      const F = cw_exec.fields;
      const argsLen = buf.readUInt32LE(at + F.args_len[0]);
      if (argsLen > F.args[1] || EXEC_FIXED_SIZE + argsLen > size) return `exec args_len ${argsLen} exceeds record size ${size}`;
      return {
        kind: 'exec', ...base,
        filename: cstr(buf, at + F.filename[0], F.filename[1]),
        argv: argv(buf, at + F.args[0], argsLen),
        argsTruncated: buf.readUInt32LE(at + F.args_truncated[0]) !== 0,
        oldPid: buf.readUInt32LE(at + F.old_pid[0]),
        exe: {
          ino: buf.readBigUInt64LE(at + F.exe_ino[0]),
          dev: buf.readUInt32LE(at + F.exe_dev[0]),
          fsMagic: buf.readUInt32LE(at + F.exe_fs_magic[0]),
          nlink: buf.readUInt32LE(at + F.exe_nlink[0]),
          mtime: Number(buf.readBigInt64LE(at + F.exe_mtime[0])),
          ctime: Number(buf.readBigInt64LE(at + F.exe_ctime[0])),
        },
      };
    }
    case RecordType.EXIT:
      return { kind: 'exit', ...base, exitStatus: buf.readInt32LE(at + cw_exit.fields.exit_code[0]) };
    case RecordType.CGROUP_MKDIR:
    case RecordType.CGROUP_RMDIR:
    case RecordType.CGROUP_ATTACH: {
      const F = cw_cgroup.fields;
      const r: CgroupRecord = {
        kind: CGROUP_KINDS[type], ...base,
        cgroupId: buf.readBigUInt64LE(at + F.cgroup_id[0]),
        hierarchyId: buf.readUInt32LE(at + F.hierarchy_id[0]),
        level: buf.readUInt32LE(at + F.level[0]),
        path: cstr(buf, at + F.path[0], F.path[1]),
      };
      return r;
    }
    case RecordType.SYSCALL: {
      const F = cw_syscall.fields;
      const sc = buf.readUInt32LE(at + F.sc[0]);
      const name = SYSCALL_NAMES[sc];
      if (!name) return `unknown syscall ${sc}`;
      const a = at + F.args[0];
      return {
        kind: 'syscall', ...base,
        syscall: name as SyscallName,
        ret: buf.readInt32LE(at + F.ret[0]),
        args: [buf.readBigUInt64LE(a), buf.readBigUInt64LE(a + 8), buf.readBigUInt64LE(a + 16), buf.readBigUInt64LE(a + 24)],
        oldNs: namespaces(buf, at + F.old_ns[0]),
        path0: cstr(buf, at + F.path0[0], F.path0[1]),
        path1: cstr(buf, at + F.path1[0], F.path1[1]),
        fstype: cstr(buf, at + F.fstype[0], F.fstype[1]),
      };
    }
  }
  return `unknown record type ${type}`;
}

/**
 * Decodes one drained batch: records back to back, each 8-byte aligned. Never
 * throws: a bad record is reported in `errors` and skipped by its size; a size
 * that cannot be trusted ends the batch there (reported too).
 */
export function decodeBatch(buf: Buffer): DecodedBatch {
  const records: KernelRecord[] = [];
  const errors: DecodeError[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < cw_hdr.size) {
      errors.push({ offset: at, reason: `truncated header: ${buf.length - at} bytes left` });
      break;
    }
    const type = buf.readUInt16LE(at + cw_hdr.fields.type[0]);
    const size = buf.readUInt16LE(at + cw_hdr.fields.size[0]);
    if (size < cw_hdr.size || size > buf.length - at) {
      errors.push({ offset: at, reason: `bad record size ${size} (${buf.length - at} bytes left)` });
      break;
    }
    const min = MIN_SIZE[type];
    if (min === undefined) {
      errors.push({ offset: at, reason: `unknown record type ${type}` });
    } else if (size < min) {
      errors.push({ offset: at, reason: `record type ${type} size ${size} below its minimum ${min}` });
    } else {
      const r = one(buf, at, type, size);
      if (typeof r === 'string') errors.push({ offset: at, reason: r });
      else records.push(r);
    }
    at += (size + 7) & ~7;
  }
  return { records, errors };
}
