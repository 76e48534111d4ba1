import { encodeRecord, writeCstr, writeHeader, writeTask } from '../../src/decode/encode';
import { NS_NAMES, SYSCALL_NAMES, type SyscallName } from '../../src/decode/layout';
import type { TaskInfo } from '../../src/decode/records';

/** Builds records in the kernel's byte layout, for unit tests without a kernel (src/decode/encode.ts does the bytes). */

export function task(over: Partial<TaskInfo> = {}): TaskInfo {
  return {
    pid: 100, tgid: 100, ppid: 1, nspid: 100, uid: 0, euid: 0, gid: 0, egid: 0,
    startNs: 1_000_000_000n, parentStartNs: 5_000_000n, capEffective: 0x1ffffffffffn, cgroupId: 1n,
    ns: { mnt: 4026531841, pid: 4026531836, net: 4026531840, uts: 4026531838, ipc: 4026531839, cgroup: 4026531835, user: 4026531837, time: 4026531834 },
    flags: 4, comm: 'sh',
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
  return encodeRecord({ kind: 'fork', ktime: KTIME, cpu: CPU, task: t, newNs: NS_NAMES.filter((_, i) => newNsMask & (1 << i)) });
}

export function execRecord(t = task(), filename = '/bin/sh', argv: string[] = ['sh', '-c', 'true'], truncated = false): Buffer {
  return encodeRecord({
    kind: 'exec', ktime: KTIME, cpu: CPU, task: t, filename, argv, argsTruncated: truncated, oldPid: t.pid,
    exe: { ino: 1234n, dev: 66, fsMagic: 0x794c7630, nlink: 1, mtime: 1700000000, ctime: 1700000001 },
  });
}

export function exitRecord(t = task(), status = 0): Buffer {
  return encodeRecord({ kind: 'exit', ktime: KTIME, cpu: CPU, task: t, exitStatus: status });
}

const CGROUP_KINDS = { 4: 'cgroup_mkdir', 5: 'cgroup_rmdir', 6: 'cgroup_attach' } as const;

export function cgroupRecord(type: 4 | 5 | 6, path: string, id: bigint, t = task(), hierarchy = 8, level = 1): Buffer {
  return encodeRecord({ kind: CGROUP_KINDS[type], ktime: KTIME, cpu: CPU, task: t, cgroupId: id, hierarchyId: hierarchy, level, path });
}

export function syscallRecord(sc: number, ret: number, args: bigint[], t = task(), oldNs = task().ns,
  paths: [string, string, string] = ['', '', '']): Buffer {
  const all = [0n, 0n, 0n, 0n].map((z, i) => args[i] ?? z);
  return encodeRecord({
    kind: 'syscall', ktime: KTIME, cpu: CPU, task: t, syscall: SYSCALL_NAMES[sc] as SyscallName, ret, args: all, oldNs,
    path0: paths[0], path1: paths[1], fstype: paths[2],
  });
}
