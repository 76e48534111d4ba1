import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { NS_NAMES } from './decode/layout';
import { hostFsFromMountinfo, type HostFs } from './host-fs';

/** Facts about the node that the kernel programs are configured with. */
export interface CgroupLayout {
  /** 'v2': cgroup2 alone; 'v1': the tracked hierarchy is a v1 controller (hybrid or legacy). */
  mode: 'v1' | 'v2';
  /** Index of the controller in the kernel's subsys array (-1 for cgroup2). */
  subsys: number;
  hierarchy: number;
  controller: string;
  /** Where that hierarchy is mounted, when it is. */
  mount?: string;
}

export interface HostFacts {
  hostNs: number[];
  /** Where the host namespaces were read: PID 1's, else the sensor's own. */
  nsSource: 'pid1' | 'self';
  cgroup: CgroupLayout;
  bootId: string;
  /** The host's / and mounted devices (from the sensor's own mountinfo, in the host mount namespace). */
  fs?: HostFs;
}

const PROC_NS: Record<(typeof NS_NAMES)[number], string> = {
  mnt: 'mnt',
  pid: 'pid',
  net: 'net',
  uts: 'uts',
  ipc: 'ipc',
  cgroup: 'cgroup',
  user: 'user',
  time: 'time',
};

/** Namespace inode from the link text ("mnt:[4026531841]"): readlink works
 * on PID 1's links where stat is refused. */
export function nsInode(pid: string | number, ns: string): number {
  const m = /:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/${ns}`));
  if (!m) throw new Error(`unexpected /proc/${pid}/ns/${ns} link`);
  return Number(m[1]);
}

function nsInodes(pid: string): number[] | undefined {
  try {
    return NS_NAMES.map((n) => nsInode(pid, PROC_NS[n]));
  } catch {
    return undefined;
  }
}

/** The host's namespaces: PID 1's where readable, else ours (the sensor runs in the host's). */
export function hostNamespaces(): { ns: number[]; source: 'pid1' | 'self' } {
  const pid1 = nsInodes('1');
  if (pid1) return { ns: pid1, source: 'pid1' };
  const self = nsInodes('self');
  if (!self) throw new Error('cannot read /proc/self/ns/*: is /proc mounted?');
  return { ns: self, source: 'self' };
}

interface Mount {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    out.push({ mountPoint: left[4] ?? '', fsType: right[0] ?? '', superOptions: (right[2] ?? '').split(',') });
  }
  return out;
}

/** Controllers tried for the tracked v1 hierarchy: runtimes put containers at /<id> in these. */
const V1_PREFERENCE = ['pids', 'cpu', 'cpuset', 'devices', 'freezer', 'blkio', 'memory'];

/**
 * Chooses the cgroup hierarchy the kernel programs report: cgroup2 when no v1
 * controller is mounted (production nodes today), else a v1 controller that
 * runtimes place containers in. /proc/cgroups lists controllers in the
 * kernel's subsys id order, which is the index the BPF side needs.
 */
export function cgroupLayout(procCgroups: string, mountinfo: string): CgroupLayout {
  const rows = procCgroups
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/\s+/));
  const mounts = parseMountinfo(mountinfo);
  for (const want of V1_PREFERENCE) {
    const idx = rows.findIndex((r) => r[0] === want);
    if (idx < 0) continue;
    const hierarchy = Number(rows[idx][1]);
    if (!hierarchy) continue;
    const m = mounts.find((x) => x.fsType === 'cgroup' && x.superOptions.includes(want));
    return { mode: 'v1', subsys: idx, hierarchy, controller: want, mount: m?.mountPoint };
  }
  const m2 = mounts.find((x) => x.fsType === 'cgroup2');
  return { mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2', mount: m2?.mountPoint };
}

/** The host's / and mounted devices, from the sensor's own mountinfo (it runs in the host mount namespace). */
export function readHostFs(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): HostFs {
  return hostFsFromMountinfo(mountinfo, statSync('/', { bigint: true }).ino);
}

export function readHostFacts(): HostFacts {
  const { ns, source } = hostNamespaces();
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  const cg = cgroupLayout(readFileSync('/proc/cgroups', 'utf8'), mountinfo);
  const fs = readHostFs(mountinfo);
  const bootId = existsSync('/proc/sys/kernel/random/boot_id') ? readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() : '';
  return { hostNs: ns, nsSource: source, cgroup: cg, bootId, fs };
}
