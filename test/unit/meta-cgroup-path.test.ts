import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { containerFromCgroupPath, containerFromProcCgroup, parseProcCgroup } from '../../src/meta/cgroup-path';

const FIX = path.join(__dirname, '../fixtures/meta/proc-cgroup');
const recorded = (name: string) => fs.readFileSync(path.join(FIX, `${name}.txt`), 'utf8');

const DOCKER_ID = 'b7bff6a1f2cd5fc975b0280d300b031a39fd483f4d1e954e4e5e25f374bb0d00';
const DOCKER_PRIV_ID = 'e417e6dfaee54668a21dc7a7c1c30d895de8a22cff80ad404b8065bfca74b69e';
const PODMAN_ID = 'a35c54ec232ea12cbce8abfcbe6503a6fe9e6a288d95ffa9abf3e8560283be18';
const PODMAN_PRIV_ID = '0062469f41e134460b2d8fd5f328966f723eb0e260aaecfb7df494910a5b919d';
const H = 'c0ffee00'.repeat(8); // a 64-hex id for documented layouts
const POD = '4cad64d0-7a36-452a-8a08-bd3a694cdad5';
const POD_ = POD.replace(/-/g, '_');

describe('recorded /proc/<pid>/cgroup of real containers on this machine', () => {
  it('docker 20.10 (cgroupfs): /docker/<64hex>', () => {
    expect(containerFromProcCgroup(recorded('docker'))).toEqual({ runtime: 'DOCKER', id: DOCKER_ID, cgroupPath: `/docker/${DOCKER_ID}` });
    expect(containerFromProcCgroup(recorded('docker-priv'))?.id).toBe(DOCKER_PRIV_ID);
  });

  it('podman 4.3 (cgroupfs): /libpod_parent/libpod-<64hex>', () => {
    expect(containerFromProcCgroup(recorded('podman'))).toEqual({
      runtime: 'PODMAN',
      id: PODMAN_ID,
      cgroupPath: `/libpod_parent/libpod-${PODMAN_ID}`,
    });
    expect(containerFromProcCgroup(recorded('podman-priv'))?.id).toBe(PODMAN_PRIV_ID);
  });

  it("podman's conmon (/libpod_parent/conmon) is not a container", () => {
    expect(containerFromProcCgroup('9:name=systemd:/\n8:pids:/libpod_parent/conmon\n0::/libpod_parent/conmon\n')).toBeUndefined();
  });

  it('containerd + ctr: /<namespace>/<id> only when the namespace is known', () => {
    expect(containerFromProcCgroup(recorded('containerd'))).toBeUndefined();
    expect(containerFromProcCgroup(recorded('containerd'), { containerdNamespaces: ['default', 'k8s.io'] })).toEqual({
      runtime: 'CONTAINERD',
      id: 'cw-meta-ctr',
      cgroupPath: '/default/cw-meta-ctr',
    });
    expect(containerFromProcCgroup(recorded('containerd-priv'), { containerdNamespaces: new Set(['default']) })?.id).toBe(
      'cw-meta-ctr-priv',
    );
    expect(containerFromProcCgroup(recorded('containerd'), { containerdNamespaces: ['moby'] })).toBeUndefined();
  });

  it('runc default /<id> only for ids the caller knows, and the memory line nests it under the caller', () => {
    const text = recorded('runc');
    expect(text).toContain('memory:/process_api/'); // the v1 memory hierarchy nests it (recorded)
    expect(containerFromProcCgroup(text)).toBeUndefined();
    const ociRuntimeOf = (id: string) => (id === 'cw-meta-runc' ? ('RUNC' as const) : undefined);
    expect(containerFromProcCgroup(text, { ociRuntimeOf })).toEqual({ runtime: 'RUNC', id: 'cw-meta-runc', cgroupPath: '/cw-meta-runc' });
    const memoryLine = parseProcCgroup(text).find((l) => l.controllers.includes('memory'));
    expect(containerFromCgroupPath(memoryLine!.path, { ociRuntimeOf })).toEqual({ runtime: 'RUNC', id: 'cw-meta-runc' });
    const crun = (id: string) => (id === 'cw-meta-runc' ? ('CRUN' as const) : undefined);
    expect(containerFromCgroupPath('/cw-meta-runc', { ociRuntimeOf: crun })?.runtime).toBe('CRUN');
  });

  it('runc with a custom cgroupsPath (/cwmeta/priv) does not name its id', () => {
    expect(containerFromProcCgroup(recorded('runc-priv'), { ociRuntimeOf: () => undefined })).toBeUndefined();
  });

  it('parses every line of the hybrid layout', () => {
    const lines = parseProcCgroup(recorded('docker'));
    expect(lines).toHaveLength(10);
    expect(lines[0]).toEqual({ hierarchyId: 9, controllers: ['name=systemd'], path: `/docker/${DOCKER_ID}` });
    expect(lines.find((l) => l.hierarchyId === 0)).toEqual({ hierarchyId: 0, controllers: [], path: `/docker/${DOCKER_ID}` });
    expect(parseProcCgroup('garbage\n:x\n1:cpu:/a:b\n')).toEqual([{ hierarchyId: 1, controllers: ['cpu'], path: '/a:b' }]);
  });
});

