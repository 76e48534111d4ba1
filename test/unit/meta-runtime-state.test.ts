import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readOciConfig } from '../../src/meta/oci-config';
import {
  containerdBundleDir,
  containerdRuncRoot,
  dockerBundleDir,
  dockerRuncRoot,
  isValidOciId,
  listContainerdNamespaces,
  parseRuncState,
  readCrunStatus,
  readRuncState,
  rfc3339ToUnixNano,
  RuntimeStateError,
} from '../../src/meta/runtime-state';
import { MetaReadError } from '../../src/meta/safe-read';

const FIX = path.join(__dirname, '../fixtures/meta');
const DOCKER_ID = 'b7bff6a1f2cd5fc975b0280d300b031a39fd483f4d1e954e4e5e25f374bb0d00';
const PODMAN_ID = 'a35c54ec232ea12cbce8abfcbe6503a6fe9e6a288d95ffa9abf3e8560283be18';

describe('recorded runc state', () => {
  it('runc run with the default root: pid, start ticks (= /proc/<pid>/stat field 22), bundle, created', () => {
    expect(readRuncState(path.join(FIX, 'run-runc'), 'cw-meta-runc')).toEqual({
      runtime: 'RUNC',
      id: 'cw-meta-runc',
      initPid: 3982,
      initStartTicks: 21349,
      created: '2026-11-29T03:40:40.768379698Z',
      createdUnixNano: 1795923640768379698n,
      bundle: '/tmp/ctrwatch-meta-rt/bundle',
      rootfs: '/tmp/ctrwatch-meta-rt/bundle/rootfs',
      cgroupPath: '',
    });
    expect(readRuncState(path.join(FIX, 'run-runc'), 'cw-meta-runc-priv')).toMatchObject({
      initPid: 4001,
      initStartTicks: 21352,
      cgroupPath: '/cwmeta/priv',
    });
  });

  it('containerd (ctr): state under /run/containerd/runc/<ns>, bundle under containerd state', () => {
    const st = readRuncState(path.join(FIX, 'run-containerd-runc', 'default'), 'cw-meta-ctr');
    expect(st).toMatchObject({ initPid: 4195, initStartTicks: 23063, cgroupPath: '/default/cw-meta-ctr' });
    expect(st.bundle).toBe('/tmp/ctrwatch-meta-rt/containerd/state/io.containerd.runtime.v2.task/default/cw-meta-ctr');
    // The helper builds the same layout, and the recorded bundle parses.
    const dir = containerdBundleDir(path.join(FIX, 'containerd-state'), 'default', 'cw-meta-ctr');
    expect(dir.endsWith('containerd-state/io.containerd.runtime.v2.task/default/cw-meta-ctr')).toBe(true);
    expect(readOciConfig(dir, { isHostNamespace: () => false }).cgroupsPath).toBe(st.cgroupPath);
    expect(containerdRuncRoot('default')).toBe('/run/containerd/runc/default');
  });

  it('docker 20.10: state under <exec-root>/runtime-runc/moby, bundle under its private containerd', () => {
    const execRoot = path.join(FIX, 'docker-exec');
    const st = readRuncState(dockerRuncRoot(execRoot), DOCKER_ID);
    expect(st).toMatchObject({ initPid: 5324, initStartTicks: 27341, cgroupPath: `/docker/${DOCKER_ID}` });
    expect(st.bundle).toBe(`/tmp/ctrwatch-meta-rt/docker/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/${DOCKER_ID}`);
    expect(dockerBundleDir('/tmp/ctrwatch-meta-rt/docker/exec', DOCKER_ID)).toBe(st.bundle);
    expect(readOciConfig(dockerBundleDir(execRoot, DOCKER_ID), { isHostNamespace: () => false }).cgroupsPath).toBe(st.cgroupPath);
    expect(dockerRuncRoot()).toBe('/var/run/docker/runtime-runc/moby');
  });

  it('podman (as root) uses runc default root; its bundle is the userdata dir', () => {
    const st = readRuncState(path.join(FIX, 'run-runc'), PODMAN_ID);
    expect(st.initPid).toBe(4755);
    expect(st.bundle).toBe(`/tmp/ctrwatch-meta-rt/podman/root/overlay-containers/${PODMAN_ID}/userdata`);
  });

  it('crun status (crun 1.8 format)', () => {
    expect(readCrunStatus(path.join(FIX, 'run-crun'), 'cw-meta-crun')).toEqual({
      runtime: 'CRUN',
      id: 'cw-meta-crun',
      initPid: 4321,
      initStartTicks: 22000,
      bundle: '/tmp/ctrwatch-meta-rt/bundle',
      rootfs: '/tmp/ctrwatch-meta-rt/bundle/rootfs',
      cgroupPath: '/cw-meta-crun',
      created: '2026-11-29T03:40:41.000293421Z',
      createdUnixNano: 1795923641000293421n,
    });
  });

  it('lists containerd namespaces from the state dir', () => {
    expect(listContainerdNamespaces(path.join(FIX, 'containerd-state'))).toEqual(['default']);
  });
});

