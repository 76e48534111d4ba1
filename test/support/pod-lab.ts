import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CriClient, type Msg } from './cri-client';
import { scaled } from './env';
import { findCgroupDirs, removeCgroupPaths } from './runtime-cgroup';
import { startDaemon, stopDaemon, type Daemon } from './runtime-daemons';
import { deleteSync, run, runSync, sleep } from './runtime-exec';
import { buildDockerArchive, buildImage } from './runtime-image';
import { processesMentioning, terminate } from './runtime-proc';

/**
 * Kubernetes pods without a cluster: a private containerd with its CRI plugin, spoken to over
 * CRI as the kubelet does (cri-client.ts). The pause and workload images are one busybox-static
 * image tagged twice, imported into containerd's k8s.io namespace. Pods get a network namespace
 * of their own on a private bridge with no address on the host side (the bridge CNI plugin: no
 * gateway, no masquerading, addresses kept under the lab dir), or the host's.
 *
 *   const lab = await PodLab.open();          // afterAll: await lab.close(), always
 *   const pod = await lab.runPod({ name: 'web' });
 *   const c = await lab.startContainer(pod, { name: 'app', command: ['/bin/sleep', '300'] });
 */
export const PAUSE_REF = 'localhost/ctrwatch-pause:1';
export const WORKLOAD_REF = 'localhost/ctrwatch-busybox:1';
/** The CRI plugin's namespace in containerd. */
export const K8S_NAMESPACE = 'k8s.io';
const CNI_BIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];
const CNI_PLUGINS = ['bridge', 'host-local', 'loopback'];
/** kubelet's cgroupfs layout: /kubepods/<qos>/pod<uid>/<container id>. */
const QOS_PARENT = ['kubepods', 'besteffort'];
/** Host dirs containerd's shims and the CNI library create on first use. */
const HOST_DIRS = [
  '/run/containerd/runc/k8s.io',
  '/run/containerd/runc',
  '/run/containerd/s',
  '/run/containerd',
  '/var/lib/cni/results',
  '/var/lib/cni',
];

export interface PodSpec {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  hostNetwork?: boolean;
  hostPid?: boolean;
  hostIpc?: boolean;
  privileged?: boolean;
}

export interface Pod {
  id: string;
  spec: Required<Pick<PodSpec, 'name' | 'namespace' | 'uid'>> & PodSpec;
  config: Msg;
}

export interface ContainerSpec {
  name: string;
  command: string[];
  image?: string;
  privileged?: boolean;
  mounts?: { hostPath: string; containerPath: string; readonly?: boolean }[];
  labels?: Record<string, string>;
  envs?: Record<string, string>;
}

export interface PodContainer {
  id: string;
  pod: Pod;
  name: string;
}

const nsMode = (host: boolean | undefined) => (host ? 'NODE' : 'POD');

