import { describe, expect, it } from 'vitest';
import { decodeBatch } from '../../src/decode/decode';
import { RecordType } from '../../src/decode/layout';
import type { KernelRecord, Namespaces, TaskInfo } from '../../src/decode/records';
import { Lifecycle, type LifecycleEvent } from '../../src/container/lifecycle';
import { ProcessTable } from '../../src/process/table';
import { cgroupRecord, execRecord, exitRecord, forkRecord, syscallRecord, task } from '../support/records';

const HOST: Namespaces = { mnt: 1, pid: 2, net: 3, uts: 4, ipc: 5, cgroup: 6, user: 7, time: 8 };
const CTR: Namespaces = { ...HOST, mnt: 11, pid: 12, net: 13, uts: 14, ipc: 15 };
const SC = { setns: 1, unshare: 2, mount: 3, chroot: 4, pivot_root: 5 };

function t(pid: number, ppid: number, ns: Namespaces, over: Partial<TaskInfo> = {}): TaskInfo {
  return task({
    pid,
    tgid: pid,
    ppid,
    nspid: pid,
    ns,
    startNs: BigInt(pid) * 1_000_000_000n,
    parentStartNs: BigInt(ppid) * 1_000_000_000n,
    ...over,
  });
}

function run(bufs: Buffer[]): { events: LifecycleEvent[]; table: ProcessTable } {
  const table = new ProcessTable();
  const lc = new Lifecycle(table, HOST);
  const events: LifecycleEvent[] = [];
  const { records, errors } = decodeBatch(Buffer.concat(bufs));
  expect(errors).toEqual([]);
  for (const r of records as KernelRecord[]) events.push(...lc.onRecord(r, table.apply(r)));
  return { events, table };
}

// runc create → runc init (host) → [2:INIT] in new namespaces: pivot_root, then exec of the entrypoint.
const runcCreate = [
  execRecord(t(100, 1, HOST), '/usr/sbin/runc', ['runc', 'create', '--bundle', '/b', 'web']),
  execRecord(t(101, 100, HOST), '/proc/self/exe', ['runc', 'init']),
  forkRecord(t(103, 100, CTR, { nspid: 1, comm: 'runc:[2:INIT]' }), 0b11111),
  cgroupRecord(RecordType.CGROUP_ATTACH, '/web', 77n, t(103, 100, CTR, { nspid: 1, cgroupId: 77n })),
  syscallRecord(SC.pivot_root, 0, [], t(103, 100, CTR, { nspid: 1, cgroupId: 77n })),
];
const start = execRecord(t(103, 1, CTR, { nspid: 1, cgroupId: 77n, comm: 'sleep' }), '/bin/sleep', ['sleep', '300']);

