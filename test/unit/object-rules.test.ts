import { describe, expect, it } from 'vitest';
import { decodeBatch } from '../../src/decode/decode';
import { ObjFlag } from '../../src/decode/layout';
import type { ObjectRecord } from '../../src/decode/records';
import { controlFile, filelessExe, MAGIC, mountVerdict, rootVerdict } from '../../src/detect/object-rules';
import { hostFsFromMountinfo, kdev, type HostFs } from '../../src/host-fs';
import { objectRecord, type ObjectFields } from '../support/records';

const rec = (o: ObjectFields) => decodeBatch(objectRecord(o)).records[0] as ObjectRecord;

const MOUNTINFO = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '90 27 8:17 / /srv rw,relatime - xfs /dev/sdb1 rw',
  '',
].join('\n');
const HOST: HostFs = hostFsFromMountinfo(MOUNTINFO, 2n);

describe('object records decode', () => {
  it('round-trips every field, the chain from the root down', () => {
    const r = rec({
      syscall: 'openat2',
      ret: 3,
      arg: 0x241n,
      dev: kdev(0, 48),
      magic: MAGIC.PROC,
      fstype: 'proc',
      ino: 99n,
      fMode: 0x2,
      flags: ObjFlag.FILE | ObjFlag.TARGET | ObjFlag.TARGET_IN_NS,
      mntId: 91,
      chain: ['12', 'mem'],
      path: '/proc/self/mem',
      target: { tgid: 12, pidns: 4026532251, startNs: 7n },
    });
    expect(r).toMatchObject({
      kind: 'object',
      syscall: 'openat2',
      ret: 3,
      arg: 0x241n,
      dev: 48,
      magic: MAGIC.PROC,
      fstype: 'proc',
      ino: 99n,
      fMode: 2,
      mntId: 91,
      chain: ['12', 'mem'],
      chainTruncated: false,
      path: '/proc/self/mem',
    });
    expect(r.target).toEqual({ tgid: 12, vpid: false, pidns: 4026532251, inNs: true, startNs: 7n });
    expect(r.ref).toBeUndefined();
  });
});