export class PodLab {
  private client: CriClient;
  private readonly pods = new Map<string, Pod>();
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly socket: string,
    private readonly daemon: Daemon,
    private readonly before: { cgroupParents: Set<string>; hostDirs: Set<string> },
  ) {
    this.client = new CriClient(socket);
  }

  /** The lab's CRI connection (a client like any other: the sensor sees it connected). */
  get cri(): CriClient {
    return this.client;
  }

  /** Closes the lab's CRI connection (until reconnect()), so that another client can be the only one. */
  disconnect(): void {
    this.client.close();
  }

  reconnect(): void {
    this.client = new CriClient(this.socket);
  }

  static cniBinDir(): string | undefined {
    return CNI_BIN_DIRS.find((d) => CNI_PLUGINS.every((p) => existsSync(join(d, p))));
  }

  /** containerd's pid. */
  get daemonPid(): number {
    return this.daemon.process.pid;
  }

  /** containerd state dirs (for a test that reads what containerd wrote). */
  get root(): string {
    return join(this.dir, 'containerd', 'root');
  }

  get state(): string {
    return join(this.dir, 'containerd', 'state');
  }

  static async open(): Promise<PodLab> {
    const dir = mkdtempSync('/tmp/ctrwatch-pods-');
    const before = {
      cgroupParents: new Set(findCgroupDirs(new Set([QOS_PARENT[0]]), 1)),
      hostDirs: new Set(HOST_DIRS.filter((d) => existsSync(d))),
    };
    let daemon: Daemon | undefined;
    try {
      const image = await buildImage(join(dir, 'image'));
      const archive = await buildDockerArchive(join(dir, 'image'), image.rootfsTar, {
        refs: [PAUSE_REF, WORKLOAD_REF],
        cmd: ['/bin/sleep', '2147483647'],
        name: 'pods',
      });
      const cd = join(dir, 'containerd');
      const socket = join(cd, 'containerd.sock');
      daemon = await startCriContainerd(cd, socket, bridgeName(dir));
      await run(['ctr', '-a', socket, '-n', K8S_NAMESPACE, 'images', 'import', archive], { timeoutMs: 60_000 });
      const lab = new PodLab(dir, socket, daemon, before);
      await lab.waitForCri();
      return lab;
    } catch (e) {
      if (daemon) stopDaemon(daemon);
      for (const p of processesMentioning(dir)) terminate(p, 2_000);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private async waitForCri(): Promise<void> {
    const end = Date.now() + scaled(30_000);
    for (;;) {
      try {
        await this.cri.version();
        return;
      } catch (e) {
        if (Date.now() > end) throw e;
        await sleep(100);
      }
    }
  }

  /** The PodSandboxConfig the kubelet would send for s (cgroupfs layout under /kubepods/besteffort). */
  sandboxConfig(s: PodSpec): { spec: Pod['spec']; config: Msg } {
    const spec = { namespace: 'default', uid: randomUUID(), ...s };
    const config: Msg = {
      metadata: { name: spec.name, uid: spec.uid, namespace: spec.namespace, attempt: 0 },
      hostname: spec.hostNetwork ? '' : spec.name,
      logDirectory: join(this.dir, 'logs', spec.uid),
      labels: spec.labels ?? {},
      annotations: spec.annotations ?? {},
      linux: {
        cgroupParent: `/${QOS_PARENT.join('/')}/pod${spec.uid}`,
        securityContext: {
          namespaceOptions: { network: nsMode(spec.hostNetwork), pid: nsMode(spec.hostPid), ipc: nsMode(spec.hostIpc) },
          privileged: spec.privileged ?? false,
        },
      },
    };
    mkdirSync(join(this.dir, 'logs', spec.uid), { recursive: true });
    return { spec, config };
  }

  /** RunPodSandbox, as the kubelet asks for it. */
  async runPod(s: PodSpec): Promise<Pod> {
    const { spec, config } = this.sandboxConfig(s);
    const id = await this.cri.runPodSandbox(config);
    const pod = { id, spec, config };
    this.pods.set(id, pod);
    return pod;
  }

  /** CreateContainer + StartContainer in pod. */
  async startContainer(pod: Pod, c: ContainerSpec): Promise<PodContainer> {
    const sc = pod.spec;
    const config: Msg = {
      metadata: { name: c.name, attempt: 0 },
      image: { image: c.image ?? WORKLOAD_REF },
      command: c.command,
      envs: Object.entries(c.envs ?? {}).map(([key, value]) => ({ key, value })),
      mounts: (c.mounts ?? []).map((m) => ({ containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly ?? false })),
      labels: {
        // what the kubelet sets on every container
        'io.kubernetes.container.name': c.name,
        'io.kubernetes.pod.name': sc.name,
        'io.kubernetes.pod.namespace': sc.namespace,
        'io.kubernetes.pod.uid': sc.uid,
        ...(c.labels ?? {}),
      },
      logPath: `${c.name}.log`,
      linux: {
        securityContext: {
          privileged: c.privileged ?? false,
          namespaceOptions: { network: nsMode(sc.hostNetwork), pid: sc.hostPid ? 'NODE' : 'CONTAINER', ipc: nsMode(sc.hostIpc) },
        },
      },
    };
    const id = await this.cri.createContainer(pod.id, config, pod.config);
    await this.cri.startContainer(id);
    return { id, pod, name: c.name };
  }

  /** The host pid of a CRI container's init, from the runc state containerd's shim keeps. */
  initPid(containerId: string): number {
    const st = JSON.parse(readFileSync(`/run/containerd/runc/${K8S_NAMESPACE}/${containerId}/state.json`, 'utf8')) as {
      init_process_pid: number;
    };
    return st.init_process_pid;
  }

  /** StopPodSandbox + RemovePodSandbox (its containers go with it). Idempotent. */
  async removePod(pod: Pod): Promise<void> {
    if (!this.pods.has(pod.id)) return;
    for (const c of await this.cri.listContainers(pod.id)) {
      await this.cri.stopContainer(c.id, 0).catch(() => undefined);
      await this.cri.removeContainer(c.id).catch(() => undefined);
    }
    await this.cri.stopPodSandbox(pod.id);
    await this.cri.removePodSandbox(pod.id);
    this.pods.delete(pod.id);
  }

  /**
   * Removes every pod, the images, stops containerd by pid, kills what is left naming the lab
   * dir (shims), removes the cgroups and host dirs it made and the temp dir. Every step runs even
   * when one fails; the failures are thrown together.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A test may have left the lab's connection closed (disconnect()): clean up on a fresh one.
    this.client.close();
    this.reconnect();
    const problems: string[] = [];
    const step = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (e) {
        problems.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    for (const pod of [...this.pods.values()]) await step(`remove pod ${pod.spec.name}`, () => this.removePod(pod));
    // Sandboxes the tests made by hand (hostile ones) are found by listing.
    await step('remove listed pods', async () => {
      for (const p of await this.cri.listPodSandbox()) {
        await this.cri.stopPodSandbox(p.id);
        await this.cri.removePodSandbox(p.id);
      }
    });
    await step('remove images', () => deleteSync(['ctr', '-a', this.socket, '-n', K8S_NAMESPACE, 'images', 'rm', PAUSE_REF, WORKLOAD_REF]));
    this.cri.close();
    await step('stop containerd', () => {
      const stuck = stopDaemon(this.daemon);
      if (stuck.length) throw new Error(`would not die: ${stuck.join(', ')}`);
    });
    await step('leftover processes', () => {
      const left = processesMentioning(this.dir);
      for (const p of left) terminate(p, 2_000);
      if (left.length) throw new Error(`killed ${left.map((p) => `${p.pid} (${p.args})`).join('; ')}`);
    });
    await step('cgroups', () => {
      const made = findCgroupDirs(new Set([QOS_PARENT[0]]), 1).filter((p) => !this.before.cgroupParents.has(p));
      removeCgroupPaths(made);
    });
    await step('host dirs', () => {
      for (const d of HOST_DIRS.filter((x) => !this.before.hostDirs.has(x))) {
        try {
          if (existsSync(d) && readdirSync(d).length === 0) rmdirSync(d);
        } catch {
          /* in use */
        }
      }
    });
    await step('bridge', () => {
      if (existsSync(`/sys/class/net/${bridgeName(this.dir)}`)) runSync(['ip', 'link', 'del', bridgeName(this.dir)]);
    });
    await step('mounts', () => {
      for (const m of mountsUnder(this.dir)) runSync(['umount', '-l', m], { timeoutMs: 10_000 });
    });
    await step('temp dir', () => rmSync(this.dir, { recursive: true, force: true }));
    if (problems.length) throw new Error(`PodLab.close: ${problems.join(' | ')}`);
  }
}

