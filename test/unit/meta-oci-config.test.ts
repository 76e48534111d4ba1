import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CLASSIC_CAPS,
  criFromAnnotations,
  isPrivilegedLike,
  jsonDepthExceeds,
  LIMITS,
  OciConfigError,
  parseOciConfig,
  readOciConfig,
  type OciParseOptions,
} from '../../src/meta/oci-config';
import { MetaReadError } from '../../src/meta/safe-read';

const FIX = path.join(__dirname, '../fixtures/meta');
const DOCKER_ID = 'b7bff6a1f2cd5fc975b0280d300b031a39fd483f4d1e954e4e5e25f374bb0d00';
const DOCKER_PRIV_ID = 'e417e6dfaee54668a21dc7a7c1c30d895de8a22cff80ad404b8065bfca74b69e';
const PODMAN_ID = 'a35c54ec232ea12cbce8abfcbe6503a6fe9e6a288d95ffa9abf3e8560283be18';
const PODMAN_PRIV_ID = '0062469f41e134460b2d8fd5f328966f723eb0e260aaecfb7df494910a5b919d';

// The namespace files that were the host's when the fixtures were recorded.
const HOST_NS_PATHS = new Set(['/proc/3059/ns/pid', '/tmp/ctrwatch-meta-rt/docker/exec/netns/default']);
const opts: OciParseOptions = { isHostNamespace: (_t, p) => HOST_NS_PATHS.has(p) };
const noHost: OciParseOptions = { isHostNamespace: () => false };

const bundles = {
  runc: path.join(FIX, 'runc-bundle'),
  runcPriv: path.join(FIX, 'runc-bundle-priv'),
  ctr: path.join(FIX, 'containerd-state/io.containerd.runtime.v2.task/default/cw-meta-ctr'),
  ctrPriv: path.join(FIX, 'containerd-state/io.containerd.runtime.v2.task/default/cw-meta-ctr-priv'),
  docker: path.join(FIX, `docker-exec/containerd/daemon/io.containerd.runtime.v2.task/moby/${DOCKER_ID}`),
  dockerPriv: path.join(FIX, `docker-exec/containerd/daemon/io.containerd.runtime.v2.task/moby/${DOCKER_PRIV_ID}`),
  podman: path.join(FIX, `podman-root/overlay-containers/${PODMAN_ID}/userdata`),
  podmanPriv: path.join(FIX, `podman-root/overlay-containers/${PODMAN_PRIV_ID}/userdata`),
};

const parse = (doc: unknown, o: OciParseOptions = noHost) => parseOciConfig(Buffer.from(JSON.stringify(doc)), o);
const minimal = (extra: Record<string, unknown> = {}) => ({ ociVersion: '1.0.2', ...extra });

function errOf(fn: () => unknown): OciConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OciConfigError);
    return err as OciConfigError;
  }
  throw new Error('expected an OciConfigError');
}

