import type { Logger } from 'pino';
import { statNames } from '../decode/layout';
import { readHostFacts, type HostFacts } from '../host';
import type { HostFs } from '../host-fs';
import { loadBinding, type KernelFeatures, type NativeBinding, type NativeSensor, type ProgramInfo } from '../native';
import { release } from 'node:os';
import { degradations, featureNotes, hookName, refusal, type Degradation } from './features';
import { withTracefs } from './tracefs';

export interface KernelSensorOptions {
  logger: Logger;
  /** Bulk ring buffer size in bytes (power of two, at least a page). */
  ringBytes?: number;
  /** Priority ring buffer size (same rules); default ringBytes, at least 256 KiB. */
  prioRingBytes?: number;
  /** Records one process may cause per second, and in a burst (kernel defaults 64 and 256). */
  ratePerSec?: number;
  rateBurst?: number;
  /** TCP ports of runtime APIs: connects to them from followed processes are sent. */
  watchPorts?: number[];
  /** Send every fork, exec and exit, not only those in and around containers. */
  traceAll?: boolean;
  /** Send every exec on the host, not only container tooling's. */
  execAll?: boolean;
  /** Extra program names whose host execs are sent (beside EXEC_NAMES). */
  execNames?: string[];
  /** Period of the drain that collects records sent without a wake-up. */
  drainMs?: number;
  /**
   * Idle parking: after parkAfterMs without a record (default 100; 0: never) the drain timer
   * slows to parkedMs (default 1000) and the kernel wakes the consumer for the next record
   * instead. A drainMs of parkedMs or more never parks.
   */
  parkAfterMs?: number;
  parkedMs?: number;
  /** Minimum gap between two forced wake-ups on one CPU. */
  wakeGapNs?: number;
  /** Programs whose name starts with one of these are neither loaded nor attached: for bench variants that price a group of hooks. */
  skipPrograms?: string[];
  host?: HostFacts;
  /** Injected for unit tests; the real addon by default. */
  binding?: NativeBinding;
}

export interface KernelCounters {
  /** Kernel counters by name (sent_exec, dropped_exec, …). */
  kernel: Record<string, number>;
  records: number;
  batches: number;
  /** Sum of every dropped_* counter: records the kernel could not send. */
  dropped: number;
  /** Records taken from each ring by the consumer. */
  ringRecords: { prio: number; bulk: number };
  /** Drains that failed in the addon (ring_buffer__consume < 0). */
  consumeErrors: number;
  /** The consumer's idle parking: times parked, parked now, drain timer ticks, wake-ups by the rings. */
  consumer: { parks: number; parked: boolean; timerTicks: number; pollWakes: number };
}

export class SensorStartError extends Error {
  constructor(
    message: string,
    readonly stage: string,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'SensorStartError';
  }
}

const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/**
 * Host programs whose execs the kernel sends (a process's comm after exec is
 * its file's name, cut to 15 bytes): container runtimes and their managers,
 * the CLIs that enumerate, deploy or import images, and the tools that enter
 * or make namespaces and roots. Everything else on the host sends nothing
 * unless it is followed (in or around a container) or a usermode helper.
 */
export const EXEC_NAMES = [
  'runc',
  'crun',
  'youki',
  'runsc',
  'kata-runtime',
  'containerd',
  'containerd-shim',
  'dockerd',
  'docker',
  'docker-init',
  'podman',
  'conmon',
  'crio',
  'cri-o',
  'nerdctl',
  'crictl',
  'ctr',
  'buildah',
  'skopeo',
  'buildkitd',
  'kubectl',
  'kubelet',
  'kubeadm',
  'oc',
  'helm',
  'lxc-start',
  'lxc-execute',
  'lxc-attach',
  'systemd-nspawn',
  'bwrap',
  'firejail',
  'unshare',
  'nsenter',
  'chroot',
  'pivot_root',
  'setns',
  'capsh',
];

