import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeCgroupLookups } from '../../src/container/cgroup-lookups';
import { CgroupRegistry } from '../../src/container/cgroups';
import { Enricher } from '../../src/container/enrich';
import type { ContainerFacts } from '../../src/container/lifecycle';
import type { KernelRecord, Namespaces } from '../../src/decode/records';
import { containerFromCgroupPath } from '../../src/meta/cgroup-path';
import { ProcessTable } from '../../src/process/table';

// A node's runtime state dirs, laid out as containerd 1.6, runc and crun lay them out.
const dir = mkdtempSync(join(tmpdir(), 'cw-lookups-'));
const roots = { containerdState: join(dir, 'containerd'), runcRoot: join(dir, 'runc'), crunRoot: join(dir, 'crun') };
const tasks = join(roots.containerdState, 'io.containerd.runtime.v2.task');
const MOBY = 'ab'.repeat(32);
mkdirSync(join(tasks, 'default', 'cw-sd-ctr'), { recursive: true });
mkdirSync(join(tasks, 'moby', MOBY), { recursive: true });
mkdirSync(join(dir, 'elsewhere', 'planted'), { recursive: true });
symlinkSync(join(dir, 'elsewhere', 'planted'), join(tasks, 'default', 'planted'));
mkdirSync(join(roots.runcRoot, 'web-1'), { recursive: true });
mkdirSync(join(roots.crunRoot, 'db'), { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("nodeCgroupLookups: what the node's state dirs know", () => {
  const l = nodeCgroupLookups(roots);

  it('containerd tasks by namespace, runc and crun containers by id', () => {
    expect([...(l.containerdNamespaces ?? [])]).toEqual(['default', 'moby']);
    expect(l.containerdIdOf?.('cw-sd-ctr')).toBe('default');
    expect(l.containerdIdOf?.(MOBY)).toBe('moby');
    expect(l.containerdIdOf?.('nope')).toBeUndefined();
    expect(l.ociRuntimeOf?.('web-1')).toBe('RUNC');
    expect(l.ociRuntimeOf?.('db')).toBe('CRUN');
    expect(l.ociRuntimeOf?.('cw-sd-ctr')).toBeUndefined();
  });

  it('never follows a link, never takes a path for an id', () => {
    expect(l.containerdIdOf?.('planted')).toBeUndefined();
    for (const bad of ['..', '.', '', '../moby', 'default/cw-sd-ctr']) {
      expect(l.containerdIdOf?.(bad)).toBeUndefined();
      expect(l.ociRuntimeOf?.(bad)).toBeUndefined();
    }
  });

  it('a node without containerd or runc state knows nothing, and says so without throwing', () => {
    const none = nodeCgroupLookups({ containerdState: join(dir, 'absent'), runcRoot: join(dir, 'absent'), crunRoot: join(dir, 'absent') });
    expect(none.containerdIdOf?.('cw-sd-ctr')).toBeUndefined();
    expect(none.ociRuntimeOf?.('web-1')).toBeUndefined();
  });

  it('names the recorded systemd paths with them', () => {
    expect(containerFromCgroupPath('/system.slice/ctr-cw-sd-ctr.scope', l)).toEqual({ runtime: 'CONTAINERD', id: 'cw-sd-ctr' });
    expect(containerFromCgroupPath('/default/cw-sd-ctr', l)).toEqual({ runtime: 'CONTAINERD', id: 'cw-sd-ctr' });
    expect(containerFromCgroupPath('/system.slice/runc-web-1.scope', l)).toEqual({ runtime: 'RUNC', id: 'web-1' });
  });
});

describe('Enricher: the cgroup path names a container when its runtime did not say', () => {
  const ns: Namespaces = { mnt: 1, pid: 2, net: 3, uts: 4, ipc: 5, cgroup: 6, user: 7, time: 8 };
  const host: Namespaces = { mnt: 11, pid: 12, net: 13, uts: 14, ipc: 15, cgroup: 6, user: 7, time: 8 };
  const enricherWith = (path: string) => {
    const cgroups = new CgroupRegistry({ mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' });
    cgroups.onRecord({ kind: 'cgroup_mkdir', cgroupId: 77n, path } as KernelRecord);
    const e = new Enricher(new ProcessTable({ lookup: () => undefined }), host, cgroups, pino({ level: 'silent' }), () =>
      nodeCgroupLookups(roots),
    );
    const c: ContainerFacts = {
      key: 1,
      status: 'started',
      initTgid: 4242,
      initStartNs: 1n,
      ns,
      cgroupId: 77n,
      rootChange: 'pivot_root',
      createdNs: 1n,
      existing: false,
    };
    return e.enrich(c).container;
  };

  it("ctr's systemd scope: containerd's id and runtime, not a synthetic one", () => {
    const k = enricherWith('/system.slice/ctr-cw-sd-ctr.scope');
    expect([k.id, k.runtime, k.cgroupPath]).toEqual(['cw-sd-ctr', 'CONTAINERD', '/system.slice/ctr-cw-sd-ctr.scope']);
  });

  it('a scope nobody knows stays unnamed: a synthetic id, runtime UNKNOWN', () => {
    const k = enricherWith('/system.slice/ctr-gone.scope');
    expect([k.id, k.runtime]).toEqual(['mntns-1-4242', 'UNKNOWN']);
  });
});
