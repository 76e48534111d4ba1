import { describe, expect, it } from 'vitest';
import { cgroupLayout, parseMountinfo } from '../../src/host';

// /proc/cgroups and /proc/self/mountinfo as they look on two kinds of node.
const HYBRID_CGROUPS = `#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t3\t1\t1
cpu\t1\t1\t1
cpuacct\t2\t1\t1
blkio\t7\t1\t1
memory\t4\t46\t1
devices\t5\t1\t1
freezer\t6\t1\t1
net_cls\t0\t1\t1
perf_event\t0\t1\t1
net_prio\t0\t1\t1
hugetlb\t0\t1\t1
pids\t8\t1\t1
`;
const HYBRID_MOUNTS = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
// cgroup v2 alone (systemd nodes today): every controller on the unified hierarchy, hierarchy 0.
const V2_CGROUPS = HYBRID_CGROUPS.replace(/\t[1-8]\t(\d+)\t1/g, '\t0\t$1\t1');
const V2_MOUNTS = `30 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

describe('cgroup layout', () => {
  it('tracks cgroup2 on a v2-only node, depending on nothing of the v1 tree', () => {
    expect(cgroupLayout(V2_CGROUPS, V2_MOUNTS)).toEqual({
      mode: 'v2',
      subsys: -1,
      hierarchy: 0,
      controller: 'cgroup2',
      mount: '/sys/fs/cgroup',
    });
  });

  it('tracks the pids v1 hierarchy on a hybrid node, with its kernel subsys index', () => {
    expect(cgroupLayout(HYBRID_CGROUPS, HYBRID_MOUNTS)).toEqual({
      mode: 'v1',
      subsys: 11,
      hierarchy: 8,
      controller: 'pids',
      mount: '/sys/fs/cgroup/pids',
    });
  });

  it('falls back to another v1 controller when pids is not mounted', () => {
    const noPids = HYBRID_CGROUPS.replace('pids\t8', 'pids\t0');
    expect(cgroupLayout(noPids, HYBRID_MOUNTS)).toMatchObject({
      mode: 'v1',
      controller: 'cpu',
      subsys: 1,
      hierarchy: 1,
      mount: '/sys/fs/cgroup/cpu',
    });
  });

  it('parses mountinfo super options', () => {
    expect(parseMountinfo(HYBRID_MOUNTS)[2]).toEqual({ mountPoint: '/sys/fs/cgroup/pids', fsType: 'cgroup', superOptions: ['rw', 'pids'] });
  });
});