describe('recorded bundles', () => {
  it('runc spec default: own pid/net/ipc/uts/mnt, user and cgroup shared, 3 caps, not privileged', () => {
    const c = readOciConfig(bundles.runc, opts);
    expect(c.ociVersion).toBe('1.0.2-dev');
    expect(c.process).toMatchObject({ args: ['/bin/sleep', '300'], cwd: '/', uid: 0, gid: 0, terminal: false, noNewPrivileges: true });
    expect(c.process!.capabilities.effective).toEqual(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
    expect(c.hostNamespaces).toEqual(['USER', 'CGROUP']);
    expect(c.root).toEqual({ path: 'rootfs', readonly: false });
    expect(c.cgroupsPath).toBeUndefined();
    expect(c.privileged).toBe(false);
    expect(c.mounts.find((m) => m.destination === '/sys')).toMatchObject({ source: 'sysfs', type: 'sysfs', readOnly: true });
    expect(c.trimmed).toEqual([]);
  });

  it('runc privileged-ish bundle: host pid + net, / mounted rw, all caps, no seccomp, no masks', () => {
    const c = readOciConfig(bundles.runcPriv, opts);
    expect(c.hostNamespaces).toEqual(['PID', 'NET', 'USER', 'CGROUP']);
    expect(c.privileged).toBe(true);
    expect(c.cgroupsPath).toBe('/cwmeta/priv');
    expect(c.mounts.find((m) => m.destination === '/host')).toEqual({
      source: '/',
      destination: '/host',
      type: 'bind',
      readOnly: false,
      options: ['rbind', 'rw'],
    });
  });

  it('ctr run: cgroupsPath /<ns>/<id>, no annotations, not privileged', () => {
    const c = readOciConfig(bundles.ctr, opts);
    expect(c.cgroupsPath).toBe('/default/cw-meta-ctr');
    expect(c.annotations).toEqual({});
    expect(c.cri).toEqual({});
    expect(c.privileged).toBe(false);
    expect(c.hasSeccomp).toBe(false); // ctr applies no seccomp profile unless asked
    expect(c.hostNamespaces).toEqual(['USER', 'CGROUP']);
  });

  it('ctr run --privileged --net-host --with-ns pid:<host>: host pid by path, host net by absence, --label as annotation', () => {
    const c = readOciConfig(bundles.ctrPriv, opts);
    expect(c.namespaces).toContainEqual({ type: 'pid', path: '/proc/3059/ns/pid' });
    expect(c.hostNamespaces).toEqual(['PID', 'NET', 'USER', 'CGROUP']);
    expect(readOciConfig(bundles.ctrPriv, noHost).hostNamespaces).toEqual(['NET', 'USER', 'CGROUP']);
    expect(c.privileged).toBe(true);
    expect(c.annotations).toEqual({ app: 'cwmeta' });
    expect(c.mounts.map((m) => m.destination)).toContain('/run/containerd/containerd.sock');
  });

  it('docker run: the libnetwork prestart hook (a host program), seccomp, masks, read-only /sys', () => {
    const c = readOciConfig(bundles.docker, opts);
    expect(c.hooks).toEqual([
      {
        stage: 'prestart',
        path: '/proc/5217/exe',
        args: ['libnetwork-setkey', '-exec-root=/tmp/ctrwatch-meta-rt/docker/exec', DOCKER_ID, '36e0fc624686'],
      },
    ]);
    expect(c.hasSeccomp).toBe(true);
    expect(c.maskedPaths).toContain('/proc/kcore');
    expect(c.privileged).toBe(false);
    expect(c.cgroupsPath).toBe(`/docker/${DOCKER_ID}`);
    expect(c.hostname).toBe('b7bff6a1f2cd');
    expect(c.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.readOnly).toBe(true);
    expect(c.process!.capabilities.effective).toHaveLength(14);
  });

  it('docker --cap-add ALL (no SYS_RESOURCE here) + unconfined + --pid=host --net=host counts as privileged', () => {
    const c = readOciConfig(bundles.dockerPriv, opts);
    expect(c.process!.capabilities.effective).toHaveLength(37); // docker 20.10's ALL lacks PERFMON/BPF/CHECKPOINT_RESTORE
    expect(c.privileged).toBe(true);
    // --net=host is a namespace entry WITH a path (a bind mount of the host netns); --pid=host drops pid.
    expect(c.namespaces).toContainEqual({ type: 'network', path: '/tmp/ctrwatch-meta-rt/docker/exec/netns/default' });
    expect(c.hostNamespaces).toEqual(['PID', 'NET', 'USER', 'CGROUP']);
    expect(c.mounts.find((m) => m.destination === '/var/run/docker.sock')?.source).toBe('/tmp/ctrwatch-meta-rt/docker/docker.sock');
  });

  it("podman: plain and --privileged; podman's io.kubernetes.cri-o.* annotations do not make it CRI-O", () => {
    const plain = readOciConfig(bundles.podman, opts);
    expect(plain.annotations['io.kubernetes.cri-o.TTY']).toBe('false');
    expect(plain.cri).toEqual({});
    expect(plain.privileged).toBe(false);
    expect(plain.hostNamespaces).toEqual(['USER', 'CGROUP']);
    const priv = readOciConfig(bundles.podmanPriv, opts);
    expect(priv.annotations['io.podman.annotations.privileged']).toBe('TRUE');
    expect(priv.privileged).toBe(true);
    expect(priv.hostNamespaces).toEqual(['PID', 'NET', 'USER', 'CGROUP']);
  });
});

describe('CRI annotations (documented formats)', () => {
  it('containerd CRI', () => {
    const c = parse(
      minimal({
        annotations: {
          'io.kubernetes.cri.container-name': 'web',
          'io.kubernetes.cri.container-type': 'container',
          'io.kubernetes.cri.image-name': 'docker.io/library/nginx:1.27',
          'io.kubernetes.cri.sandbox-id': 'ab'.repeat(32),
          'io.kubernetes.cri.sandbox-name': 'web-7d4b9c-x2x9q',
          'io.kubernetes.cri.sandbox-namespace': 'shop',
          'io.kubernetes.cri.sandbox-uid': '4cad64d0-7a36-452a-8a08-bd3a694cdad5',
        },
      }),
    );
    expect(c.cri).toEqual({
      containerName: 'web',
      containerType: 'container',
      imageName: 'docker.io/library/nginx:1.27',
      sandboxId: 'ab'.repeat(32),
      sandboxName: 'web-7d4b9c-x2x9q',
      sandboxNamespace: 'shop',
      sandboxUid: '4cad64d0-7a36-452a-8a08-bd3a694cdad5',
      podName: 'web-7d4b9c-x2x9q',
      podNamespace: 'shop',
      podUid: '4cad64d0-7a36-452a-8a08-bd3a694cdad5',
    });
  });

  it('CRI-O', () => {
    expect(
      criFromAnnotations({
        'io.kubernetes.cri-o.ContainerType': 'container',
        'io.kubernetes.cri-o.ImageName': 'quay.io/x/y:1',
        'io.kubernetes.cri-o.ImageRef': 'quay.io/x/y@sha256:' + 'cd'.repeat(32),
        'io.kubernetes.cri-o.SandboxID': 'ef'.repeat(32),
        'io.kubernetes.pod.name': 'y-0',
        'io.kubernetes.pod.namespace': 'default',
        'io.kubernetes.pod.uid': 'u-1',
        'io.kubernetes.container.name': 'y',
      }),
    ).toEqual({
      containerType: 'container',
      imageName: 'quay.io/x/y:1',
      imageRef: 'quay.io/x/y@sha256:' + 'cd'.repeat(32),
      sandboxId: 'ef'.repeat(32),
      podName: 'y-0',
      podNamespace: 'default',
      podUid: 'u-1',
      containerName: 'y',
    });
  });
});

describe('semantics', () => {
  it('the last of ro/rw wins, as in mount(8)', () => {
    const c = parse(
      minimal({
        mounts: [{ destination: '/a', options: ['ro', 'rw'] }, { destination: '/b', options: ['rw', 'ro'] }, { destination: '/c' }],
      }),
    );
    expect(c.mounts.map((m) => m.readOnly)).toEqual([false, true, false]);
  });

  it('a namespace joined by path is the host only when the callback says so', () => {
    const ns = [
      { type: 'pid', path: '/proc/1/ns/pid' },
      { type: 'network', path: '/run/netns/other' },
      { type: 'mount' },
      { type: 'ipc' },
      { type: 'uts' },
      { type: 'user' },
      { type: 'cgroup' },
    ];
    const c = parse(minimal({ linux: { namespaces: ns } }), { isHostNamespace: (t, p) => t === 'pid' && p === '/proc/1/ns/pid' });
    expect(c.hostNamespaces).toEqual(['PID']);
  });

  it('privileged needs all three: nearly all caps with SYS_ADMIN, no seccomp, no masked paths', () => {
    const all = [...CLASSIC_CAPS];
    expect(isPrivilegedLike(all, false, [])).toBe(true);
    expect(
      isPrivilegedLike(
        all.filter((c) => c !== 'CAP_SYS_RESOURCE' && c !== 'CAP_AUDIT_READ'),
        false,
        [],
      ),
    ).toBe(true);
    expect(
      isPrivilegedLike(
        all.filter((c) => !['CAP_SYS_RESOURCE', 'CAP_AUDIT_READ', 'CAP_SYSLOG'].includes(c)),
        false,
        [],
      ),
    ).toBe(false);
    expect(
      isPrivilegedLike(
        all.filter((c) => c !== 'CAP_SYS_ADMIN'),
        false,
        [],
      ),
    ).toBe(false);
    expect(isPrivilegedLike(all, true, [])).toBe(false);
    expect(isPrivilegedLike(all, false, ['/proc/kcore'])).toBe(false);
  });
});

describe('hostile input', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-oci-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('a config.json that is a symlink to /etc/shadow is refused by the reader', () => {
    fs.symlinkSync('/etc/shadow', path.join(tmp, 'config.json'));
    expect(() => readOciConfig(tmp, opts)).toThrow(MetaReadError);
    try {
      readOciConfig(tmp, opts);
    } catch (err) {
      expect((err as MetaReadError).reason).toBe('symlink');
    }
  });

  it('a 10 MB config.json is refused before parsing, by the reader and by the parser', () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 0x20);
    big.write('{"ociVersion":"1"}');
    fs.writeFileSync(path.join(tmp, 'config.json'), big);
    expect(() => readOciConfig(tmp, opts)).toThrow(/too-large/);
    expect(errOf(() => parseOciConfig(big, opts)).reason).toBe('too-large');
  });

  it('malformed JSON, a non-object top level, a missing ociVersion', () => {
    expect(errOf(() => parseOciConfig(Buffer.from('{"ociVersion": "1",'), opts)).reason).toBe('malformed-json');
    expect(errOf(() => parseOciConfig(Buffer.from('\xff\xfe'), opts)).reason).toBe('malformed-json');
    expect(errOf(() => parse([minimal()])).reason).toBe('wrong-type');
    expect(errOf(() => parse(null)).reason).toBe('wrong-type');
    expect(errOf(() => parse({})).field).toBe('ociVersion');
  });

  it('wrong types name the field', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ mounts: 'x' }, 'mounts'],
      [{ mounts: [{ destination: 7 }] }, 'mounts[0].destination'],
      [{ mounts: [{}] }, 'mounts[0].destination'],
      [{ mounts: [{ destination: '/a', options: 'ro' }] }, 'mounts[0].options'],
      [{ process: { args: ['/bin/sh', 1] } }, 'process.args[1]'],
      [{ process: { user: { uid: -1 } } }, 'process.user.uid'],
      [{ process: { user: { uid: 2 ** 32 } } }, 'process.user.uid'],
      [{ process: { user: { gid: 1.5 } } }, 'process.user.gid'],
      [{ process: { capabilities: { effective: 'CAP_SYS_ADMIN' } } }, 'process.capabilities.effective'],
      [{ process: { terminal: 'yes' } }, 'process.terminal'],
      [{ process: [] }, 'process'],
      [{ linux: { namespaces: {} } }, 'linux.namespaces'],
      [{ linux: { namespaces: [{ type: 'pid', path: 1 }] } }, 'linux.namespaces[0].path'],
      [{ linux: { seccomp: 'unconfined' } }, 'linux.seccomp'],
      [{ linux: { cgroupsPath: ['x'] } }, 'linux.cgroupsPath'],
      [{ hooks: { prestart: [{ args: [] }] } }, 'hooks.prestart[0].path'],
      [{ annotations: { a: 1 } }, 'annotations["a"]'],
      [{ root: { path: null } }, 'root.path'],
    ];
    for (const [doc, field] of cases) {
      const e = errOf(() => parse(minimal(doc)));
      expect(e.reason, JSON.stringify(doc)).toBe('wrong-type');
      expect(e.field, JSON.stringify(doc)).toBe(field);
    }
  });

  it('unknown or duplicated namespace types are invalid', () => {
    expect(errOf(() => parse(minimal({ linux: { namespaces: [{ type: 'host' }] } }))).reason).toBe('invalid');
    expect(errOf(() => parse(minimal({ linux: { namespaces: [{ type: 'pid' }, { type: 'pid', path: '/proc/1/ns/pid' }] } }))).reason).toBe(
      'invalid',
    );
    const nine = Array.from({ length: 9 }, () => ({ type: 'pid' }));
    expect(errOf(() => parse(minimal({ linux: { namespaces: nine } }))).reason).toBe('invalid');
  });

  it('deep nesting is refused before JSON.parse, quickly; brackets inside strings do not count', () => {
    const deep = Buffer.from(`{"ociVersion":"1","x":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`);
    const t0 = Date.now();
    expect(errOf(() => parseOciConfig(deep, opts)).reason).toBe('too-deep');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(jsonDepthExceeds(Buffer.from('[[[1]]]'), 3)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from('[[[[1]]]]'), 3)).toBe(true);
    const inString = parse(minimal({ annotations: { a: '[[[[[[[[{{{{{{{{'.repeat(100) + '\\"[[' } }));
    expect(inString.annotations.a.startsWith('[[[[')).toBe(true);
  });

  it('100k mounts are trimmed to the limit, with a flag', () => {
    const mounts = Array.from({ length: 100_000 }, (_, i) => ({ destination: `/${i}` }));
    const buf = Buffer.from(JSON.stringify(minimal({ mounts })));
    expect(buf.length).toBeLessThan(4 * 1024 * 1024);
    const c = parseOciConfig(buf, noHost);
    expect(c.mounts).toHaveLength(LIMITS.mounts);
    expect(c.trimmed).toContain('mounts');
  });

  it('long strings, many annotations and huge cap lists are trimmed with flags', () => {
    const annotations: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) annotations[`k${i}`] = 'v';
    annotations.big = 'x'.repeat(100_000);
    const c = parse(
      minimal({
        annotations,
        process: { args: ['x'.repeat(100_000)], capabilities: { effective: Array.from({ length: 10_000 }, () => 'CAP_SYS_ADMIN') } },
      }),
    );
    expect(Object.keys(c.annotations)).toHaveLength(LIMITS.annotations);
    expect(c.process!.args[0]).toHaveLength(LIMITS.stringChars);
    expect(c.process!.capabilities.effective).toHaveLength(LIMITS.capsPerSet);
    expect(c.trimmed).toEqual(expect.arrayContaining(['annotations', 'process.args[]', 'capabilities.effective']));
  });

  it('a "__proto__" annotation is a plain key and pollutes nothing', () => {
    const c = parseOciConfig(Buffer.from('{"ociVersion":"1","annotations":{"__proto__":"x","constructor":"y"}}'), opts);
    expect(Object.keys(c.annotations)).toEqual(['__proto__', 'constructor']);
    expect(c.annotations.__proto__).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});