describe('container lifecycle from kernel facts', () => {
  it('runc: created at the root change, started at the init exec, exited with its status', () => {
    const { events } = run([...runcCreate, start, exitRecord(t(103, 1, CTR, { nspid: 1, cgroupId: 77n }), 3 << 8)]);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started', 'exited']);
    const c = events[0].c;
    expect(c.runtimeCall).toMatchObject({ runtime: 'runc', subcommand: 'create', id: 'web', bundle: '/b', pid: 100 });
    expect(c.initTgid).toBe(103);
    expect(c.cgroupId).toBe(77n);
    expect(events[1].kind === 'started' && events[1].process.argv).toEqual(['sleep', '300']);
    expect(events[2].kind === 'exited' && events[2].exitStatus).toBe(3 << 8);
  });

  it('a mount namespace without a new root is not a container', () => {
    const { events } = run([
      execRecord(t(200, 1, HOST), '/usr/bin/unshare', ['unshare', '-m', 'sh']),
      syscallRecord(SC.unshare, 0, [0x20000n], t(200, 1, { ...HOST, mnt: 21 })),
      execRecord(t(200, 1, { ...HOST, mnt: 21 }), '/bin/sh', ['sh']),
      exitRecord(t(200, 1, { ...HOST, mnt: 21 })),
    ]);
    expect(events).toEqual([]);
  });

  it('a chroot on the host mount namespace is not a container', () => {
    const { events } = run([
      syscallRecord(SC.chroot, 0, [], t(300, 1, HOST), HOST, ['/srv/root', '', '']),
      execRecord(t(300, 1, HOST), '/bin/sh'),
    ]);
    expect(events).toEqual([]);
  });

  it('runc exec: the entering process is an exec into the container, its children are not', () => {
    const entered = { ...CTR };
    const { events } = run([
      ...runcCreate,
      start,
      execRecord(t(400, 1, HOST), '/usr/sbin/runc', ['runc', 'exec', 'web', 'sh']),
      execRecord(t(401, 400, HOST), '/proc/self/exe', ['runc', 'init']),
      // stage-1 joins the namespaces (setns), stage-2 is forked inside and execs the command
      syscallRecord(SC.setns, 0, [5n, 0x20000n], t(402, 401, entered), HOST),
      forkRecord(t(403, 402, entered, { nspid: 7 }), 0),
      execRecord(t(403, 402, entered, { nspid: 7 }), '/bin/sh', ['sh']),
      forkRecord(t(404, 403, entered, { nspid: 8 }), 0),
      execRecord(t(404, 403, entered, { nspid: 8 }), '/bin/ls', ['ls']),
    ]);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started', 'exec']);
    expect(events[2].kind === 'exec' && events[2].process.tgid).toBe(403);
  });

  it('processes born inside the container are not execs into it', () => {
    const { events } = run([
      ...runcCreate,
      start,
      forkRecord(t(500, 103, CTR, { nspid: 2 }), 0),
      execRecord(t(500, 103, CTR, { nspid: 2 }), '/bin/ls', ['ls']),
    ]);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started']);
  });

  it('the cgroup going away ends a container whose init exit was not seen', () => {
    const { events } = run([...runcCreate, start, cgroupRecord(RecordType.CGROUP_RMDIR, '/web', 77n)]);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started', 'exited']);
    expect(events[2].kind === 'exited' && events[2].exitStatus).toBeUndefined();
  });

  it("a cgroup's removal ends every container in it, shared or its own, and no other", () => {
    // Two bare chroot containers left in their shell's cgroup 500, a third in its own 600.
    const bare = (pid: number, mnt: number, cgroupId: bigint) => {
      const ns = { ...HOST, mnt, pid: mnt + 1 };
      const tk = t(pid, 1, ns, { nspid: 1, cgroupId });
      return [forkRecord(tk, 0b10), syscallRecord(SC.chroot, 0, [], tk, ns, ['/r', '', '']), execRecord(tk, '/bin/sh', ['/bin/sh'])];
    };
    const { events } = run([
      ...bare(801, 41, 500n),
      ...bare(802, 43, 500n),
      ...bare(803, 45, 600n),
      cgroupRecord(RecordType.CGROUP_RMDIR, '/session', 500n),
      cgroupRecord(RecordType.CGROUP_RMDIR, '/session', 500n),
    ]);
    const exited = events.filter((e) => e.kind === 'exited').map((e) => e.c.initTgid);
    expect(events.filter((e) => e.kind === 'started').map((e) => e.c.initTgid)).toEqual([801, 802, 803]);
    expect(exited).toEqual([801, 802]);
  });

  it('a container whose entrypoint runs in another cgroup than its root change ends with that one', () => {
    const moved = execRecord(t(103, 1, CTR, { nspid: 1, cgroupId: 88n, comm: 'sleep' }), '/bin/sleep', ['sleep', '300']);
    const old = run([...runcCreate, moved, cgroupRecord(RecordType.CGROUP_RMDIR, '/web-setup', 77n)]);
    expect(old.events.map((e) => e.kind)).toEqual(['created', 'started']);
    expect(old.events[1].c.cgroupId).toBe(88n);
    const now = run([...runcCreate, moved, cgroupRecord(RecordType.CGROUP_RMDIR, '/web', 88n)]);
    expect(now.events.map((e) => e.kind)).toEqual(['created', 'started', 'exited']);
  });

  it('bare unshare + chroot: PID 1 of the new pid namespace execs after the chroot', () => {
    const ns = { ...HOST, mnt: 31, pid: 32 };
    const { events } = run([
      execRecord(t(600, 1, HOST), '/usr/bin/unshare', ['unshare', '--fork', '--pid', '--mount', 'chroot', '/r', '/bin/sh']),
      syscallRecord(SC.unshare, 0, [0x20020000n], t(600, 1, { ...HOST, mnt: 31 })),
      forkRecord(t(601, 600, ns, { nspid: 1 }), 0b10),
      execRecord(t(601, 600, ns, { nspid: 1 }), '/usr/sbin/chroot', ['chroot', '/r', '/bin/sh']),
      syscallRecord(SC.chroot, 0, [], t(601, 600, ns, { nspid: 1 }), ns, ['/r', '', '']),
      execRecord(t(601, 600, ns, { nspid: 1 }), '/bin/sh', ['/bin/sh']),
      exitRecord(t(601, 600, ns, { nspid: 1 })),
    ]);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started', 'exited']);
    expect(events[0].c.runtimeCall).toBeUndefined();
    expect(events[0].c.rootChange).toBe('chroot');
  });

  it('a root change that never execs, by an image unpacker of a daemon on the host, is not reported', () => {
    const ns = { ...HOST, mnt: 41 };
    // dockerd re-execs itself as docker-untar: that exec ("exe") is not one the kernel sends.
    const untar = [
      syscallRecord(SC.unshare, 0, [0x20000n], t(700, 690, ns)),
      syscallRecord(SC.chroot, 0, [], t(700, 690, ns), ns, ['/var/lib/docker/overlay2/x/diff', '', '']),
      forkRecord(t(701, 700, ns), 0),
      exitRecord(t(701, 700, ns)),
      exitRecord(t(700, 690, ns)),
    ];
    expect(run([execRecord(t(690, 1, HOST), '/usr/sbin/dockerd', ['dockerd', '--data-root', '/d']), ...untar]).events).toEqual([]);
    // The same, seen with its exec (exec_all): the daemon is its parent.
    expect(
      run([
        execRecord(t(690, 1, HOST), '/usr/sbin/dockerd', ['dockerd']),
        execRecord(t(700, 690, HOST), '/proc/self/exe', ['docker-untar', '/', '/var/lib/docker/overlay2/x/diff']),
        ...untar,
      ]).events,
    ).toEqual([]);
  });

  it('a root change that never execs is a container, reported on its first fork, exit or syscall', () => {
    const ns = { ...HOST, mnt: 42, pid: 43 };
    for (const [what, activity] of [
      ['fork', forkRecord(t(711, 710, ns, { nspid: 2 }), 0)],
      ['syscall', syscallRecord(SC.mount, 0, [0n], t(710, 1, ns, { nspid: 1 }), ns, ['none', '/x', 'tmpfs'])],
      ['exit', exitRecord(t(710, 1, ns, { nspid: 1 }))],
    ] as const) {
      const { events } = run([
        execRecord(t(709, 1, HOST), '/opt/sandbox', ['sandbox']),
        forkRecord(t(710, 709, ns, { nspid: 1 }), 0b11),
        syscallRecord(SC.chroot, 0, [], t(710, 709, ns, { nspid: 1 }), ns, ['/srv/jail', '', '']),
        activity,
      ]);
      const kinds = events.map((e) => e.kind);
      expect(kinds, what).toEqual(what === 'exit' ? ['created', 'started', 'exited'] : ['created', 'started']);
      expect(events[0].c.rootChange).toBe('chroot');
      expect(events[1].kind === 'started' && events[1].process.tgid).toBe(710);
    }
    // A runtime nobody knows that sets up (mounts) after the root change, then execs the entrypoint:
    // started at the mount, and the exec is its entry, not an exec into it.
    const { events } = run([
      execRecord(t(720, 1, HOST), '/usr/bin/lxc-start', ['lxc-start', '-n', 'x']),
      forkRecord(t(721, 720, ns, { nspid: 1 }), 0b11),
      syscallRecord(SC.pivot_root, 0, [], t(721, 720, ns, { nspid: 1 }), ns, ['.', '.', '']),
      syscallRecord(SC.mount, 0, [0n], t(721, 720, ns, { nspid: 1 }), ns, ['proc', '/proc', 'proc']),
      execRecord(t(721, 720, ns, { nspid: 1 }), '/sbin/init', ['/sbin/init']),
    ]);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started']);
    expect(events[1].c.entry?.argv).toEqual(['/sbin/init']);
  });
  it('one container per mount namespace: a second pivot_root in it is not a new container', () => {
    const again = syscallRecord(SC.pivot_root, 0, [], t(103, 100, CTR, { nspid: 1 }));
    const { events } = run([...runcCreate, again, start]);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started']);
  });
});

