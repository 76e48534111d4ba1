import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CgroupRegistry } from '../../src/container/cgroups';
import { Lifecycle, type ContainerFacts } from '../../src/container/lifecycle';
import { decodeBatch } from '../../src/decode/decode';
import type { KernelRecord, Namespaces, TaskInfo } from '../../src/decode/records';
import { RULES } from '../../src/detect/catalog';
import { deployment, enumeration, imageImport } from '../../src/detect/cli-patterns';
import { Detector } from '../../src/detect/detector';
import { ImageStore } from '../../src/detect/image-store';
import { join } from 'node:path';
import { DEFAULT_POLICY, globMatch, loadPolicy, parsePolicy, PolicyError } from '../../src/detect/policy';
import { sensitiveMounts, startRules } from '../../src/detect/start-rules';
import { ProcessTable } from '../../src/process/table';
import { execRecord, forkRecord, syscallRecord, task } from '../support/records';

describe('policy file', () => {
  it('parses rules, images, creators, discovery users, floor and state dir', () => {
    const p = parsePolicy([
      'rules:',
      '  escape.root-container: false',
      '  escape.privileged-container: { severity: critical }',
      'images: { allow: ["registry.example.com/*"] }',
      'trustedCreators: [/usr/bin/bwrap]',
      'discovery: { allowedUids: [0, 1000] }',
      'minSeverity: LOW',
      'stateDir: /var/lib/x',
    ].join('\n'));
    expect(p.rules).toEqual({ 'escape.root-container': { enabled: false }, 'escape.privileged-container': { enabled: true, severity: 'CRITICAL' } });
    expect(p).toMatchObject({ imageAllow: ['registry.example.com/*'], trustedCreators: ['/usr/bin/bwrap'], discoveryUids: [0, 1000], minSeverity: 'LOW', stateDir: '/var/lib/x' });
    expect(parsePolicy('')).toEqual(DEFAULT_POLICY);
  });

  const bad: [string, string][] = [
    ['rules:\n  escape.nope: true\n', 'p.yaml:2:3: unknown rule \'escape.nope\' (ctrwatch rules lists them)'],
    ['minSeverity: LOUD\n', "p.yaml:1:14: minSeverity must be one of INFO, LOW, MEDIUM, HIGH, CRITICAL, not 'LOUD'"],
    ['colour: blue\n', 'p.yaml:1:1: unknown key \'colour\' (rules, images, trustedCreators, discovery, minSeverity, stateDir)'],
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
      ['/', 'CRITICAL'], ['/run/containerd/containerd.sock', 'CRITICAL'], ['/dev/sda1', 'CRITICAL'], ['/var/lib/kubelet', 'HIGH'],
    ]);
  });
});

