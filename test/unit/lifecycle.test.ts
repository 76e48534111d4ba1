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
  return task({ pid, tgid: pid, ppid, nspid: pid, ns, startNs: BigInt(pid) * 1_000_000_000n, parentStartNs: BigInt(ppid) * 1_000_000_000n, ...over });
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
    const { events } = run([syscallRecord(SC.chroot, 0, [], t(300, 1, HOST), HOST, ['/srv/root', '', '']), execRecord(t(300, 1, HOST), '/bin/sh')]);
    expect(events).toEqual([]);
  });

  it('runc exec: the entering process is an exec into the container, its children are not', () => {
    const entered = { ...CTR };
    const { events } = run([
      ...runcCreate, start,
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
      ...runcCreate, start,
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

  it('a root change that never execs, with no runtime in sight, is not reported (image unpackers)', () => {
    const ns = { ...HOST, mnt: 41 };
    const { events } = run([
      execRecord(t(700, 1, HOST), '/proc/self/exe', ['docker-untar', '/', '/var/lib/docker/overlay2/x/diff']),
      syscallRecord(SC.unshare, 0, [0x20000n], t(700, 1, ns)),
      syscallRecord(SC.chroot, 0, [], t(700, 1, ns), ns, ['/var/lib/docker/overlay2/x/diff', '', '']),
      exitRecord(t(700, 1, ns)),
    ]);
    expect(events).toEqual([]);
  });

  it('one container per mount namespace: a second pivot_root in it is not a new container', () => {
    const again = syscallRecord(SC.pivot_root, 0, [], t(103, 100, CTR, { nspid: 1 }));
    const { events } = run([...runcCreate, again, start]);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started']);
  });
});
