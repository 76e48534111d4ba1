import type { ObjectRecord } from '../decode/records';
import { ObjFlag } from '../decode/layout';
import type { Severity } from './types';
import { devName, type HostFs } from '../host-fs';

/**
 * Pure decisions on what a syscall touched (cw_obj records): kernel control
 * files, mounted superblocks, new roots. Every input is a kernel fact read at
 * syscall exit; the path a process passed only appears in messages.
 */

export const MAGIC = {
  CGROUP: 0x27e0eb,
  CGROUP2: 0x63677270,
  PROC: 0x9fa0,
  SYSFS: 0x62656572,
  TMPFS: 0x01021994,
  HUGETLBFS: 0x958458f6,
} as const;

const FMODE_WRITE = 0x2;
const MS_BIND = 4096n;
const LOOP_MAJOR = 7;

export interface ControlFile {
  /** Where the file is, named from the kernel's side: '/proc/sys/kernel/core_pattern', 'cgroup:/x/release_agent'. */
  file: string;
  kind: 'release_agent' | 'notify_on_release' | 'core_pattern' | 'modprobe' | 'uevent_helper' | 'sysrq-trigger' | 'proc-mem';
  severity: Severity;
}

/** A kernel control file opened for writing, from the file's superblock and dentry chain. */
export function controlFile(r: ObjectRecord): ControlFile | undefined {
  if (!(r.flags & ObjFlag.FILE) || !(r.fMode & FMODE_WRITE) || r.chainTruncated) return undefined;
  const chain = r.chain.join('/');
  const leaf = r.chain[r.chain.length - 1];
  switch (r.magic) {
    case MAGIC.CGROUP:
      if (leaf === 'release_agent') return { file: `cgroup:/${chain}`, kind: 'release_agent', severity: 'CRITICAL' };
      if (leaf === 'notify_on_release') return { file: `cgroup:/${chain}`, kind: 'notify_on_release', severity: 'HIGH' };
      return undefined;
    case MAGIC.SYSFS:
      return chain === 'kernel/uevent_helper' ? { file: `/sys/${chain}`, kind: 'uevent_helper', severity: 'CRITICAL' } : undefined;
    case MAGIC.PROC:
      if (chain === 'sys/kernel/core_pattern') return { file: `/proc/${chain}`, kind: 'core_pattern', severity: 'CRITICAL' };
      if (chain === 'sys/kernel/modprobe') return { file: `/proc/${chain}`, kind: 'modprobe', severity: 'CRITICAL' };
      // kernel.hotplug is the uevent helper's sysctl.
      if (chain === 'sys/kernel/hotplug') return { file: `/proc/${chain}`, kind: 'uevent_helper', severity: 'CRITICAL' };
      if (chain === 'sysrq-trigger') return { file: `/proc/${chain}`, kind: 'sysrq-trigger', severity: 'CRITICAL' };
      if (r.target && /^\d+\/(task\/\d+\/)?mem$/.test(chain)) return { file: `/proc/${chain}`, kind: 'proc-mem', severity: 'CRITICAL' };
      return undefined;
  }
  return undefined;
}

export type MountApi = 'mount(2)' | 'mount(2) bind' | 'fsmount' | 'open_tree' | 'move_mount' | 'mount_setattr';

export function mountApi(r: ObjectRecord): MountApi | undefined {
  switch (r.syscall) {
    case 'mount':
      return r.arg & MS_BIND ? 'mount(2) bind' : 'mount(2)';
    case 'fsmount':
    case 'open_tree':
    case 'move_mount':
    case 'mount_setattr':
      return r.syscall;
    default:
      return undefined;
  }
}

/** A new superblock attached (not a copy of a mount the process could already see). */
const newMount = (api: MountApi) => api === 'mount(2)' || api === 'fsmount';

