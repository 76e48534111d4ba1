import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CgroupRegistry } from '../../src/container/cgroups';
import { Lifecycle } from '../../src/container/lifecycle';
import { kernelDev, parseNetUnix, RuntimeSockets, scanRuntimeSockets, type SocketScanIo } from '../../src/container/runtime-sockets';
import { decodeBatch } from '../../src/decode/decode';
import type { KernelRecord, Namespaces, TaskInfo } from '../../src/decode/records';
import { Detector } from '../../src/detect/detector';
import { bpfCmdName, bpfSeverity, signalName, signalSeverity, UringCounts } from '../../src/detect/guard-rules';
import { ImageStore } from '../../src/detect/image-store';
import { DEFAULT_POLICY, parsePolicy } from '../../src/detect/policy';
import { ProcessTable } from '../../src/process/table';
import { connectRecord, execRecord, guardRecord, syscallRecord, task, uringRecord } from '../support/records';

describe('guard decisions', () => {
  it('bpf(): CRITICAL only when a command that reaches or changes foreign objects succeeded', () => {
    expect(bpfCmdName(14n)).toBe('MAP_GET_FD_BY_ID');
    expect(bpfSeverity(14n, 3)).toBe('CRITICAL');
    expect(bpfSeverity(3n, 0)).toBe('CRITICAL'); // MAP_DELETE_ELEM
    expect(bpfSeverity(14n, -1)).toBe('HIGH');
    expect(bpfSeverity(12n, 0)).toBe('HIGH'); // MAP_GET_NEXT_ID: enumeration
    expect(bpfCmdName(99)).toBe('cmd 99');
  });

  it('signals: any from a container; from the host only a stop', () => {
    expect(signalSeverity(28, true)).toBe('CRITICAL');
    expect(signalSeverity(19, false)).toBe('HIGH');
    expect(signalSeverity(15, false)).toBeUndefined();
    expect(signalSeverity(17, false)).toBeUndefined();
    expect(signalName(19)).toBe('SIGSTOP');
    expect(signalName(34)).toBe('SIGRT2');
  });

  it('io_uring counts per container: the first at once, then once per interval', () => {
    const u = new UringCounts(1000n);
    expect(u.add('a', 18, 0n)).toEqual({ counts: { openat: 1 }, total: 1 });
    expect(u.add('a', 16, 10n)).toBeUndefined();
    expect(u.add('b', 16, 10n)).toEqual({ counts: { connect: 1 }, total: 1 });
    expect(u.add('a', 16, 2000n)).toEqual({ counts: { openat: 1, connect: 2 }, total: 3 });
  });

  it('policy: runtimePorts replaces the default list, and is validated', () => {
    expect(DEFAULT_POLICY.runtimePorts).toEqual([2375, 2376, 10250, 10255]);
    expect(parsePolicy('discovery: { runtimePorts: [2375, 8443] }').runtimePorts).toEqual([2375, 8443]);
    expect(() => parsePolicy('discovery:\n  runtimePorts: [70000]\n', 'p.yaml')).toThrow(
      'p.yaml:2:18: each port must be a whole number from 1 to 65535',
    );
  });
});

