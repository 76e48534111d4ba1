import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CgroupRegistry } from '../../src/container/cgroups';
import { Lifecycle, type ContainerFacts } from '../../src/container/lifecycle';
import { decodeBatch } from '../../src/decode/decode';
import type { KernelRecord, Namespaces, TaskInfo } from '../../src/decode/records';
import { RULES } from '../../src/detect/catalog';
import { cliOf, deployment, enumeration, imageImport } from '../../src/detect/cli-patterns';
import { Detector } from '../../src/detect/detector';
import { ImageStore } from '../../src/detect/image-store';
import { join } from 'node:path';
import { DEFAULT_POLICY, globMatch, loadPolicy, parsePolicy, PolicyError } from '../../src/detect/policy';
import { sensitiveMounts, startRules } from '../../src/detect/start-rules';
import { ProcessTable } from '../../src/process/table';
import { execRecord, forkRecord, objectRecord, syscallRecord, task } from '../support/records';
import { ObjFlag } from '../../src/decode/layout';
import { MAGIC } from '../../src/detect/object-rules';
import { kdev } from '../../src/host-fs';

describe('policy file', () => {
  it('parses rules, images, creators, discovery users, floor and state dir', () => {
    const p = parsePolicy(
      [
        'rules:',
        '  escape.root-container: false',
        '  escape.privileged-container: { severity: critical }',
        'images: { allow: ["registry.example.com/*"] }',
        'trustedCreators: [/usr/bin/bwrap]',
        'discovery: { allowedUids: [0, 1000] }',
        'minSeverity: LOW',
        'stateDir: /var/lib/x',
      ].join('\n'),
    );
    expect(p.rules).toEqual({
      'escape.root-container': { enabled: false },
      'escape.privileged-container': { enabled: true, severity: 'CRITICAL' },
    });
    expect(p).toMatchObject({
      imageAllow: ['registry.example.com/*'],
      trustedCreators: ['/usr/bin/bwrap'],
      discoveryUids: [0, 1000],
      minSeverity: 'LOW',
      stateDir: '/var/lib/x',
    });
    expect(parsePolicy('')).toEqual(DEFAULT_POLICY);
  });

  const bad: [string, string][] = [
    ['rules:\n  escape.nope: true\n', "p.yaml:2:3: unknown rule 'escape.nope' (ctrwatch rules lists them)"],
    ['minSeverity: LOUD\n', "p.yaml:1:14: minSeverity must be one of INFO, LOW, MEDIUM, HIGH, CRITICAL, not 'LOUD'"],
    [
      'colour: blue\n',
      "p.yaml:1:1: unknown key 'colour' (rules, images, trustedCreators, criClients, discovery, kubernetes, minSeverity, stateDir)",
    ],
    ['discovery:\n  allowedUids: [root]\n', 'p.yaml:2:17: each uid must be a whole number ≥ 0'],
    ['images:\n  allow: registry\n', 'p.yaml:2:10: images.allow must be a list'],
    ['rules: [1, 2]\n', 'p.yaml:1:8: rules must be a mapping of rule id to settings'],
    ['stateDir: relative/dir\n', 'p.yaml:1:11: stateDir must be an absolute path'],
  ];
  for (const [text, msg] of bad) {
    it(`refuses: ${msg.slice(7, 60)}`, () => {
      expect(() => parsePolicy(text, 'p.yaml')).toThrow(PolicyError);
      expect(() => parsePolicy(text, 'p.yaml')).toThrow(msg);
    });
  }

  it('the example policy in the repository is valid', () => {
    const p = loadPolicy(join(__dirname, '../../policy.example.yaml'));
    expect(p.rules['escape.root-container']).toEqual({ enabled: false });
    expect(p.imageAllow).toContain('registry.example.com/*');
  });

  it('refuses broken YAML with its position', () => {
    expect(() => parsePolicy('rules:\n  a: [1, 2\n', 'p.yaml')).toThrow(/^p\.yaml:\d+:\d+: /);
  });

  it('globs', () => {
    expect(globMatch('registry.example.com/*', 'registry.example.com/team/app:1')).toBe(true);
    expect(globMatch('registry.example.com/*', 'evil.com/registry.example.com/x')).toBe(false);
    expect(globMatch('*.example.com/app', 'a.example.com/app')).toBe(true);
  });

  it('every rule has an id, techniques and a known severity, ids unique', () => {
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
    for (const r of RULES) expect(r.techniques.every((t) => /^T\d{4}(\.\d{3})?$/.test(t))).toBe(true);
    const covered = new Set(RULES.flatMap((r) => r.techniques));
    for (const t of ['T1611', 'T1610', 'T1613', 'T1053.007', 'T1543.005', 'T1204.003']) expect(covered).toContain(t);
  });
});

