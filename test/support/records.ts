import { encodeRecord, writeCstr, writeHeader, writeTask } from '../../src/decode/encode';
import { NS_NAMES, ObjFlag, SYSCALL_NAMES, type SyscallName } from '../../src/decode/layout';
import type { KernelKill, TaskInfo } from '../../src/decode/records';

/** Builds records in the kernel's byte layout, for unit tests without a kernel (src/decode/encode.ts does the bytes). */

export function task(over: Partial<TaskInfo> = {}): TaskInfo {
  return {
    pid: 100,
    tgid: 100,
    ppid: 1,
    nspid: 100,
    uid: 0,
    euid: 0,
    gid: 0,
    egid: 0,
    startNs: 1_000_000_000n,
    parentStartNs: 5_000_000n,
    capEffective: 0x1ffffffffffn,
    cgroupId: 1n,
    ns: {
      mnt: 4026531841,
      pid: 4026531836,
      net: 4026531840,
      uts: 4026531838,
      ipc: 4026531839,
      cgroup: 4026531835,
      user: 4026531837,
      time: 4026531834,
    },
    flags: 4,
    comm: 'sh',
    ...over,
  };
}

// The encoder's building blocks, under the names builders here use.
export const cstr = writeCstr;
export const putTask = writeTask;
export function hdr(buf: Buffer, type: number, size: number, ktime = 42n, cpu = 1): void {
  writeHeader(buf, type, size, ktime, cpu);
}

const KTIME = 42n;
const CPU = 1;

export function forkRecord(t = task(), newNsMask = 0): Buffer {
  return encodeRecord({
    kind: 'fork',
    ktime: KTIME,
    cpu: CPU,
    task: t,
    newNs: NS_NAMES.filter((_, i) => newNsMask & (1 << i)),
    late: false,
  });
}

export function execRecord(
  t = task(),
  filename = '/bin/sh',
  argv: string[] = ['sh', '-c', 'true'],
  truncated = false,
  exe: { nlink?: number; fsMagic?: number } = {},
): Buffer {
  return encodeRecord({
    kind: 'exec',
    ktime: KTIME,
    cpu: CPU,
    task: t,
    filename,
    argv,
    argsTruncated: truncated,
    oldPid: t.pid,
    exe: { ino: 1234n, dev: 66, fsMagic: exe.fsMagic ?? 0x794c7630, nlink: exe.nlink ?? 1, mtime: 1700000000, ctime: 1700000001 },
  });
}

export function exitRecord(t = task(), status = 0): Buffer {
  return encodeRecord({ kind: 'exit', ktime: KTIME, cpu: CPU, task: t, exitStatus: status });
}

const CGROUP_KINDS = { 4: 'cgroup_mkdir', 5: 'cgroup_rmdir', 6: 'cgroup_attach' } as const;

export function cgroupRecord(type: 4 | 5 | 6, path: string, id: bigint, t = task(), hierarchy = 8, level = 1): Buffer {
  return encodeRecord({ kind: CGROUP_KINDS[type], ktime: KTIME, cpu: CPU, task: t, cgroupId: id, hierarchyId: hierarchy, level, path });
}

export function syscallRecord(
  sc: number,
  ret: number,
  args: bigint[],
  t = task(),
  oldNs = task().ns,
  paths: [string, string, string] = ['', '', ''],
): Buffer {
  const all = [0n, 0n, 0n, 0n].map((z, i) => args[i] ?? z);
  return encodeRecord({
    kind: 'syscall',
    ktime: KTIME,
    cpu: CPU,
    task: t,
    syscall: SYSCALL_NAMES[sc] as SyscallName,
    ret,
    args: all,
    oldNs,
    path0: paths[0],
    path1: paths[1],
    fstype: paths[2],
  });
}

export function guardRecord(what: 1 | 2, targetTid: number, sig: number, code: number, result: number, t = task()): Buffer {
  return encodeRecord({
    kind: 'guard',
    ktime: KTIME,
    cpu: CPU,
    task: t,
    what: what === 1 ? 'signal' : 'ptrace',
    targetTid,
    sig,
    code,
    result,
  });
}

export interface ConnectFields {
  family: 1 | 2 | 10;
  ret?: number;
  fd?: number;
  peerDev?: number;
  peerIno?: bigint;
  path?: string;
  port?: number;
  /** The address's bytes (4 for inet, 16 for inet6). */
  addr?: number[];
}

function ipText(bytes: number[], family: 2 | 10): string {
  if (family === 2) return bytes.slice(0, 4).join('.');
  const b = Buffer.alloc(16);
  Buffer.from(bytes).copy(b);
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(i).toString(16));
  return parts.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

export function connectRecord(c: ConnectFields, t = task()): Buffer {
  const family = c.family === 1 ? 'unix' : c.family === 2 ? 'inet' : 'inet6';
  return encodeRecord({
    kind: 'connect',
    ktime: KTIME,
    cpu: CPU,
    task: t,
    family,
    ret: c.ret ?? 0,
    fd: c.fd ?? 3,
    peerDev: c.peerDev ?? 0,
    peerIno: c.peerIno ?? 0n,
    peerPath: family === 'unix' ? (c.path ?? '') : '',
    port: c.port ?? 0,
    addr: c.family === 1 ? '' : ipText(c.addr ?? [], c.family),
  });
}

export function uringRecord(opcode: number, userData: bigint, t = task()): Buffer {
  return encodeRecord({ kind: 'uring', ktime: KTIME, cpu: CPU, task: t, opcode, userData, sqThread: false });
}

export interface ObjectFields {
  syscall: SyscallName;
  ret?: number;
  arg?: bigint;
  dev?: number;
  magic?: number;
  fstype?: string;
  ino?: bigint;
  fMode?: number;
  /** enum cw_obj_flags (TARGET and REF follow from target and ref). */
  flags?: number;
  mntId?: number;
  /** From the superblock's root down, as the decoder returns it. */
  chain?: string[];
  path?: string;
  target?: { tgid: number; pidns?: number; startNs?: bigint; vpid?: boolean; inNs?: boolean };
  ref?: { dev: number; ino: bigint; beneath?: boolean };
  /** What the kernel did about it (struct cw_kill). */
  kill?: KernelKill;
}

export function objectRecord(o: ObjectFields, t = task()): Buffer {
  const flags = o.flags ?? 0;
  return encodeRecord({
    kind: 'object',
    ktime: KTIME,
    cpu: CPU,
    task: t,
    syscall: o.syscall,
    ret: o.ret ?? 0,
    arg: o.arg ?? 0n,
    dev: o.dev ?? 0,
    magic: o.magic ?? 0,
    fstype: o.fstype ?? '',
    ino: o.ino ?? 0n,
    fMode: o.fMode ?? 0,
    flags,
    mntId: o.mntId ?? 0,
    chain: o.chain ?? [],
    chainTruncated: (flags & ObjFlag.CHAIN_TRUNC) !== 0,
    path: o.path ?? '',
    target: o.target && {
      tgid: o.target.tgid,
      pidns: o.target.pidns ?? 0,
      startNs: o.target.startNs ?? 0n,
      vpid: o.target.vpid ?? (flags & ObjFlag.TARGET_VPID) !== 0,
      inNs: o.target.inNs ?? (flags & ObjFlag.TARGET_IN_NS) !== 0,
    },
    ref: o.ref && { dev: o.ref.dev, ino: o.ref.ino, beneath: o.ref.beneath ?? false },
    ...(o.kill ? { kill: o.kill } : {}),
  });
}
