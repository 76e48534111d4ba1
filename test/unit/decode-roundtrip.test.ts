import { describe, expect, it } from 'vitest';
import { decodeBatch } from '../../src/decode/decode';
import { encodeRecord, encodeRecords } from '../../src/decode/encode';
import { cw_cgroup, cw_exec, ObjFlag, RecordType } from '../../src/decode/layout';
import type { KernelRecord } from '../../src/decode/records';
import { task } from '../support/records';

const t = task({
  pid: 4242,
  tgid: 4240,
  ppid: 7,
  nspid: 3,
  uid: 1000,
  euid: 0,
  gid: 5,
  egid: 6,
  startNs: 123_456_789_012n,
  capEffective: 0xa80425fbn,
  cgroupId: 987_654_321n,
  flags: 7,
  comm: 'runc:[2:INIT]',
});
const oldNs = { ...t.ns, mnt: 4026532001, net: 4026532002 };

/** One record of every kind, every field set to a value of its own. */
const ALL: KernelRecord[] = [
  { kind: 'fork', ktime: 1n, cpu: 0, task: t, newNs: ['mnt', 'pid', 'net', 'time'], late: false },
  {
    kind: 'exec',
    ktime: 2n,
    cpu: 1,
    task: t,
    filename: '/usr/bin/täst',
    argv: ['täst', '', '--flag=1'],
    argsTruncated: true,
    oldPid: 99,
    exe: { ino: 2n ** 40n + 3n, dev: 0x800001, fsMagic: 0x9123683e, nlink: 2, mtime: -5, ctime: 2 ** 40 },
  },
  {
    kind: 'exec',
    ktime: 3n,
    cpu: 1,
    task: t,
    filename: '/bin/true',
    argv: [],
    argsTruncated: false,
    oldPid: 0,
    exe: { ino: 1n, dev: 1, fsMagic: 1, nlink: 1, mtime: 0, ctime: 0 },
  },
  { kind: 'exit', ktime: 4n, cpu: 2, task: t, exitStatus: (3 << 8) | 9 },
  { kind: 'cgroup_mkdir', ktime: 5n, cpu: 3, task: t, cgroupId: 77n, hierarchyId: 0, level: 3, path: '/system.slice/docker-abc.scope' },
  { kind: 'cgroup_rmdir', ktime: 6n, cpu: 3, task: t, cgroupId: 78n, hierarchyId: 4, level: 1, path: '/x' },
  { kind: 'cgroup_attach', ktime: 7n, cpu: 3, task: t, cgroupId: 79n, hierarchyId: 8, level: 2, path: '/a/b' },
  {
    kind: 'syscall',
    ktime: 8n,
    cpu: 1,
    task: t,
    syscall: 'mount',
    ret: -1,
    args: [1n, 2n ** 63n, 3n, 0n],
    oldNs,
    path0: '/proc',
    path1: '/host/proc',
    fstype: 'proc',
  },
  {
    kind: 'syscall',
    ktime: 9n,
    cpu: 1,
    task: t,
    syscall: 'finit_module',
    ret: 0,
    args: [3n, 0n, 0n, 0n],
    oldNs,
    path0: '',
    path1: '',
    fstype: '',
  },
  {
    kind: 'syscall',
    ktime: 9n,
    cpu: 1,
    task: t,
    syscall: 'setns',
    ret: 0,
    args: [3n, 0n, 0n, 0n],
    oldNs,
    path0: '',
    path1: '',
    fstype: '',
    kill: { cls: 'setns_host', outcome: 'failed', reason: 'send_error', arm: 1, err: -11 },
  },
  {
    kind: 'object',
    ktime: 10n,
    cpu: 0,
    task: t,
    syscall: 'openat2',
    ret: 5,
    arg: 0x241n,
    dev: 0x1a00003,
    magic: 0x9fa0,
    fstype: 'proc',
    ino: 2n ** 33n,
    fMode: 2,
    flags: ObjFlag.FILE | ObjFlag.TARGET | ObjFlag.TARGET_IN_NS,
    mntId: 42,
    chain: ['4242', 'mem'],
    chainTruncated: false,
    path: '/proc/self/fd/7',
    target: { tgid: 4242, vpid: false, pidns: 4026531836, inNs: true, startNs: 77n },
    kill: { cls: 'proc_mem', outcome: 'killed', arm: 1, err: 0 },
  },
  {
    kind: 'object',
    ktime: 11n,
    cpu: 0,
    task: t,
    syscall: 'chroot',
    ret: 0,
    arg: 0n,
    dev: 0xfe00000,
    magic: 0xef53,
    fstype: 'ext4',
    ino: 2n,
    fMode: 0,
    flags: ObjFlag.BDEV | ObjFlag.SB_ROOT | ObjFlag.REF | ObjFlag.REF_BENEATH | ObjFlag.MNT_SUBTREE | ObjFlag.CHAIN_TRUNC,
    mntId: 1,
    chain: ['a', 'b'],
    chainTruncated: true,
    path: '.',
    ref: { dev: 0xfe00000, ino: 9n, beneath: true },
  },
  {
    kind: 'guard',
    ktime: 12n,
    cpu: 1,
    task: t,
    what: 'signal',
    targetTid: 321,
    sig: 19,
    code: 0,
    result: 1,
    kill: { cls: 'sensor_signal', outcome: 'spared', reason: 'not_container', arm: 2, err: 0 },
  },
  { kind: 'guard', ktime: 13n, cpu: 1, task: t, what: 'ptrace', targetTid: 322, sig: 0x4206, code: 0, result: -1 },
  {
    kind: 'connect',
    ktime: 14n,
    cpu: 0,
    task: t,
    family: 'unix',
    ret: 0,
    fd: 4,
    peerDev: 0x19,
    peerIno: 123456n,
    peerPath: '/run/docker.sock',
    port: 0,
    addr: '',
  },
  {
    kind: 'connect',
    ktime: 15n,
    cpu: 0,
    task: t,
    family: 'inet',
    ret: -115,
    fd: 5,
    peerDev: 0,
    peerIno: 0n,
    peerPath: '',
    port: 2375,
    addr: '127.0.0.1',
  },
  {
    kind: 'connect',
    ktime: 16n,
    cpu: 0,
    task: t,
    family: 'inet6',
    ret: 0,
    fd: 6,
    peerDev: 0,
    peerIno: 0n,
    peerPath: '',
    port: 10250,
    addr: 'fd00::1:2',
  },
  { kind: 'uring', ktime: 17n, cpu: 1, task: t, opcode: 18, userData: 2n ** 60n, sqThread: true },
  { kind: 'fork', ktime: 18n, cpu: 1, task: t, newNs: [], late: true },
];