// Recorded by `make vmtest-systemd` on Debian 12 (systemd 252 as PID 1, cgroup v2 unified, kernel
// 6.1): docker.io 20.10 with native.cgroupdriver=systemd, podman 4.3 (crun 1.8) with
// cgroup_manager = "systemd", containerd 1.6 + ctr run --runc-systemd-cgroup --cgroup
// system.slice:ctr:<id>.
describe('recorded /proc/<pid>/cgroup of real containers on a systemd node', () => {
  const SD_DOCKER = '39dc65a0d75f9e20e8beb4f3380685f1e49d178cef3ff5d0fc735ee5043772ce';
  const SD_PODMAN = '5f11f0203fe5137074762adde6441d45db4a5adc3167b388c331b9e6b0ea5425';

  it('docker (systemd driver): /system.slice/docker-<64hex>.scope', () => {
    expect(containerFromProcCgroup(recorded('docker-systemd'))).toEqual({
      runtime: 'DOCKER',
      id: SD_DOCKER,
      cgroupPath: `/system.slice/docker-${SD_DOCKER}.scope`,
    });
  });

  it('podman with crun (systemd): crun runs the container in /container below the libpod scope', () => {
    expect(containerFromProcCgroup(recorded('podman-crun-systemd'))).toEqual({
      runtime: 'PODMAN',
      id: SD_PODMAN,
      cgroupPath: `/machine.slice/libpod-${SD_PODMAN}.scope/container`,
    });
  });

  it('containerd + ctr (systemd): /system.slice/<prefix>-<id>.scope names its id only when containerd knows it', () => {
    const text = recorded('containerd-systemd');
    expect(containerFromProcCgroup(text)).toBeUndefined(); // the prefix ("ctr") is the user's choice
    expect(containerFromProcCgroup(text, { containerdNamespaces: ['default'] })).toBeUndefined();
    const known = (ids: Record<string, string>) => ({ containerdIdOf: (id: string) => ids[id] });
    expect(containerFromProcCgroup(text, known({ 'cw-sd-ctr': 'default' }))).toEqual({
      runtime: 'CONTAINERD',
      id: 'cw-sd-ctr',
      cgroupPath: '/system.slice/ctr-cw-sd-ctr.scope',
    });
    // both the prefix and the id hold '-': the longest known name wins, an unknown one never
    expect(containerFromCgroupPath('/system.slice/my-ctr-cw-sd-ctr.scope', known({ 'cw-sd-ctr': 'default', ctr: 'default' }))?.id).toBe(
      'cw-sd-ctr',
    );
    expect(containerFromCgroupPath('/system.slice/ctr-cw-sd-ctr.scope', known({ 'sd-ctr': 'default' }))?.id).toBe('sd-ctr');
    expect(containerFromCgroupPath('/system.slice/ctr-cw-sd-ctr.scope', known({ other: 'default' }))).toBeUndefined();
    // Docker's containerd namespace
    expect(containerFromCgroupPath('/system.slice/ctr-cw-sd-ctr.scope', known({ 'cw-sd-ctr': 'moby' }))?.runtime).toBe('DOCKER');
  });

  it("the shim's and conmon's units are not containers", () => {
    const every = { containerdIdOf: () => 'default' }; // a containerd that would know any name
    expect(containerFromCgroupPath('/system.slice/containerd.service', every)).toBeUndefined(); // containerd-shim
    expect(containerFromCgroupPath('/system.slice/vmtest-entry.service', every)).toBeUndefined(); // conmon stays in its caller's unit
    expect(containerFromCgroupPath('/init.scope', every)).toBeUndefined(); // no '-': no name to look up
  });

  it('never asks about . or .. from a scope name', () => {
    const asked: string[] = [];
    const spy = { containerdIdOf: (id: string) => (asked.push(id), undefined), ociRuntimeOf: (id: string) => (asked.push(id), undefined) };
    expect(containerFromCgroupPath('/system.slice/a-...scope', spy)).toBeUndefined();
    expect(containerFromCgroupPath('/system.slice/a-.scope', spy)).toBeUndefined();
    expect(asked).not.toContain('..');
    expect(asked).not.toContain('.');
    expect(asked).not.toContain('');
  });
});