describe('runtime sockets by file identity', () => {
  it('converts a stat st_dev to the kernel encoding', () => {
    // major 8, minor 1 (sda1): st_dev 0x801; kernel (8 << 20) | 1
    expect(kernelDev(0x801n)).toBe((8 << 20) | 1);
    // major 259, minor 300: glibc puts the minor's high bits above bit 12
    const st = (259n << 8n) | (300n & 0xffn) | ((300n & ~0xffn) << 12n);
    expect(kernelDev(st)).toBe(((259 << 20) | 300) >>> 0);
  });

  it('reads listening unix sockets with a path from /proc/PID/net/unix', () => {
    const text = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '0000000000000000: 00000002 00000000 00010000 0001 01 5001 /run/x/docker.sock',
      '0000000000000000: 00000002 00000000 00010000 0001 01 5002 @abstract',
      '0000000000000000: 00000003 00000000 00000000 0001 03 5003 /run/x/docker.sock',
      '0000000000000000: 00000002 00000000 00010000 0001 01 5004 /run/x/api with space',
    ].join('\n');
    expect([...parseNetUnix(text)]).toEqual([
      ['5001', '/run/x/docker.sock'],
      ['5004', '/run/x/api with space'],
    ]);
  });

  const io = (over: Partial<SocketScanIo> = {}): SocketScanIo => ({
    stat: (p) =>
      p === '/run/docker.sock'
        ? { dev: 0x19n, ino: 10n, isSocket: true }
        : p === '/proc/50/root/srv/rt/api'
          ? { dev: 0x19n, ino: 11n, isSocket: true }
          : p === '/proc/60/root/srv/fake/api'
            ? { dev: 0x19n, ino: 12n, isSocket: true }
            : undefined,
    pids: () => [1, 50, 60],
    comm: (pid) => (({ 1: 'init', 50: 'containerd', 60: 'dockerd' }) as Record<number, string>)[pid],
    mntNs: (pid) => (pid === 60 ? 'mnt:[99]' : 'mnt:[1]'),
    fdLinks: (pid) => (pid === 50 ? ['socket:[700]', 'pipe:[3]'] : ['socket:[800]']),
    netUnix: (pid) => `h\n0: 2 0 00010000 1 01 ${pid === 50 ? 700 : 800} ${pid === 50 ? '/srv/rt/api' : '/srv/fake/api'}\n`,
    ...over,
  });

  it("finds well-known paths and the host's runtime daemons' listening sockets; not a daemon's namesake in a container", () => {
    const got = scanRuntimeSockets(io(), 1);
    expect(scanRuntimeSockets(io(), 99).map((s) => s.source)).toEqual(['path', 'dockerd']); // the host's namespace given, not the sensor's
    expect(got.map((s) => [s.path, s.source, s.ino])).toEqual([
      ['/run/docker.sock', 'path', 10n],
      ['/srv/rt/api', 'containerd', 11n],
    ]);
    expect(got[0].dev).toBe(kernelDev(0x19n));
  });

  it('a new miss rescans at once, a repeated one never; changes are pushed', () => {
    let now = 0;
    let list = [{ dev: 1, ino: 5n, path: '/a', source: 'path' }];
    let scans = 0;
    const pushed: number[] = [];
    const rs = new RuntimeSockets(
      () => (scans++, list),
      (l) => pushed.push(l.length),
      () => now,
      1000,
      100,
    );
    rs.refresh();
    expect(rs.match(1, 5n)?.path).toBe('/a');
    // A daemon started after the last scan: the first connect to its socket finds it.
    list = [...list, { dev: 1, ino: 6n, path: '/b', source: 'dockerd' }];
    now = 150;
    expect(rs.match(1, 6n)?.path).toBe('/b');
    expect(scans).toBe(2);
    // A socket that is no runtime's, reached again and again: one scan for its first miss only.
    now = 300;
    expect(rs.match(1, 7n)).toBeUndefined();
    for (now = 400; now < 20_000; now += 500) expect(rs.match(1, 7n)).toBeUndefined();
    expect(scans).toBe(3);
    // Within the minimum gap even a new miss waits, and stays new: its next connect scans.
    now = 20_000;
    rs.refresh();
    now = 20_050;
    expect(rs.match(1, 8n)).toBeUndefined();
    expect(scans).toBe(4);
    list = [...list, { dev: 1, ino: 8n, path: '/c', source: 'crio' }];
    now = 20_200;
    expect(rs.match(1, 8n)?.path).toBe('/c');
    expect(scans).toBe(5);
    expect(pushed).toEqual([1, 2, 3]);
  });

  it('a container making new sockets in a loop gets a few rescans, then one a second', () => {
    let now = 0;
    let scans = 0;
    const rs = new RuntimeSockets(
      () => (scans++, []),
      () => {},
      () => now,
      1000,
      100,
      3,
    );
    // 10 s of a new socket every 10 ms: 1,000 first misses.
    for (let i = 0; i < 1000; i++, now += 10) expect(rs.match(1, BigInt(100 + i))).toBeUndefined();
    // The three of the burst, then one per second (about nine more).
    expect(scans).toBeGreaterThanOrEqual(11);
    expect(scans).toBeLessThanOrEqual(13);
  });

  it('the scan reads no process the sensor knows to be in another mount namespace', () => {
    const read: number[] = [];
    const base = io();
    const got = scanRuntimeSockets({ ...base, comm: (pid) => (read.push(pid), base.comm(pid)) }, 1, (pid) => pid === 50);
    expect(read).toEqual([1, 60]);
    expect(got.map((s) => s.source)).toEqual(['path']);
  });
});