/** A containerd with its CRI plugin, everything private under dir; pods' netns under its state dir. */
async function startCriContainerd(dir: string, socket: string, bridge: string): Promise<Daemon> {
  mkdirSync(join(dir, 'cni'), { recursive: true });
  const cniBin = PodLab.cniBinDir();
  if (cniBin) {
    // containerd 1.6 wants an eth0 in the pod: loopback alone is refused ("failed to find network info").
    const subnet = `10.231.${1 + (parseInt(bridge.slice(-2), 36) % 250)}.0/24`;
    const bridgePlugin = {
      type: 'bridge',
      bridge,
      isGateway: false,
      ipMasq: false,
      ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: join(dir, 'cni-ipam') },
    };
    writeFileSync(
      join(dir, 'cni', '10-ctrwatch.conflist'),
      JSON.stringify({ cniVersion: '0.4.0', name: 'ctrwatch-pods', plugins: [bridgePlugin, { type: 'loopback' }] }),
    );
  }
  const cri = '[plugins."io.containerd.grpc.v1.cri"]';
  const config = join(dir, 'config.toml');
  const q = JSON.stringify;
  writeFileSync(
    config,
    [
      'version = 2',
      `root = ${q(join(dir, 'root'))}`,
      `state = ${q(join(dir, 'state'))}`,
      '[grpc]',
      `  address = ${q(socket)}`,
      '[ttrpc]',
      `  address = ${q(socket + '.ttrpc')}`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${q(join(dir, 'opt'))}`,
      cri,
      `  sandbox_image = ${q(PAUSE_REF)}`,
      // Negative oom_score_adj needs CAP_SYS_RESOURCE, which this machine's bounding set lacks.
      '  restrict_oom_score_adj = true',
      '  disable_apparmor = true',
      // No fixed port: other containerds may run here.
      '  stream_server_address = "127.0.0.1"',
      '  stream_server_port = "0"',
      '  netns_mounts_under_state_dir = true',
      `${cri.slice(0, -1)}.cni]`,
      `  bin_dir = ${q(cniBin ?? '/nonexistent')}`,
      `  conf_dir = ${q(join(dir, 'cni'))}`,
      `${cri.slice(0, -1)}.containerd]`,
      '  snapshotter = "overlayfs"',
      '  default_runtime_name = "runc"',
      `${cri.slice(0, -1)}.containerd.runtimes.runc]`,
      '  runtime_type = "io.containerd.runc.v2"',
      '',
    ].join('\n'),
  );
  return startDaemon('containerd', ['containerd', '--config', config], join(dir, 'containerd.log'), ['ctr', '-a', socket, 'version']);
}

/** The lab's bridge: 15 bytes at most (IFNAMSIZ). */
function bridgeName(dir: string): string {
  return `cwt${dir
    .slice(-6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '0')}`;
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
}