export interface MountVerdict {
  ruleId: 'escape.mount-cgroupfs' | 'escape.mount-device';
  severity: Severity;
  api: MountApi;
  what: string;
  hostDevice?: boolean;
}

/**
 * What got mounted, from its superblock: a cgroup hierarchy (whatever type
 * name was asked for: `cpuset` mounts cgroup v1 too), or a filesystem on a
 * block device, compared with the host's own mounted devices. Copies of
 * mounts already visible (bind, open_tree, move_mount) and attribute changes
 * (mount_setattr) count for cgroup hierarchies when writable after the call, never as device
 * mounts (every volume is one).
 */
export function mountVerdict(r: ObjectRecord, host: HostFs | undefined): MountVerdict | undefined {
  const api = mountApi(r);
  if (!api) return undefined;
  const cgroup = r.magic === MAGIC.CGROUP || r.magic === MAGIC.CGROUP2;
  if (cgroup) {
    const what = `${r.magic === MAGIC.CGROUP ? 'cgroup v1' : 'cgroup2'} hierarchy`;
    if (newMount(api)) return { ruleId: 'escape.mount-cgroupfs', severity: 'HIGH', api, what };
    // A read-only copy, or a mount made read-only, opens no door.
    if (r.flags & ObjFlag.RDONLY) return undefined;
    return {
      ruleId: 'escape.mount-cgroupfs',
      severity: 'HIGH',
      api,
      what: `${what} (${api === 'mount_setattr' ? 'made writable' : 'writable copy'})`,
    };
  }
  if (!(r.flags & ObjFlag.BDEV) || !newMount(api)) return undefined;
  const hostDevice = host?.devs.has(r.dev) ?? false;
  const loop = Math.floor(r.dev / 0x100000) === LOOP_MAJOR;
  const severity: Severity = hostDevice ? 'CRITICAL' : loop ? 'MEDIUM' : 'HIGH';
  const what = `${hostDevice ? 'host ' : ''}block device ${devName(r.dev)} (${r.fstype})`;
  return { ruleId: 'escape.mount-device', severity, api, what, hostDevice };
}

export interface RootVerdict {
  severity: Severity;
  what: string;
  sameMount: boolean;
}

/**
 * The new root after chroot/pivot_root: the host's / itself (same superblock
 * and inode, through any bind mount, /proc/<pid>/root or chroot(".")), or a
 * host filesystem on a block device outside the container's own root (another
 * filesystem, or on the same one a dentry that is not below that root).
 */
export function rootVerdict(r: ObjectRecord, host: HostFs | undefined): RootVerdict | undefined {
  if (!host || r.ret !== 0 || !r.dev) return undefined;
  if (r.dev === host.rootDev && r.ino === host.rootIno) {
    return { severity: 'HIGH', what: "the host's /", sameMount: r.mntId === host.rootMntId };
  }
  // On the container root's own filesystem, only what lies outside that root's subtree is the host's.
  const outsideRef = !r.ref || r.ref.dev !== r.dev || !r.ref.beneath;
  // Through a bind of a directory (a volume the runtime gave it), a new root is inside what the
  // container could reach already: a sandbox in its workspace, not the host's filesystem.
  const wholeFs = !(r.flags & ObjFlag.MNT_SUBTREE);
  if (r.flags & ObjFlag.BDEV && host.devs.has(r.dev) && outsideRef && wholeFs) {
    return { severity: 'MEDIUM', what: `host filesystem ${devName(r.dev)} (${r.fstype}) at /${r.chain.join('/')}`, sameMount: false };
  }
  return undefined;
}

/** An exec'd file with no name left: a memfd, or a file deleted after it was opened. */
export function filelessExe(exe: { nlink: number; fsMagic: number }): 'memfd' | 'deleted file' | undefined {
  if (exe.nlink !== 0) return undefined;
  return exe.fsMagic === MAGIC.TMPFS || exe.fsMagic === MAGIC.HUGETLBFS ? 'memfd' : 'deleted file';
}