describe('guard and door rules on synthetic records', () => {
  const HOST: Namespaces = { mnt: 1, pid: 2, net: 3, uts: 4, ipc: 5, cgroup: 6, user: 7, time: 8 };
  const CTR: Namespaces = { ...HOST, mnt: 11, pid: 12, net: 13 };
  const t = (pid: number, ppid: number, ns: Namespaces, o: Partial<TaskInfo> = {}) =>
    task({
      pid,
      tgid: pid,
      ppid,
      nspid: pid,
      ns,
      startNs: BigInt(pid) * 1_000_000_000n,
      parentStartNs: BigInt(ppid) * 1_000_000_000n,
      ...o,
    });
  const IN = 1 | 4; // CW_TF_IN_CONTAINER | CW_TF_LEADER

  function setup(known: { dev: number; ino: bigint }[] = []) {
    const procs = new ProcessTable();
    const lifecycle = new Lifecycle(procs, HOST);
    const rs = new RuntimeSockets(
      () => known.map((k) => ({ ...k, path: '/run/rt', source: 'dockerd' })),
      () => {},
      () => 0,
      1e12,
    );
    rs.refresh();
    const det = new Detector({
      procs,
      lifecycle,
      cgroups: new CgroupRegistry({ mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' }),
      host: HOST,
      policy: DEFAULT_POLICY,
      wall: (k) => k,
      logger: pino({ level: 'silent' }),
      images: new ImageStore(),
      runtimeSockets: rs,
      containerOf: () => ({ k: { id: 'c1', name: 'c1', runtime: 'RUNC' }, meta: { container: {}, problems: [] } }),
    });
    const feed = (bufs: Buffer[]) => {
      const out: string[] = [];
      for (const r of decodeBatch(Buffer.concat(bufs)).records as KernelRecord[]) {
        const p = procs.apply(r);
        lifecycle.onRecord(r, p);
        out.push(
          ...det.onRecord(r, p).map((f) => `${f.ruleId}:${f.severity}${f.attributes?.matchedBy ? `:${f.attributes.matchedBy}` : ''}`),
        );
      }
      return out;
    };
    feed([
      execRecord(t(100, 1, HOST), '/usr/sbin/runc', ['runc', 'create', 'c1']),
      syscallRecord(5, 0, [], t(103, 100, CTR, { nspid: 1, flags: IN })),
      execRecord(t(103, 1, CTR, { nspid: 1, flags: IN }), '/bin/sh', ['sh']),
    ]);
    return feed;
  }

  it('signals and ptrace aimed at the sensor', () => {
    const feed = setup();
    expect(feed([guardRecord(1, 999, 28, 0, 1, t(110, 103, CTR, { nspid: 2, flags: IN }))])).toEqual(['sensor.signal:CRITICAL']);
    expect(feed([guardRecord(1, 999, 15, 0, 0, t(120, 1, HOST))])).toEqual([]);
    expect(feed([guardRecord(1, 999, 19, 0, 0, t(121, 1, HOST))])).toEqual(['sensor.signal:HIGH']);
    // An exiting child has no namespaces left: it is not taken for a container.
    expect(feed([guardRecord(1, 999, 10, 0, 0, t(122, 1, { ...HOST, mnt: 0, pid: 0 }, { flags: IN }))])).toEqual([]);
    expect(feed([guardRecord(2, 999, 0x4206, 0, 0, t(111, 103, CTR, { nspid: 3, flags: IN }))])).toEqual(['sensor.ptrace:CRITICAL']);
    expect(feed([guardRecord(2, 999, 16, 0, -1, t(123, 1, HOST))])).toEqual(['sensor.ptrace:HIGH']);
  });

  it('bpf() and io_uring from a container; not from the host', () => {
    const feed = setup();
    const c = t(112, 103, CTR, { nspid: 4, flags: IN });
    expect(feed([syscallRecord(32, 4, [14n, 0n, 120n, 7n], c)])).toEqual(['escape.bpf-from-container:CRITICAL']);
    expect(feed([syscallRecord(32, -1, [14n, 0n, 120n, 7n], c)])).toEqual(['escape.bpf-from-container:HIGH']);
    expect(feed([syscallRecord(32, 4, [14n, 0n, 120n, 7n], t(124, 1, HOST))])).toEqual([]);
    expect(feed([syscallRecord(33, 5, [8n], c)])).toEqual(['escape.io-uring-setup:MEDIUM']);
    expect(feed([uringRecord(18, 1n, c), uringRecord(16, 2n, c)])).toEqual(['evasion.io-uring-ops:LOW']);
  });

  it('runtime socket: by inode whatever the name, by the name the server bound, by port; not other sockets', () => {
    const feed = setup([{ dev: 25, ino: 77n }]);
    const c = t(113, 103, CTR, { nspid: 5, flags: IN });
    expect(feed([connectRecord({ family: 1, peerDev: 25, peerIno: 77n, path: '/srv/odd-name' }, c)])).toEqual([
      'discovery.runtime-socket:HIGH:inode',
    ]);
    expect(feed([connectRecord({ family: 1, peerDev: 25, peerIno: 78n, path: '/run/containerd/containerd.sock' }, c)])).toEqual([
      'discovery.runtime-socket:HIGH:bound-name',
    ]);
    expect(feed([connectRecord({ family: 1, peerDev: 25, peerIno: 79n, path: '/run/app/metrics.sock' }, c)])).toEqual([]);
    expect(feed([connectRecord({ family: 2, port: 10250, addr: [10, 0, 0, 1] }, c)])).toEqual(['discovery.runtime-socket:HIGH']);
    expect(feed([connectRecord({ family: 2, port: 2375, ret: -111, addr: [127, 0, 0, 1] }, c)])).toEqual([
      'discovery.runtime-socket:MEDIUM',
    ]);
    expect(feed([connectRecord({ family: 2, port: 8080, addr: [127, 0, 0, 1] }, c)])).toEqual([]);
    expect(feed([connectRecord({ family: 1, peerDev: 25, peerIno: 77n, path: '/srv/odd-name' }, t(125, 1, HOST))])).toEqual([]);
  });

  it('decodes the new records', () => {
    const r = decodeBatch(
      Buffer.concat([
        connectRecord({ family: 10, port: 2376, addr: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] }),
        guardRecord(1, 7, 19, -6, 0),
      ]),
    ).records;
    expect(r[0]).toMatchObject({ kind: 'connect', family: 'inet6', port: 2376, addr: 'fe80::1' });
    expect(r[1]).toMatchObject({ kind: 'guard', what: 'signal', targetTid: 7, sig: 19, code: -6, result: 0 });
  });
});