describe('runtime command lines', () => {
  const lab = ['/usr/bin/podman', '--root', '/x', '--storage-driver', 'overlay', '--runtime', 'runc'];
  it('finds enumeration, deployment and image import, skipping option values', () => {
    expect(enumeration(['docker', '-H', 'unix:///s', 'ps', '-a'])).toBe('docker ps');
    expect(enumeration(['docker', 'container', 'ls'])).toBe('docker container ls');
    expect(enumeration(['kubectl', '--context', 'prod', 'get', 'pods'])).toBe('kubectl get pods');
    expect(enumeration(['ctr', '-n', 'k8s.io', 'c', 'ls'])).toBe('ctr c ls');
    expect(enumeration(['crictl', 'ps'])).toBe('crictl ps');
    expect(enumeration([...lab, 'ps'])).toBe('podman ps');
    expect(enumeration(['docker', 'run', 'x'])).toBeUndefined();
    expect(enumeration(['dockerd'])).toBeUndefined();
    expect(deployment([...lab, 'run', '--rm', 'img'])).toBe('podman run');
    expect(deployment(['ctr', 'run', 'img', 'id'])).toBe('ctr run');
    expect(deployment(['docker', 'ps'])).toBeUndefined();
    expect(imageImport([...lab, 'import', 'rootfs.tar', 'x'])).toBe('podman import');
    expect(imageImport(['ctr', '-a', 's', 'image', 'import', 'a.tar'])).toBe('ctr image import');
    expect(imageImport(['docker', 'build', '.'])).toBe('docker build');
  });

  it('names the CLI of an argv[0] the same way however often and after however many others', () => {
    const long = `/${'d/'.repeat(200)}docker`; // longer than the paths kept
    for (let round = 0; round < 2; round++) {
      expect(cliOf(['/usr/bin/docker', 'ps'])).toBe('docker');
      expect(cliOf(['/usr/bin/dockerd'])).toBeUndefined();
      expect(cliOf([long, 'ps'])).toBe('docker');
      expect(cliOf([])).toBeUndefined();
      // More distinct programs than it keeps: answers stay right after it is emptied.
      for (let i = 0; i < 5000; i++) expect(cliOf([`/opt/tool-${i}`])).toBeUndefined();
      expect(cliOf(['kubectl', 'get', 'pods'])).toBe('kubectl');
    }
  });
});

describe('sensitive mounts', () => {
  it('rates host /, devices, sockets and system dirs; not what runtimes bind in anyway', () => {
    const got = sensitiveMounts({
      mounts: [
        { source: '/', destination: '/host', type: 'bind' },
        { source: '/run/containerd/containerd.sock', destination: '/s', type: 'bind' },
        { source: '/dev/sda1', destination: '/d', type: 'bind' },
        { source: '/var/lib/kubelet', destination: '/k', type: 'bind' },
        { source: '/etc/hosts', destination: '/etc/hosts', type: 'bind' },
        { source: '/dev/null', destination: '/x', type: 'bind' },
        { source: 'proc', destination: '/proc', type: 'proc' },
        { source: '/srv/data', destination: '/data', type: 'bind' },
      ],
    });
    expect(got.map((m) => [m.source, m.severity])).toEqual([
      ['/', 'CRITICAL'],
      ['/run/containerd/containerd.sock', 'CRITICAL'],
      ['/dev/sda1', 'CRITICAL'],
      ['/var/lib/kubelet', 'HIGH'],
    ]);
  });
});