describe('rfc3339ToUnixNano', () => {
  it('is exact to the nanosecond, with offsets and short fractions', () => {
    expect(rfc3339ToUnixNano('1970-01-01T00:00:00Z')).toBe(0n);
    expect(rfc3339ToUnixNano('1970-01-01T00:00:01.5Z')).toBe(1_500_000_000n);
    expect(rfc3339ToUnixNano('2026-11-29T03:40:40.768379698Z')).toBe(1795923640768379698n);
    expect(rfc3339ToUnixNano('2026-11-29T04:40:40.768379698+01:00')).toBe(1795923640768379698n);
    expect(rfc3339ToUnixNano('0001-01-01T00:00:00Z')).toBe(-62135596800000000000n); // docker's "never"
  });
  it('refuses what is not a timestamp', () => {
    for (const s of [
      '',
      'yesterday',
      '2026-13-01T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2026-11-29T03:40:40',
      '2026-11-29T03:40:40.1234567891Z',
    ])
      expect(rfc3339ToUnixNano(s), s).toBeUndefined();
  });
});

describe('hostile state', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-state-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const write = (id: string, body: string) => {
    fs.mkdirSync(path.join(tmp, id), { recursive: true });
    fs.writeFileSync(path.join(tmp, id, 'state.json'), body);
  };
  const good = {
    id: 'c1',
    init_process_pid: 10,
    init_process_start: 20,
    created: '2026-01-01T00:00:00Z',
    config: { labels: [] as string[] },
  };

  it('an annotation named "bundle" does not pass for the bundle: runc appends the real one last', () => {
    const st = parseRuncState(Buffer.from(JSON.stringify({ ...good, config: { labels: ['bundle=/evil', 'x=y', 'bundle=/real'] } })));
    expect(st.bundle).toBe('/real');
  });

  it('ids that could leave the state root are refused before any file is opened', () => {
    for (const id of ['..', '../etc', 'a/b', '', 'a\0b']) {
      expect(isValidOciId(id)).toBe(false);
      expect(() => readRuncState(tmp, id)).toThrow(RuntimeStateError);
    }
    expect(() => containerdBundleDir('/run/containerd', '..', 'x')).toThrow(RuntimeStateError);
  });

  it('a state.json naming another id is refused', () => {
    write('c2', JSON.stringify(good));
    expect(() => readRuncState(tmp, 'c2')).toThrow(/bad-id/);
  });

  it('wrong types and malformed JSON give typed errors', () => {
    const bad = (doc: unknown) => () => parseRuncState(Buffer.from(JSON.stringify(doc)));
    expect(bad({ ...good, init_process_pid: '10' })).toThrow(/init_process_pid/);
    expect(bad({ ...good, init_process_pid: -1 })).toThrow(RuntimeStateError);
    expect(bad({ ...good, init_process_start: 2 ** 60 })).toThrow(/init_process_start/);
    expect(bad({ ...good, config: [] })).toThrow(/config/);
    expect(bad({ ...good, config: { labels: 'bundle=/x' } })).toThrow(/labels/);
    expect(bad({ ...good, created: 5 })).toThrow(/created/);
    expect(bad([good])).toThrow(/top level/);
    expect(() => parseRuncState(Buffer.from('{"id":'))).toThrow(/malformed-json/);
  });

  it('a symlinked state.json or state dir is refused', () => {
    fs.mkdirSync(path.join(tmp, 'c1'));
    fs.symlinkSync('/etc/passwd', path.join(tmp, 'c1', 'state.json'));
    expect(() => readRuncState(tmp, 'c1')).toThrow(MetaReadError);
    fs.symlinkSync(path.join(tmp, 'c1'), path.join(tmp, 'c3'));
    expect(() => readRuncState(tmp, 'c3')).toThrow(/symlink/);
  });
});
