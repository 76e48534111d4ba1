import { describe, expect, it } from 'vitest';
import { criClients, parseSsPeers, type CriClientIo } from '../../src/container/cri-clients';
import { parsePolicy } from '../../src/detect/policy';
import { jobOwnership, podCreators } from '../../src/detect/pod-rules';
import type { ContainerInput } from '../../src/proto/schema';
import { formatPodTable, groupByPod } from '../../src/ps-pods';

const SB = 'a'.repeat(64);
const pod = (labels: Record<string, string>, name = 'p-1'): ContainerInput => ({
  id: 'c',
  pod: { name, namespace: 'ns', uid: 'u', sandboxId: SB, containerName: 'app', labels },
});

describe('T1053.007 from the Job controller labels', () => {
  it('names the Job, the CronJob, or the controller alone', () => {
    expect(jobOwnership(pod({ 'batch.kubernetes.io/job-name': 'migrate', 'batch.kubernetes.io/controller-uid': 'u1' }))).toEqual({
      what: 'Job migrate',
      attributes: { pod: 'p-1', job: 'migrate', controllerUid: 'u1' },
    });
    expect(jobOwnership(pod({ 'job-name': 'backup-28977480' }))?.attributes).toMatchObject({ cronJob: 'backup', job: 'backup-28977480' });
    expect(jobOwnership(pod({ 'controller-uid': 'u2' }))?.what).toBe('a Job (controller u2)');
    expect(jobOwnership(pod({}, 'report-28977481-ab12c'))?.what).toBe('CronJob report');
    expect(jobOwnership(pod({ app: 'web' }))).toBeUndefined();
    // Engines that copy labels into the container's own (no pod record).
    expect(jobOwnership({ id: 'x', labels: { 'job-name': 'j' } })?.what).toBe('Job j');
  });
});

describe('T1610: who was connected to the CRI when a pod was made', () => {
  const k = pod({});
  it('reports every client but a trusted kubelet in the host mount namespace', () => {
    const clients = [
      { pid: 1, exe: '/usr/bin/kubelet', comm: 'kubelet', hostMnt: true },
      { pid: 2, exe: '/usr/bin/crictl', comm: 'crictl', hostMnt: true },
      { pid: 3, exe: '/usr/bin/kubelet', comm: 'kubelet', hostMnt: false }, // named so, in a container
    ];
    const f = podCreators(k, '/run/containerd/containerd.sock', clients, ['/usr/bin/kubelet']);
    expect(f.map((x) => [x.client.pid, x.attributes.clientInContainer])).toEqual([
      [2, 'false'],
      [3, 'true'],
    ]);
    expect(f[0].message).toBe(
      'pod ns/p-1 was made while /usr/bin/crictl (pid 2), not the kubelet, was connected to /run/containerd/containerd.sock',
    );
    expect(podCreators(k, '/s', [clients[0]], ['/usr/bin/kubelet'])).toEqual([]);
  });

  it('finds the peers of the accepted connections, then who holds them', () => {
    const ss = [
      'u_str ESTAB 0      0      /run/with space/containerd.sock 1613739 * 1613738',
      'u_str ESTAB 0      0      /run/with space/containerd.sock 1613741 /peer/bound.sock 1613740',
      'u_str LISTEN 0      4096   /run/with space/containerd.sock 100 * 0',
      'garbage',
    ].join('\n');
    expect(parseSsPeers(ss)).toEqual(['1613738', '1613740']);
    const fds: Record<number, string[]> = {
      5: ['socket:[1613738]'],
      6: ['pipe:[1]'],
      7: ['/x', 'socket:[1613740]'],
      8: ['socket:[1613739]'],
    };
    const io: CriClientIo = {
      ss: () => ss,
      pids: () => [5, 6, 7, 8],
      fdLinks: (p) => fds[p] ?? [],
      exe: (p) => `/bin/p${p}`,
      comm: (p) => `p${p}`,
      mntNs: (p) => (p === 7 ? 'mnt:[9]' : 'mnt:[1]'),
    };
    expect(criClients('/run/with space/containerd.sock', new Set([8]), 'mnt:[1]', io)).toEqual([
      { pid: 5, exe: '/bin/p5', comm: 'p5', hostMnt: true },
      { pid: 7, exe: '/bin/p7', comm: 'p7', hostMnt: false },
    ]);
    expect(criClients('/s', new Set(), 'mnt:[1]', { ...io, ss: () => undefined })).toBeUndefined();
    // A holder seen before is checked in its own fd table: /proc is not listed again.
    const cache = new Map<string, number>();
    criClients('/run/with space/containerd.sock', new Set([8]), 'mnt:[1]', io, cache);
    let listed = 0;
    const counting = { ...io, pids: () => (listed++, io.pids()) };
    expect(criClients('/run/with space/containerd.sock', new Set([8]), 'mnt:[1]', counting, cache)?.map((c) => c.pid)).toEqual([5, 7]);
    expect(listed).toBe(0);
    // A connection that moved to another process is looked for again.
    fds[6] = ['socket:[1613738]'];
    fds[5] = [];
    expect(criClients('/run/with space/containerd.sock', new Set([8]), 'mnt:[1]', counting, cache)?.map((c) => c.pid)).toEqual([6, 7]);
    expect(listed).toBe(1);
  });

  it('the policy names trusted CRI clients by absolute exe path', () => {
    expect(parsePolicy('criClients: [/opt/k8s/kubelet]\n').criClients).toEqual(['/opt/k8s/kubelet']);
    expect(parsePolicy('minSeverity: LOW\n').criClients).toContain('/usr/bin/kubelet');
    expect(() => parsePolicy('criClients: [kubelet]\n', 'p.yaml')).toThrow(
      "p.yaml:1:14: criClients: 'kubelet' is not an absolute exe path",
    );
  });
});

describe('ctrwatch ps --pods', () => {
  const sandbox: ContainerInput = {
    id: SB,
    pod: { name: 'web', namespace: 'shop', uid: 'u', sandboxId: SB, sandbox: true, labels: { a: '1' } },
  };
  const app: ContainerInput = {
    id: 'b'.repeat(64),
    name: 'app',
    image: 'img',
    initPid: 42,
    pod: { name: 'web', namespace: 'shop', uid: 'u', sandboxId: SB, containerName: 'app' },
  };
  const other: ContainerInput = { id: 'plain', name: 'plain', initPid: 7, privileged: true, hostNamespaces: ['NET', 'USER'] };

  it('groups by sandbox, the sandbox first, labels from it', () => {
    const { pods, others } = groupByPod([app, other, sandbox]);
    expect(pods).toEqual([
      { namespace: 'shop', name: 'web', uid: 'u', sandboxId: SB, labels: { a: '1' }, annotations: {}, containers: [sandbox, app] },
    ]);
    expect(others).toEqual([other]);
  });

  it('prints one row a container, a pod creator’s control characters made harmless', () => {
    const evil: ContainerInput = { ...app, id: 'e', pod: { ...app.pod, name: 'x\u001b[31m', sandboxId: 'other' } };
    expect(formatPodTable([sandbox, app, other, evil]).split('\n')).toEqual([
      'NAMESPACE  POD     CONTAINER  ROLE      CONTAINER ID      IMAGE  PID  PRIVILEGED  HOST NS',
      'shop       web     -          sandbox   aaaaaaaaaaaaaaa…  -      -    no          -',
      'shop       web     app        workload  bbbbbbbbbbbbbbb…  img    42   no          -',
      'shop       x?[31m  app        workload  e                 img    42   no          -',
      '-          -       plain      no pod    plain             -      7    yes         NET',
    ]);
  });
});