describe('action rules on synthetic records', () => {
  const HOST: Namespaces = { mnt: 1, pid: 2, net: 3, uts: 4, ipc: 5, cgroup: 6, user: 7, time: 8 };
  const CTR: Namespaces = { ...HOST, mnt: 11, pid: 12, net: 13 };
  // flags as the kernel sets them (task_fill): IN_CONTAINER outside the host's mount or pid namespace.
  const t = (pid: number, ppid: number, ns: Namespaces, o: Partial<TaskInfo> = {}) =>
    task({
      pid,
      tgid: pid,
      ppid,
      nspid: pid,
      ns,
      startNs: BigInt(pid) * 1_000_000_000n,
      parentStartNs: BigInt(ppid) * 1_000_000_000n,
      flags: 4 | (ns.mnt !== HOST.mnt || ns.pid !== HOST.pid ? 1 : 0),
      ...o,
    });

  function setup() {
    const procs = new ProcessTable();
    const lifecycle = new Lifecycle(procs, HOST);
    const det = new Detector({
      procs,
      lifecycle,
      cgroups: new CgroupRegistry({ mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' }),
      host: HOST,
      policy: DEFAULT_POLICY,
      wall: (k) => k,
      logger: pino({ level: 'silent' }),
      images: new ImageStore(),
      containerOf: () => ({ k: { id: 'c1', name: 'c1', runtime: 'RUNC' }, meta: { container: {}, problems: [] } }),
    });
    const feed = (bufs: Buffer[]) => {
      const out: string[] = [];
      for (const r of decodeBatch(Buffer.concat(bufs)).records as KernelRecord[]) {
        const p = procs.apply(r);
        for (const ev of lifecycle.onRecord(r, p)) det.onLifecycle(ev);
        out.push(...det.onRecord(r, p).map((f) => `${f.ruleId}:${f.severity}`));
      }
      return out;
    };
    // A runc container, started.
    feed([
      execRecord(t(100, 1, HOST), '/usr/sbin/runc', ['runc', 'create', 'c1']),
      syscallRecord(5, 0, [], t(103, 100, CTR, { nspid: 1 })),
      execRecord(t(103, 1, CTR, { nspid: 1 }), '/bin/sh', ['sh']),
    ]);
    return feed;
  }

  it('a module load from a container is CRITICAL (kernels with modules; none on the test machine)', () => {
    const feed = setup();
    expect(feed([syscallRecord(10, 0, [3n], t(110, 103, CTR, { nspid: 2 }))])).toEqual(['escape.module-load:CRITICAL']);
    expect(feed([syscallRecord(10, 0, [3n], t(120, 1, HOST))])).toEqual([]);
  });

  it('a usermode helper right after a release_agent write is CRITICAL, on its own LOW', () => {
    const feed = setup();
    expect(feed([execRecord(t(130, 2, HOST), '/sbin/modprobe', ['modprobe', 'x'])])).toEqual(['escape.usermode-helper:LOW']);
    // release_agent of a cgroup v1 hierarchy, opened for writing by a path that does not name it.
    const ra = objectRecord(
      {
        syscall: 'openat',
        ret: 3,
        arg: 1n,
        magic: MAGIC.CGROUP,
        fstype: 'cgroup',
        fMode: 0x2,
        flags: ObjFlag.FILE,
        chain: ['release_agent'],
        path: '/proc/self/fd/4',
      },
      t(111, 103, CTR, { nspid: 3 }),
    );
    expect(feed([ra])).toEqual(['escape.kernel-control-write:CRITICAL']);
    expect(feed([execRecord(t(131, 2, HOST), '/tmp/agent', ['/tmp/agent'])])).toEqual(['escape.usermode-helper:CRITICAL']);
  });

  it('setns from the host into a container (docker exec) is not an escape; from a container into the host is', () => {
    const feed = setup();
    expect(feed([syscallRecord(1, 0, [5n, 0x20000n], t(140, 1, CTR), HOST)])).toEqual([]);
    expect(feed([syscallRecord(1, 0, [5n, 0x20000n], t(141, 103, { ...CTR, mnt: HOST.mnt }, { nspid: 4 }), CTR)])).toEqual([
      'escape.setns-host:CRITICAL',
    ]);
  });

  it('kernel control files from the superblock and dentry chain, whatever path was passed', () => {
    const feed = setup();
    const open = (o: Partial<Parameters<typeof objectRecord>[0]>, pid: number) =>
      feed([
        objectRecord(
          { syscall: 'openat', ret: 3, arg: 1n, fMode: 0x2, flags: ObjFlag.FILE, path: '/tmp/x', ...o },
          t(pid, 103, CTR, { nspid: pid }),
        ),
      ]);
    expect(open({ magic: MAGIC.PROC, fstype: 'proc', chain: ['sys', 'kernel', 'core_pattern'] }, 150)).toEqual([
      'escape.kernel-control-write:CRITICAL',
    ]);
    expect(open({ syscall: 'openat2', magic: MAGIC.PROC, fstype: 'proc', chain: ['sys', 'kernel', 'modprobe'] }, 151)).toEqual([
      'escape.kernel-control-write:CRITICAL',
    ]);
    expect(open({ magic: MAGIC.SYSFS, fstype: 'sysfs', chain: ['kernel', 'uevent_helper'] }, 152)).toEqual([
      'escape.kernel-control-write:CRITICAL',
    ]);
    expect(open({ magic: MAGIC.CGROUP, fstype: 'cgroup', chain: ['a', 'b', 'notify_on_release'] }, 153)).toEqual([
      'escape.kernel-control-write:HIGH',
    ]);
    // Read-only, an ordinary file of that name, a procfs file of that name elsewhere: nothing.
    expect(open({ fMode: 0x1, magic: MAGIC.PROC, fstype: 'proc', chain: ['sys', 'kernel', 'core_pattern'] }, 154)).toEqual([]);
    expect(open({ magic: 0xef53, fstype: 'ext4', chain: ['tmp', 'core_pattern'] }, 155)).toEqual([]);
    expect(open({ magic: MAGIC.PROC, fstype: 'proc', chain: ['sys', 'fs', 'modprobe'] }, 156)).toEqual([]);
    // The same open from a host process is not a container's.
    expect(
      feed([
        objectRecord(
          { syscall: 'openat', ret: 3, fMode: 0x2, flags: ObjFlag.FILE, magic: MAGIC.PROC, chain: ['sys', 'kernel', 'core_pattern'] },
          t(157, 1, HOST),
        ),
      ]),
    ).toEqual([]);
  });

  it("a process that setns'd into the host still acts for its container (lineage)", () => {
    const feed = setup();
    feed([execRecord(t(160, 103, CTR, { nspid: 9 }), '/bin/nsenter', ['nsenter', '-t', '1', '-m'])]);
    const rec = objectRecord(
      { syscall: 'openat', ret: 3, fMode: 0x2, flags: ObjFlag.FILE, magic: MAGIC.PROC, chain: ['sys', 'kernel', 'core_pattern'] },
      t(161, 160, HOST, { parentStartNs: 160_000_000_000n }),
    );
    expect(feed([rec])).toEqual(['escape.kernel-control-write:CRITICAL']);
  });

  it('a mount namespace made inside a container stays the container (its pid namespace)', () => {
    const feed = setup();
    const NESTED = { ...CTR, mnt: 99 };
    const rec = objectRecord(
      { syscall: 'openat', ret: 3, fMode: 0x2, flags: ObjFlag.FILE, magic: MAGIC.PROC, chain: ['sys', 'kernel', 'core_pattern'] },
      t(165, 1, NESTED),
    );
    expect(feed([rec])).toEqual(['escape.kernel-control-write:CRITICAL']);
    const HOSTPID = { ...HOST, mnt: 98 };
    expect(
      feed([
        objectRecord(
          { syscall: 'openat', ret: 3, fMode: 0x2, flags: ObjFlag.FILE, magic: MAGIC.PROC, chain: ['sys', 'kernel', 'core_pattern'] },
          t(166, 1, HOSTPID),
        ),
      ]),
    ).toEqual([]);
  });

  it('another process: outside by the kernel pid-namespace verdict, else by lineage when the host pid namespace is shared', () => {
    const feed = setup();
    const mem = (tgid: number, flags: number, actor: ReturnType<typeof t>) =>
      feed([
        objectRecord(
          {
            syscall: 'openat',
            ret: 3,
            fMode: 0x2,
            flags: ObjFlag.FILE | ObjFlag.TARGET | flags,
            magic: MAGIC.PROC,
            chain: [String(tgid), 'mem'],
            target: { tgid },
          },
          actor,
        ),
      ]);
    // Own pid namespace: a struct pid inside it is the container's; one outside (a host /proc bind) is not.
    expect(mem(103, ObjFlag.TARGET_IN_NS, t(170, 103, CTR))).toEqual([]);
    expect(mem(1, 0, t(171, 103, CTR))).toEqual(['escape.process-memory-write:CRITICAL']);
    // From a pid namespace nested in the container, its own init is outside that namespace but inside the container.
    expect(mem(103, 0, t(175, 103, { ...CTR, pid: 77 }))).toEqual([]);
    // A container sharing the host's pid namespace: the table says whose process it is.
    const HPID = { ...CTR, pid: HOST.pid };
    feed([execRecord(t(200, 1, HOST), '/usr/sbin/runc', ['runc', 'create', 'c2']), execRecord(t(203, 200, HPID), '/bin/sh', ['sh'])]);
    feed([execRecord(t(300, 1, HOST), '/bin/sleep', ['sleep', '60'])]);
    expect(mem(300, ObjFlag.TARGET_IN_NS, t(204, 203, HPID))).toEqual(['escape.process-memory-write:CRITICAL']);
    expect(mem(203, ObjFlag.TARGET_IN_NS, t(205, 203, HPID))).toEqual([]);
    // process_vm_writev names a pid in the actor's namespace: inside, unless that namespace is the host's.
    const pvw = (tgid: number, actor: ReturnType<typeof t>, ret = 8) =>
      feed([objectRecord({ syscall: 'process_vm_writev', ret, flags: ObjFlag.TARGET | ObjFlag.TARGET_VPID, target: { tgid } }, actor)]);
    expect(pvw(1, t(172, 103, CTR))).toEqual([]);
    expect(pvw(300, t(206, 203, HPID))).toEqual(['escape.process-memory-write:CRITICAL']);
    expect(pvw(300, t(207, 203, HPID), -1)).toEqual(['escape.process-memory-write:MEDIUM']);
    const getfd = (flags: number, actor: ReturnType<typeof t>) =>
      feed([objectRecord({ syscall: 'pidfd_getfd', ret: 5, flags: ObjFlag.TARGET | flags, target: { tgid: 300 } }, actor)]);
    expect(getfd(0, t(173, 103, CTR))).toEqual(['escape.pidfd-getfd:HIGH']);
    expect(getfd(ObjFlag.TARGET_IN_NS, t(174, 103, CTR))).toEqual([]);
  });

  it('an exec of a memfd or a deleted file from a container', () => {
    const feed = setup();
    expect(feed([execRecord(t(180, 103, CTR, { nspid: 20 }), '/dev/fd/4', ['x'], false, { nlink: 0, fsMagic: MAGIC.TMPFS })])).toContain(
      'drift.exec-fileless:HIGH',
    );
    expect(feed([execRecord(t(181, 103, CTR, { nspid: 21 }), '/dev/fd/3', ['x'], false, { nlink: 0, fsMagic: 0x794c7630 })])).toContain(
      'drift.exec-fileless:HIGH',
    );
    expect(feed([execRecord(t(182, 103, CTR, { nspid: 22 }), '/bin/ls', ['ls'])])).not.toContain('drift.exec-fileless:HIGH');
    expect(feed([execRecord(t(183, 1, HOST), '/dev/fd/4', ['x'], false, { nlink: 0, fsMagic: MAGIC.TMPFS })])).toEqual([]);
  });

  it('mounts from the superblock: fsmount then move_mount of one cgroup mount is one finding', () => {
    const feed = setup();
    const m = { magic: MAGIC.CGROUP, fstype: 'cgroup', mntId: 77, flags: ObjFlag.SB_ROOT };
    expect(feed([objectRecord({ syscall: 'fsmount', ret: 4, ...m }, t(190, 103, CTR))])).toEqual(['escape.mount-cgroupfs:HIGH']);
    expect(feed([objectRecord({ syscall: 'move_mount', ...m, path: '/mnt' }, t(190, 103, CTR))])).toEqual([]);
    // Mount ids are reused: a later mount(2) with the same id is a finding of its own.
    expect(feed([objectRecord({ syscall: 'mount', ...m, path: '/tmp/cg' }, t(190, 103, CTR))])).toEqual(['escape.mount-cgroupfs:HIGH']);
    // mount(2) of tmpfs never reaches user space (the kernel sends cgroup and block-device mounts only); a bind of a volume is no device mount.
    expect(
      feed([
        objectRecord(
          { syscall: 'mount', arg: 4096n, magic: 0xef53, fstype: 'ext4', flags: ObjFlag.BDEV, dev: kdev(8, 1), mntId: 78 },
          t(191, 103, CTR),
        ),
      ]),
    ).toEqual([]);
  });
});

describe('rules by lineage', () => {
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
      flags: 4 | (ns.mnt !== HOST.mnt || ns.pid !== HOST.pid ? 1 : 0),
      ...o,
    });
  /** The record's kernel time (ns); the wall clock is the same in these tests. */
  const at = (b: Buffer, ktime: bigint) => {
    b.writeBigUInt64LE(ktime, 8);
    return b;
  };

  function setup() {
    const procs = new ProcessTable();
    const lifecycle = new Lifecycle(procs, HOST);
    const det = new Detector({
      procs,
      lifecycle,
      cgroups: new CgroupRegistry({ mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' }),
      host: HOST,
      policy: DEFAULT_POLICY,
      wall: (k) => k,
      logger: pino({ level: 'silent' }),
      images: new ImageStore(),
      containerOf: (c) => ({
        k: { id: c.outer ? `c1/${c.key}` : 'c1', runtime: c.runtimeCall ? 'RUNC' : 'UNKNOWN', hostNamespaces: [] },
        meta: { container: {}, problems: [] },
      }),
    });
    const feed = (bufs: Buffer[]) => {
      const out: string[] = [];
      for (const r of decodeBatch(Buffer.concat(bufs)).records as KernelRecord[]) {
        const p = procs.apply(r);
        for (const ev of lifecycle.onRecord(r, p)) out.push(...det.onLifecycle(ev).map((f) => `${f.ruleId}:${f.severity}`));
        out.push(...det.onRecord(r, p).map((f) => `${f.ruleId}:${f.severity}${f.container ? `@${f.container.key}` : ''}`));
      }
      return out;
    };
    feed([
      execRecord(t(100, 1, HOST), '/usr/sbin/runc', ['runc', 'create', 'c1']),
      syscallRecord(5, 0, [], t(103, 100, CTR, { nspid: 1 })),
      at(execRecord(t(103, 1, CTR, { nspid: 1 }), '/bin/sh', ['sh']), 5_000_000_000n),
    ]);
    return feed;
  }

  it('after unshare -m (or -Urm) in a container: cgroupfs mount, release_agent, setns into the host still fire, for that container', () => {
    const feed = setup();
    for (const user of [HOST.user, 77]) {
      const priv = { ...CTR, mnt: 50 + user, user };
      expect(
        feed([
          forkRecord(t(200 + user, 103, CTR, { nspid: 2 }), 0),
          syscallRecord(2, 0, [0x20000n], t(200 + user, 103, priv, { nspid: 2 }), CTR),
          objectRecord(
            { syscall: 'mount', ret: 0, magic: MAGIC.CGROUP, fstype: 'cgroup', mntId: 500 + user, path: '/tmp/cg' },
            t(200 + user, 103, priv, { nspid: 2 }),
          ),
          objectRecord(
            {
              syscall: 'openat',
              ret: 3,
              arg: 0x241n,
              magic: MAGIC.CGROUP,
              fstype: 'cgroup',
              fMode: 0x2,
              flags: ObjFlag.FILE,
              chain: ['release_agent'],
              path: '/tmp/cg/release_agent',
            },
            t(200 + user, 103, priv, { nspid: 2 }),
          ),
          syscallRecord(1, 0, [3n, 0n], t(200 + user, 103, { ...priv, mnt: HOST.mnt }, { nspid: 2 }), priv),
        ]),
      ).toEqual(['escape.mount-cgroupfs:HIGH@11', 'escape.kernel-control-write:CRITICAL@11', 'escape.setns-host:CRITICAL@11']);
    }
  });

  it('an open or exec on a mount whose maker the kernel killed is reported under the mount rule, for that container', () => {
    const feed = setup();
    const kill = { cls: 'mount_device', outcome: 'killed', arm: 1, err: 0 } as const;
    const onDisk = { dev: kdev(7, 3), magic: 0xef53, fstype: 'ext4', mntId: 612, flags: ObjFlag.FILE | ObjFlag.BDEV, kill };
    expect(
      feed([
        objectRecord({ syscall: 'openat', ret: 3, chain: ['secret'], path: '/tmp/m/secret', ...onDisk }, t(120, 103, CTR, { nspid: 5 })),
        objectRecord({ syscall: 'exec', chain: ['bin', 'sh'], path: '/tmp/m/bin/sh', ...onDisk }, t(121, 103, CTR, { nspid: 6 })),
        // The same open with no kernel kill is no finding: a read of an ordinary file.
        objectRecord({ syscall: 'openat', ret: 3, chain: ['secret'], ...onDisk, kill: undefined }, t(122, 103, CTR, { nspid: 7 })),
      ]),
    ).toEqual(['escape.mount-device:CRITICAL@11', 'escape.mount-device:CRITICAL@11']);
  });

  it('a container process that was already running acts for its container (found by the scan)', () => {
    const feed = setup();
    // Pid 300: in the container, never reported (its fork predates the sensor): its parent is the init.
    expect(
      feed([
        objectRecord(
          {
            syscall: 'openat',
            ret: 3,
            arg: 0x241n,
            magic: MAGIC.CGROUP,
            fstype: 'cgroup',
            fMode: 0x2,
            flags: ObjFlag.FILE,
            chain: ['x', 'release_agent'],
            path: '/sys/fs/cgroup/x/release_agent',
          },
          t(300, 103, CTR, { nspid: 30 }),
        ),
      ]),
    ).toEqual(['escape.kernel-control-write:CRITICAL@11']);
  });

  it('a sandbox in a user namespace of its own inside a container is a nested container, LOW; one in the host user namespace is HIGH', () => {
    const feed = setup();
    const sandbox = (pid: number, user: number) => {
      const ns = { ...CTR, mnt: pid + 1000, pid: pid + 2000, user };
      return feed([
        forkRecord(t(pid, 103, CTR, { nspid: 40 }), 0),
        syscallRecord(2, 0, [0x10020000n], t(pid, 103, { ...ns, pid: CTR.pid }, { nspid: 40 }), CTR),
        forkRecord(t(pid + 1, pid, ns, { nspid: 1 }), 0b10),
        syscallRecord(4, 0, [], t(pid + 1, pid, ns, { nspid: 1 }), ns, ['/sub', '', '']),
        at(execRecord(t(pid + 1, pid, ns, { nspid: 1 }), '/bin/sh', ['sh']), 9_000_000_000n),
      ]);
    };
    expect(sandbox(400, 99)).toEqual(['deploy.from-container:LOW']);
    expect(sandbox(500, HOST.user)).toEqual(['deploy.from-container:HIGH']);
  });

  it('a nested container: its mount sources and the host namespaces its outer one shares already are not news', () => {
    const outer = { key: 11, ns: { ...HOST, mnt: 11 } } as ContainerFacts;
    const c = { key: 12, ns: { ...HOST, mnt: 12 }, outer } as ContainerFacts;
    const k = {
      id: 'o/n',
      runtime: 'UNKNOWN' as const,
      hostNamespaces: ['NET' as const, 'PID' as const],
      mounts: [{ source: '/', destination: '/host', type: 'bind' }],
    };
    expect(startRules({ c, k, meta: { container: k, problems: [] }, policy: DEFAULT_POLICY }).map((f) => f.ruleId)).toEqual([]);
    // The same record for a container of the host's own.
    expect(
      startRules({ c: { ...c, outer: undefined }, k, meta: { container: k, problems: [] }, policy: DEFAULT_POLICY }).map(
        (f) => `${f.ruleId}:${f.severity}`,
      ),
    ).toEqual(['escape.host-namespaces:HIGH', 'escape.sensitive-mount:CRITICAL', 'deploy.unknown-runtime:MEDIUM']);
  });

  it("drift: the init exec'ing a file written after the start fires; its own start does not", () => {
    const feed = setup(); // started at 5 s; execRecord's exe ctime is 1700000001 s
    const late = (ctime: bigint, ktime: bigint) => {
      const b = at(execRecord(t(103, 1, CTR, { nspid: 1 }), '/tmp/dropped', ['/tmp/dropped']), ktime);
      b.writeBigInt64LE(ctime, 16 + 120 + 16); // cw_exec.exe_ctime
      return b;
    };
    expect(feed([late(4n, 6_000_000_000n)])).toEqual([]);
    expect(feed([late(6n, 6_000_000_000n)])).toEqual(['drift.exec-new-file:HIGH@11']);
    // In the second of the start: unpacked just before (old mtime) is not drift, written then is.
    const sameSecond = (mtime: bigint) => {
      const b = late(5n, 6_000_000_000n);
      b.writeBigInt64LE(mtime, 16 + 120 + 8); // cw_exec.exe_mtime
      return b;
    };
    expect(feed([sameSecond(1n)])).toEqual([]);
    expect(feed([sameSecond(5n)])).toEqual(['drift.exec-new-file:HIGH@11']);
  });
});