/** The kernel side as a source of record batches (bytes: the decode stage reads them). */
export class KernelSensor {
  readonly host: HostFacts;
  private native?: NativeSensor;
  private last?: ReturnType<NativeSensor['stats']>;
  private readonly log: Logger;
  private features?: KernelFeatures;
  private programs: ProgramInfo[] = [];

  constructor(
    private readonly opts: KernelSensorOptions,
    private readonly onRecords: (buf: Buffer) => void,
  ) {
    this.log = opts.logger.child({ component: 'kernel' });
    this.host = opts.host ?? readHostFacts();
    const ring = opts.ringBytes ?? 8 << 20;
    if (!pow2(ring) || ring < 4096) throw new RangeError(`ringBytes must be a power of two of at least 4096, got ${ring}`);
    const prio = this.prioRingBytes();
    if (!pow2(prio) || prio < 4096) throw new RangeError(`prioRingBytes must be a power of two of at least 4096, got ${prio}`);
    for (const p of opts.watchPorts ?? [])
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`watchPorts: ${p} is not a port number`);
  }

  private prioRingBytes(): number {
    // As large as the bulk ring: 50 runc containers started at once send ~2 MB of
    // syscall records (51 mounts each, 752 bytes a record) into this ring alone.
    return this.opts.prioRingBytes ?? Math.max(this.opts.ringBytes ?? 8 << 20, 256 << 10);
  }

  start(): void {
    if (this.native) return;
    const binding = this.opts.binding ?? loadBinding();
    this.features = binding.probe();
    const no = refusal(this.features, release());
    if (no) throw new SensorStartError(no, 'probe');
    const tracefs = withTracefs();
    const skipped: string[] = [];
    try {
      this.native = new binding.Sensor({
        ringBytes: this.opts.ringBytes ?? 8 << 20,
        tracefs: tracefs.path,
        prioRingBytes: this.prioRingBytes(),
        ratePerSec: this.opts.ratePerSec ?? 0,
        rateBurst: this.opts.rateBurst ?? 0,
        watchPorts: this.opts.watchPorts ?? [],
        hostNs: this.host.hostNs,
        selfTgid: process.pid,
        cgSubsys: this.host.cgroup.subsys,
        cgHierarchy: this.host.cgroup.hierarchy,
        traceAll: this.opts.traceAll ?? false,
        execAll: this.opts.execAll ?? false,
        execNames: [...EXEC_NAMES, ...(this.opts.execNames ?? [])].map((n) => n.slice(0, 15)),
        wakeGapNs: this.opts.wakeGapNs ?? 2_000_000,
        drainMs: this.opts.drainMs ?? 10,
        parkAfterMs: this.opts.parkAfterMs ?? 100,
        parkedMs: this.opts.parkedMs ?? 1000,
        skipPrograms: this.opts.skipPrograms ?? [],
        sendSignal: this.features.sendSignal,
        lsm: this.features.lsm,
        onRecords: (buf) => this.onRecords(buf),
        onLog: (level, line) => {
          if (level === 'skipped') skipped.push(line.replace('tracepoint/', ''));
          else if (level === 'warn') this.log.warn({ libbpf: true }, line);
          else if (level === 'info') this.log.info({ libbpf: true }, line);
          else this.log.trace({ libbpf: true }, line);
        },
      });
    } catch (err) {
      const e = err as Error & { stage?: string };
      throw new SensorStartError(e.message, e.stage ?? 'open', err);
    } finally {
      tracefs.release();
    }
    this.programs = this.native.programs();
    const lost = degradations(this.programs);
    const fatal = lost.find((d) => d.required);
    if (fatal) {
      this.close();
      throw new SensorStartError(fatal.why, 'attach');
    }
    if (skipped.length) this.log.warn({ tracepoints: skipped }, 'tracepoints missing on this kernel: their programs are left out');
    for (const d of lost) this.log.warn({ rule: d.rule, why: d.why }, 'detection degraded on this kernel');
    for (const n of featureNotes(this.features)) this.log.info({ note: n }, 'kernel feature');
    this.log.info({ cgroup: this.host.cgroup, nsSource: this.host.nsSource }, 'kernel programs attached');
  }

  /** What the kernel offers (after start()). */
  kernelFeatures(): KernelFeatures | undefined {
    return this.features;
  }

  /** The tracepoints whose programs are attached now, deduplicated, in object order. */
  hooks(): string[] {
    return [...new Set(this.programs.filter((p) => p.attached).map((p) => hookName(p.section)))];
  }

  /** Rules this kernel cannot serve, and why (after start()). */
  degraded(): Degradation[] {
    return degradations(this.programs);
  }

  /** Collects what the kernel has sent so far, now. */
  drain(): void {
    this.native?.drain();
  }

  counters(): KernelCounters {
    const s = this.native?.stats() ?? this.last ?? { kernel: [], records: 0, batches: 0 };
    const names = statNames();
    const kernel: Record<string, number> = {};
    let dropped = 0;
    names.forEach((n, i) => {
      kernel[n] = s.kernel[i] ?? 0;
      if (n.startsWith('dropped_')) dropped += kernel[n];
    });
    return {
      kernel,
      records: s.records,
      batches: s.batches,
      dropped,
      ringRecords: { prio: s.recordsPrio ?? 0, bulk: s.recordsBulk ?? 0 },
      consumeErrors: s.consumeErrors ?? 0,
      consumer: { parks: s.parks ?? 0, parked: s.parked ?? false, timerTicks: s.timerTicks ?? 0, pollWakes: s.pollWakes ?? 0 },
    };
  }

  /** Tells the kernel which unix sockets are runtime APIs, by file identity. */
  setRuntimeSockets(list: { dev: number; ino: bigint }[]): void {
    this.native?.setRuntimeSockets?.(list.map((s) => [s.dev, s.ino]));
  }

  /** Containment: arms the kernel's action classes (enum cw_arm per enum cw_kill_class). */
  setKillArm(arm: number[]): void {
    this.native?.setKillArm?.(arm);
  }

  /** Containment: names a container's cgroup to the kernel (verdict 0 forgets it). */
  setContainer(cgroupId: bigint, verdict: number): void {
    this.native?.setContainer?.(cgroupId, verdict);
  }

  /** Containment: the host's mounted devices and / (host-disk mounts, chroots to the host). */
  setHostFs(fs: HostFs): void {
    this.native?.setHostFs?.([...fs.devs], fs.rootDev, fs.rootIno);
  }

  /** Pods' service-account volumes, by superblock: read-opens of their files are sent (bpf/token.bpf.h). */
  setTokenDevs(devs: number[]): void {
    this.native?.setTokenDevs?.(devs);
  }

  /** Kubernetes API server addresses: connects to them are sent whatever their port. */
  setApiServers(list: { family: 2 | 10; addr: Buffer; port: number }[]): void {
    this.native?.setApiServers?.(list.map((a) => [a.family, a.addr, a.port]));
  }

  /** Processes in the kernel's follow set (walks a map). */
  followed(): number {
    return this.native?.taskCount() ?? 0;
  }

  /**
   * Adds processes found in /proc (they ran before the sensor) to the kernel's
   * follow set, so that their syscalls are sent like those of the processes
   * the kernel saw start. Throws when a map write fails.
   */
  follow(procs: { tgid: number; startNs: bigint }[]): { added: number; existing: number } {
    if (!this.native) throw new Error('follow(): the sensor is not started');
    return this.native.follow(
      procs.map((p) => p.tgid),
      procs.map((p) => p.startNs),
    );
  }

  /** Idempotent: drains what is left, then detaches every program. */
  close(): void {
    const n = this.native;
    if (!n) return;
    n.close();
    this.last = n.stats(); // after the final drain: what close() delivered counts too
    this.native = undefined;
  }
}