describe('kernel-record encoder (the inverse of the decoder)', () => {
  it('decodeBatch(encodeRecords(rs)) gives rs back, every kind and field', () => {
    const batch = decodeBatch(encodeRecords(ALL));
    expect(batch.errors).toEqual([]);
    expect(batch.records).toEqual(ALL);
  });

  it('writes the kernel sizes: exec by its argument bytes, the rest fixed', () => {
    const exec = encodeRecord(ALL[1]!);
    expect(exec.readUInt16LE(0)).toBe(RecordType.EXEC);
    // '/usr/bin/täst' 14 bytes and its NUL: 15; then 'täst' 5 bytes, NUL, NUL, '--flag=1', NUL: 16; rounded up to 8.
    expect(exec.length).toBe(cw_exec.fields.data[0] + 32);
    expect(exec.readUInt32LE(cw_exec.fields.filename_len[0])).toBe(15);
    expect(exec.readUInt32LE(cw_exec.fields.args_len[0])).toBe(16);
    expect(encodeRecord(ALL[4]!).length).toBe(cw_cgroup.size);
  });

  it('cuts strings to their field, as the kernel does, and the decoder reads the cut', () => {
    const long = 'x'.repeat(cw_cgroup.fields.path[1] + 10);
    const [r] = decodeBatch(encodeRecord({ ...(ALL[4] as Extract<KernelRecord, { kind: 'cgroup_mkdir' }>), path: long })).records;
    expect((r as { path: string }).path).toBe(long.slice(0, cw_cgroup.fields.path[1] - 1));
  });
});