describe('whose a process is: lineage', () => {
  const unshareM = (pid: number, ppid: number, ns: Namespaces, o: Partial<TaskInfo> = {}) =>
    syscallRecord(SC.unshare, 0, [0x20000n], t(pid, ppid, ns, o), CTR);

  it('a process of a container stays its after unshare -m (and -U), and so do its children', () => {
    const priv = { ...CTR, mnt: 91, user: 92 };
    const table = new ProcessTable();
    const lc = new Lifecycle(table, HOST);
    const feed = (bufs: Buffer[]) => {
      for (const r of decodeBatch(Buffer.concat(bufs)).records as KernelRecord[]) lc.onRecord(r, table.apply(r));
    };
    feed([
      ...runcCreate,
      start,
      forkRecord(t(120, 103, CTR, { nspid: 2 }), 0),
      unshareM(120, 103, priv, { nspid: 2 }),
      forkRecord(t(121, 120, priv, { nspid: 3 }), 0),
      execRecord(t(121, 120, priv, { nspid: 3 }), '/bin/mount', ['mount']),
    ]);
    const c = lc.get(CTR.mnt)!;
    expect(lc.owner(table.get(120)!)).toBe(c);
    expect(lc.actingFor(table.get(121)!)).toBe(c);
    // The host's own unshare -m is no container's.
    feed([
      execRecord(t(130, 1, HOST), '/usr/bin/unshare', ['unshare', '-m', 'sh']),
      syscallRecord(SC.unshare, 0, [0x20000n], t(130, 1, { ...HOST, mnt: 93 })),
    ]);
    expect(lc.owner(table.get(130)!)).toBeNull();
  });

  it("a host process that entered a container is the container's, and stays so after unshare -m", () => {
    const table = new ProcessTable();
    const lc = new Lifecycle(table, HOST);
    const recs = [
      ...runcCreate,
      start,
      execRecord(t(140, 1, HOST), '/usr/bin/nsenter', ['nsenter', '-t', '103', '-a', 'sh']),
      syscallRecord(SC.setns, 0, [3n, 0n], t(140, 1, { ...CTR, pid: HOST.pid }), HOST),
      forkRecord(t(141, 140, CTR, { nspid: 9 }), 0),
      unshareM(141, 140, { ...CTR, mnt: 94 }, { nspid: 9 }),
    ];
    for (const r of decodeBatch(Buffer.concat(recs)).records as KernelRecord[]) lc.onRecord(r, table.apply(r));
    expect(lc.owner(table.get(140)!)).toBe(lc.get(CTR.mnt));
    expect(lc.owner(table.get(141)!)).toBe(lc.get(CTR.mnt));
  });

  it("a container made inside a container is nested in it; one sharing a pod's PID namespace is not", () => {
    const sandbox = { ...CTR, mnt: 95, pid: 96, user: 97 };
    const { events } = run([
      ...runcCreate,
      start,
      forkRecord(t(150, 103, CTR, { nspid: 2 }), 0),
      execRecord(t(150, 103, CTR, { nspid: 2 }), '/bin/unshare', ['unshare', '-Urmpf', 'chroot', '/sub', '/bin/sh']),
      syscallRecord(SC.unshare, 0, [0x10020000n], t(150, 103, { ...CTR, mnt: 95, user: 97 }, { nspid: 2 }), CTR),
      forkRecord(t(151, 150, sandbox, { nspid: 1 }), 0b10),
      execRecord(t(151, 150, sandbox, { nspid: 1 }), '/bin/chroot', ['chroot', '/sub', '/bin/sh']),
      syscallRecord(SC.chroot, 0, [], t(151, 150, sandbox, { nspid: 1 }), sandbox, ['/sub', '', '']),
      execRecord(t(151, 150, sandbox, { nspid: 1 }), '/bin/sh', ['/bin/sh']),
      // A second container of a pod, joining the first one's PID namespace, made by runc on the host.
      execRecord(t(160, 1, HOST), '/usr/sbin/runc', ['runc', 'create', '--bundle', '/b2', 'side']),
      forkRecord(t(163, 160, { ...CTR, mnt: 98, pid: CTR.pid }, { nspid: 5 }), 0b1),
      syscallRecord(SC.pivot_root, 0, [], t(163, 160, { ...CTR, mnt: 98 }, { nspid: 5 })),
    ]);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started', 'created', 'started', 'created']);
    const outer = events[0].c;
    expect(events[2].c.outer).toBe(outer);
    expect(events[2].c.key).toBe(95);
    expect(events[4].c.outer).toBeUndefined();
  });
});