describe('host filesystems', () => {
  it('reads / and every mounted device from mountinfo', () => {
    expect(HOST.rootDev).toBe(kdev(254, 0));
    expect(HOST.rootMntId).toBe(27);
    expect(HOST.devs.has(kdev(8, 17))).toBe(true);
    expect(() => hostFsFromMountinfo('22 27 0:21 / /proc rw - proc proc rw\n', 2n)).toThrow(/no mount at \//);
  });
});

describe('control files', () => {
  const f = (magic: number, chain: string[], fMode = 0x2, flags = ObjFlag.FILE) =>
    controlFile(rec({ syscall: 'openat', magic, chain, fMode, flags }));
  it('names them from the kernel side', () => {
    expect(f(MAGIC.PROC, ['sys', 'kernel', 'core_pattern'])).toEqual({
      file: '/proc/sys/kernel/core_pattern',
      kind: 'core_pattern',
      severity: 'CRITICAL',
    });
    expect(f(MAGIC.PROC, ['sys', 'kernel', 'hotplug'])?.kind).toBe('uevent_helper');
    expect(f(MAGIC.PROC, ['sysrq-trigger'])?.kind).toBe('sysrq-trigger');
    expect(f(MAGIC.SYSFS, ['kernel', 'uevent_helper'])?.file).toBe('/sys/kernel/uevent_helper');
    expect(f(MAGIC.CGROUP, ['release_agent'])).toEqual({ file: 'cgroup:/release_agent', kind: 'release_agent', severity: 'CRITICAL' });
    expect(f(MAGIC.CGROUP, ['x', 'y', 'notify_on_release'])?.severity).toBe('HIGH');
  });
  it('ignores read-only opens, other filesystems and other procfs files', () => {
    expect(f(MAGIC.PROC, ['sys', 'kernel', 'core_pattern'], 0x1)).toBeUndefined();
    expect(f(0xef53, ['etc', 'core_pattern'])).toBeUndefined();
    expect(f(MAGIC.CGROUP2, ['release_agent'])).toBeUndefined();
    expect(f(MAGIC.PROC, ['sys', 'kernel', 'core_pattern'], 0x2, 0)).toBeUndefined();
    // /proc/<pid>/mem only with the process the kernel named.
    expect(f(MAGIC.PROC, ['12', 'mem'])).toBeUndefined();
    expect(
      controlFile(
        rec({
          syscall: 'openat',
          magic: MAGIC.PROC,
          chain: ['12', 'task', '13', 'mem'],
          fMode: 2,
          flags: ObjFlag.FILE | ObjFlag.TARGET,
          target: { tgid: 12 },
        }),
      )?.kind,
    ).toBe('proc-mem');
  });
});

describe('mounts', () => {
  const v = (o: ObjectFields) => mountVerdict(rec(o), HOST);
  it('a cgroup hierarchy by its superblock, whatever the type asked for, with the API named', () => {
    expect(v({ syscall: 'mount', magic: MAGIC.CGROUP, fstype: 'cgroup' })).toMatchObject({
      ruleId: 'escape.mount-cgroupfs',
      severity: 'HIGH',
      api: 'mount(2)',
    });
    expect(v({ syscall: 'fsmount', magic: MAGIC.CGROUP2, fstype: 'cgroup2' })).toMatchObject({
      severity: 'HIGH',
      api: 'fsmount',
      what: 'cgroup2 hierarchy',
    });
    expect(v({ syscall: 'open_tree', magic: MAGIC.CGROUP, flags: ObjFlag.RDONLY })).toBeUndefined();
    expect(v({ syscall: 'mount_setattr', magic: MAGIC.CGROUP })).toMatchObject({
      severity: 'HIGH',
      api: 'mount_setattr',
      what: 'cgroup v1 hierarchy (made writable)',
    });
    expect(v({ syscall: 'mount_setattr', magic: MAGIC.CGROUP, flags: ObjFlag.RDONLY })).toBeUndefined();
    expect(v({ syscall: 'mount_setattr', magic: 0xef53, flags: ObjFlag.BDEV, dev: kdev(254, 0) })).toBeUndefined();
    expect(v({ syscall: 'mount', arg: 4096n, magic: MAGIC.CGROUP })).toMatchObject({ severity: 'HIGH', api: 'mount(2) bind' });
  });
  it('a block device: CRITICAL when the host has it mounted, MEDIUM for a loop device; never a copy of a mount', () => {
    expect(v({ syscall: 'mount', magic: 0xef53, fstype: 'ext4', flags: ObjFlag.BDEV, dev: kdev(254, 0) })).toMatchObject({
      ruleId: 'escape.mount-device',
      severity: 'CRITICAL',
      hostDevice: true,
    });
    expect(v({ syscall: 'fsmount', magic: 0xef53, fstype: 'ext4', flags: ObjFlag.BDEV, dev: kdev(8, 2) })).toMatchObject({
      severity: 'HIGH',
      hostDevice: false,
    });
    expect(v({ syscall: 'mount', magic: 0xef53, fstype: 'ext4', flags: ObjFlag.BDEV, dev: kdev(7, 0) })).toMatchObject({
      severity: 'MEDIUM',
    });
    expect(v({ syscall: 'mount', arg: 4096n, magic: 0xef53, flags: ObjFlag.BDEV, dev: kdev(254, 0) })).toBeUndefined();
    expect(v({ syscall: 'open_tree', magic: 0xef53, flags: ObjFlag.BDEV, dev: kdev(254, 0) })).toBeUndefined();
    expect(v({ syscall: 'mount', magic: MAGIC.TMPFS, fstype: 'tmpfs', dev: kdev(0, 60) })).toBeUndefined();
  });
});

describe('new roots', () => {
  const v = (o: Partial<ObjectFields>) => rootVerdict(rec({ syscall: 'chroot', ...o }), HOST);
  it("the host's / by device and inode, through any mount of it", () => {
    expect(v({ dev: kdev(254, 0), ino: 2n, mntId: 27, flags: ObjFlag.BDEV | ObjFlag.SB_ROOT })).toMatchObject({
      severity: 'HIGH',
      sameMount: true,
    });
    expect(v({ dev: kdev(254, 0), ino: 2n, mntId: 300, flags: ObjFlag.BDEV, ref: { dev: kdev(254, 0), ino: 5n } })).toMatchObject({
      severity: 'HIGH',
      sameMount: false,
    });
  });
  it('a host filesystem outside the container root: MEDIUM; its own subdirectory, an overlay, a failure: nothing', () => {
    expect(v({ dev: kdev(8, 17), ino: 9n, flags: ObjFlag.BDEV, ref: { dev: kdev(0, 70), ino: 1n } })?.severity).toBe('MEDIUM');
    expect(v({ dev: kdev(254, 0), ino: 9n, flags: ObjFlag.BDEV, ref: { dev: kdev(254, 0), ino: 5n, beneath: true } })).toBeUndefined();
    // The container root on the host's disk (a runc bundle): a host directory outside that root is the host's.
    expect(v({ dev: kdev(254, 0), ino: 9n, flags: ObjFlag.BDEV, ref: { dev: kdev(254, 0), ino: 5n, beneath: false } })?.severity).toBe(
      'MEDIUM',
    );
    expect(v({ dev: kdev(0, 70), ino: 9n, ref: { dev: kdev(0, 70), ino: 1n } })).toBeUndefined();
    expect(v({ ret: -1, dev: kdev(254, 0), ino: 2n })).toBeUndefined();
  });

  it('a new root inside a bind of a directory (a volume the container was given) is not the host filesystem', () => {
    const outside = { dev: kdev(254, 0), ino: 9n, ref: { dev: kdev(254, 0), ino: 5n, beneath: false } };
    expect(v({ ...outside, flags: ObjFlag.BDEV })?.severity).toBe('MEDIUM');
    expect(v({ ...outside, flags: ObjFlag.BDEV | ObjFlag.MNT_SUBTREE })).toBeUndefined();
    // The host's / itself stays HIGH whatever mount led there.
    expect(v({ dev: HOST.rootDev, ino: HOST.rootIno, flags: ObjFlag.BDEV | ObjFlag.MNT_SUBTREE })?.severity).toBe('HIGH');
  });
});

describe('fileless exec', () => {
  it('memfd (tmpfs, no links), deleted file, ordinary file', () => {
    expect(filelessExe({ nlink: 0, fsMagic: MAGIC.TMPFS })).toBe('memfd');
    expect(filelessExe({ nlink: 0, fsMagic: 0xef53 })).toBe('deleted file');
    expect(filelessExe({ nlink: 1, fsMagic: MAGIC.TMPFS })).toBeUndefined();
  });
});