describe('documented systemd / cgroup v2 / kubelet layouts', () => {
  const cases: Array<[string, string, ReturnType<typeof containerFromCgroupPath>]> = [
    ['docker, systemd driver', `/system.slice/docker-${H}.scope`, { runtime: 'DOCKER', id: H }],
    [
      'containerd CRI, systemd, burstable pod',
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice/cri-containerd-${H}.scope`,
      { runtime: 'CONTAINERD', id: H, podUid: POD },
    ],
    [
      'containerd CRI, systemd, guaranteed pod',
      `/kubepods.slice/kubepods-pod${POD_}.slice/cri-containerd-${H}.scope`,
      { runtime: 'CONTAINERD', id: H, podUid: POD },
    ],
    [
      'CRI-O, systemd, besteffort pod',
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_}.slice/crio-${H}.scope`,
      { runtime: 'CRIO', id: H, podUid: POD },
    ],
    ['CRI-O, cgroupfs', `/kubepods/burstable/pod${POD}/crio-${H}`, { runtime: 'CRIO', id: H, podUid: POD }],
    ['kubelet cgroupfs, runtime not in the path', `/kubepods/burstable/pod${POD}/${H}`, { runtime: 'UNKNOWN', id: H, podUid: POD }],
    ['kubelet cgroupfs, guaranteed', `/kubepods/pod${POD}/${H}`, { runtime: 'UNKNOWN', id: H, podUid: POD }],
    ['podman, systemd', `/machine.slice/libpod-${H}.scope`, { runtime: 'PODMAN', id: H }],
    ['podman pod, systemd', `/machine.slice/machine-libpod_pod_${'ab'.repeat(32)}.slice/libpod-${H}.scope`, { runtime: 'PODMAN', id: H }],
    ['rootless podman', `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${H}.scope`, { runtime: 'PODMAN', id: H }],
    ['a process in a sub-cgroup of a docker container', `/docker/${H}/init.scope`, { runtime: 'DOCKER', id: H }],
    ['docker in docker: the host runtime is the outer one', `/docker/${H}/docker/${'ab'.repeat(32)}`, { runtime: 'DOCKER', id: H }],
    ['systemd-in-container under a scope', `/system.slice/docker-${H}.scope/system.slice/cron.service`, { runtime: 'DOCKER', id: H }],
  ];
  for (const [what, p, want] of cases) it(`${what}: ${p}`, () => expect(containerFromCgroupPath(p)).toEqual(want));

  const notContainers: Array<[string, string]> = [
    ['CRI-O conmon', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice/crio-conmon-${H}.scope`],
    ['podman conmon, systemd', `/machine.slice/libpod-conmon-${H}.scope`],
    ['root', '/'],
    ['empty', ''],
    ['a host service', '/system.slice/sshd.service'],
    ['a login session', '/user.slice/user-0.slice/session-1.scope'],
    ['init.scope', '/init.scope'],
    ['a pod slice without a container yet', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice`],
    ['a short docker id', '/docker/abc123'],
    ['an upper-case id', `/docker/${H.toUpperCase()}`],
    ['a 65-hex id', `/docker/${H}0`],
    ['dot-dot', `/docker/../${H}`],
    ['a one-component path, no lookup given', '/cw-meta-runc'],
  ];
  for (const [what, p] of notContainers) it(`not a container: ${what}`, () => expect(containerFromCgroupPath(p)).toBeUndefined());

  it('runc --systemd-cgroup and crun --cgroup-manager=systemd scopes, for ids the caller knows', () => {
    const oci = (id: string) => (id === 'web-1' ? ('RUNC' as const) : id === 'db' ? ('CRUN' as const) : undefined);
    expect(containerFromCgroupPath('/system.slice/runc-web-1.scope', { ociRuntimeOf: oci })).toEqual({ runtime: 'RUNC', id: 'web-1' });
    expect(containerFromCgroupPath('/machine.slice/crun-db.scope/container', { ociRuntimeOf: oci })).toEqual({ runtime: 'CRUN', id: 'db' });
    expect(containerFromCgroupPath('/system.slice/runc-web-2.scope', { ociRuntimeOf: oci })).toBeUndefined();
  });

  it('a containerd namespace named like a path prefix wins only when the caller names it', () => {
    expect(containerFromCgroupPath(`/docker/${H}`, { containerdNamespaces: ['docker'] })).toEqual({ runtime: 'CONTAINERD', id: H });
    expect(containerFromCgroupPath('/k8s.io/../etc', { containerdNamespaces: ['k8s.io'] })).toBeUndefined();
  });

  it('prefers the cgroup2 line, then name=systemd, over v1 controllers', () => {
    const text = `4:memory:/elsewhere/${'ab'.repeat(32)}\n1:name=systemd:/docker/${H}\n0::/system.slice/docker-${H}.scope\n`;
    expect(containerFromProcCgroup(text)?.cgroupPath).toBe(`/system.slice/docker-${H}.scope`);
  });
});