describe('action rules on synthetic records', () => {
  const HOST: Namespaces = { mnt: 1, pid: 2, net: 3, uts: 4, ipc: 5, cgroup: 6, user: 7, time: 8 };
  const CTR: Namespaces = { ...HOST, mnt: 11, pid: 12, net: 13 };
  // flags as the kernel sets them (task_fill): IN_CONTAINER outside the host's mount or pid namespace.
  const t = (pid: number, ppid: number, ns: Namespaces, o: Partial<TaskInfo> = {}) =>
    task({ pid, tgid: pid, ppid, nspid: pid, ns, startNs: BigInt(pid) * 1_000_000_000n, parentStartNs: BigInt(ppid) * 1_000_000_000n, flags: 4 | (ns.mnt !== HOST.mnt || ns.pid !== HOST.pid ? 1 : 0), ...o });

  function setup() {
    const procs = new ProcessTable();
    const lifecycle = new Lifecycle(procs, HOST);
    const det = new Detector({
      procs, lifecycle, cgroups: new CgroupRegistry({ mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' }), host: HOST,
      policy: DEFAULT_POLICY, wall: (k) => k, logger: pino({ level: 'silent' }), images: new ImageStore(),
      containerOf: () => ({ k: { id: 'c1', name: 'c1', runtime: 'RUNC' }, meta: { container: {}, problems: [] } }),
    });
    const feed = (bufs: Buffer[]) => {
      const out: string[] = [];
      for (const r of decodeBatch(Buffer.concat(bufs)).records as KernelRecord[]) {
        const p = procs.apply(r);
        lifecycle.onRecord(r, p);
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
    expect(feed([syscallRecord(7, 0, [0x241n], t(111, 103, CTR, { nspid: 3 }), CTR, ['/tmp/cg/release_agent', '', ''])])).toEqual(['escape.kernel-control-write:CRITICAL']);
    expect(feed([execRecord(t(131, 2, HOST), '/tmp/agent', ['/tmp/agent'])])).toEqual(['escape.usermode-helper:CRITICAL']);
  });

  it('setns from the host into a container (docker exec) is not an escape; from a container into the host is', () => {
    const feed = setup();
    expect(feed([syscallRecord(1, 0, [5n, 0x20000n], t(140, 1, CTR), HOST)])).toEqual([]);
    expect(feed([syscallRecord(1, 0, [5n, 0x20000n], t(141, 103, { ...CTR, mnt: HOST.mnt }, { nspid: 4 }), CTR)])).toEqual(['escape.setns-host:CRITICAL']);
  });
});

describe('rules by lineage', () => {
  const HOST: Namespaces = { mnt: 1, pid: 2, net: 3, uts: 4, ipc: 5, cgroup: 6, user: 7, time: 8 };
  const CTR: Namespaces = { ...HOST, mnt: 11, pid: 12, net: 13 };
  const t = (pid: number, ppid: number, ns: Namespaces, o: Partial<TaskInfo> = {}) =>
    task({ pid, tgid: pid, ppid, nspid: pid, ns, startNs: BigInt(pid) * 1_000_000_000n, parentStartNs: BigInt(ppid) * 1_000_000_000n, flags: 4 | (ns.mnt !== HOST.mnt || ns.pid !== HOST.pid ? 1 : 0), ...o });
  /** The record's kernel time (ns); the wall clock is the same in these tests. */
  const at = (b: Buffer, ktime: bigint) => {
    b.writeBigUInt64LE(ktime, 8);
    return b;
  };

  function setup() {
    const procs = new ProcessTable();
    const lifecycle = new Lifecycle(procs, HOST);
    const det = new Detector({
      procs, lifecycle, cgroups: new CgroupRegistry({ mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' }), host: HOST,
      policy: DEFAULT_POLICY, wall: (k) => k, logger: pino({ level: 'silent' }), images: new ImageStore(),
      containerOf: (c) => ({ k: { id: c.outer ? `c1/${c.key}` : 'c1', runtime: c.runtimeCall ? 'RUNC' : 'UNKNOWN', hostNamespaces: [] }, meta: { container: {}, problems: [] } }),
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
      expect(feed([
        forkRecord(t(200 + user, 103, CTR, { nspid: 2 }), 0),
        syscallRecord(2, 0, [0x20000n], t(200 + user, 103, priv, { nspid: 2 }), CTR),
        syscallRecord(3, 0, [0n], t(200 + user, 103, priv, { nspid: 2 }), priv, ['cgroup', '/tmp/cg', 'cgroup']),
        syscallRecord(7, 0, [0x241n], t(200 + user, 103, priv, { nspid: 2 }), priv, ['/tmp/cg/release_agent', '', '']),
        syscallRecord(1, 0, [3n, 0n], t(200 + user, 103, { ...priv, mnt: HOST.mnt }, { nspid: 2 }), priv),
      ])).toEqual(['escape.mount-cgroupfs:HIGH@11', 'escape.kernel-control-write:CRITICAL@11', 'escape.setns-host:CRITICAL@11']);
    }
  });

  it('a container process that was already running acts for its container (found by the scan)', () => {
    const feed = setup();
    // Pid 300: in the container, never reported (its fork predates the sensor): its parent is the init.
    expect(feed([syscallRecord(7, 0, [0x241n], t(300, 103, CTR, { nspid: 30 }), CTR, ['/sys/fs/cgroup/x/release_agent', '', ''])]))
      .toEqual(['escape.kernel-control-write:CRITICAL@11']);
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
    const k = { id: 'o/n', runtime: 'UNKNOWN' as const, hostNamespaces: ['NET' as const, 'PID' as const], mounts: [{ source: '/', destination: '/host', type: 'bind' }] };
    expect(startRules({ c, k, meta: { container: k, problems: [] }, policy: DEFAULT_POLICY }).map((f) => f.ruleId)).toEqual([]);
    // The same record for a container of the host's own.
    expect(startRules({ c: { ...c, outer: undefined }, k, meta: { container: k, problems: [] }, policy: DEFAULT_POLICY }).map((f) => `${f.ruleId}:${f.severity}`))
      .toEqual(['escape.host-namespaces:HIGH', 'escape.sensitive-mount:CRITICAL', 'deploy.unknown-runtime:MEDIUM']);
  });

  it('drift: the init exec\'ing a file written after the start fires; its own start does not', () => {
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
