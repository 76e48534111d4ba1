import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from './paths';

/** The addon's probe() result. */
export interface KernelFeatures {
  /** /sys/kernel/btf/vmlinux: CO-RE can relocate the object. */
  btf: boolean;
  /** BPF ring buffer maps (5.8). */
  ringbuf: boolean;
  /** BTF tracepoint programs (tp_btf, 5.5). */
  tracing: boolean;
  /** bpf_get_current_task_btf (5.11): syscall programs read the task directly. */
  taskBtf: boolean;
  /** bpf_send_signal (5.3). */
  sendSignal: boolean;
  /** BPF-LSM programs load and "bpf" is an active LSM. */
  lsm: boolean;
}

/** A program as the addon lists it after attach. */
export interface ProgramInfo {
  name: string;
  section: string;
  attached: boolean;
}

/** The native addon (native/), as seen from TypeScript. */
export interface NativeSensorOptions {
  /** Bulk ring (fork/exec/exit). */
  ringBytes: number;
  /** A mounted tracefs: syscall tracepoints are looked up there. */
  tracefs: string;
  /** Priority ring (lifecycle, escape and guard records). */
  prioRingBytes?: number;
  /** Token bucket per process for the records it causes (0: the kernel's default). */
  ratePerSec?: number;
  rateBurst?: number;
  /** TCP/UDP ports whose connects from followed processes are sent. */
  watchPorts?: number[];
  hostNs: number[];
  selfTgid: number;
  cgSubsys: number;
  cgHierarchy: number;
  traceAll: boolean;
  /** Send every exec (traceAll implies it), not only the execNames' and the followed processes'. */
  execAll?: boolean;
  /** Programs (comm: the exec'd file's name, up to 15 bytes) whose execs on the host are sent. */
  execNames?: string[];
  wakeGapNs: number;
  drainMs: number;
  /** Without a record this long the consumer parks (0: never); parked, it drains every parkedMs. */
  parkAfterMs?: number;
  parkedMs?: number;
  /** Programs whose name starts with one of these are neither loaded nor attached. */
  skipPrograms?: string[];
  /** bpf_send_signal is there (probe): containment kills in the kernel. */
  sendSignal?: boolean;
  /** BPF-LSM is there (probe): the deny programs are loaded. */
  lsm?: boolean;
  onRecords: (batch: Buffer) => void;
  onLog?: (level: string, line: string) => void;
}

export interface NativeStats {
  /** The kernel's per-CPU counters, summed, in enum cw_stat slot order. */
  kernel: number[];
  records: number;
  batches: number;
  /** Records taken from each ring: with the kernel's ring_*_sent, exact accounting per ring. */
  recordsPrio?: number;
  recordsBulk?: number;
  /** ring_buffer__consume calls that failed (an epoll or ring error). */
  consumeErrors?: number;
  /** Times the consumer parked, whether it is parked now, its timer's ticks, and wake-ups by the rings. */
  parks?: number;
  parked?: boolean;
  timerTicks?: number;
  pollWakes?: number;
}

export interface NativeSensor {
  drain(): number;
  stats(): NativeStats;
  taskCount(): number;
  /** Every program of the object, and whether it is attached now. */
  programs(): ProgramInfo[];
  /** Replaces the runtime sockets the kernel matches unix connects against: [dev (kernel encoding), ino]. */
  setRuntimeSockets?(list: [number, bigint][]): void;
  /** Adds processes that ran before the sensor (start times from /proc) to the kernel's follow set. */
  follow(tgids: number[], startNs: bigint[]): { added: number; existing: number };
  /** Containment: enum cw_arm per enum cw_kill_class (from class 0). */
  setKillArm?(arm: number[]): void;
  /** Containment: a container's cgroup and its enum cw_container_verdict (0 forgets it). */
  setContainer?(cgroupId: bigint, verdict: number): void;
  /** Containment: the host's mounted block devices and its / (kernel dev encoding). */
  setHostFs?(devs: number[], rootDev: number, rootIno: bigint): void;
  /** Service-account volumes by superblock (kernel dev encoding): replaces them. */
  setTokenDevs?(devs: number[]): void;
  /** Kubernetes API server addresses: [family 2 | 10, address bytes (4 | 16), port]; replaces them. */
  setApiServers?(list: [number, Buffer, number][]): void;
  close(): void;
}

export interface NativeBinding {
  Sensor: new (o: NativeSensorOptions) => NativeSensor;
  statSlots: number;
  /** What the running kernel offers to BPF (loads tiny probes; needs privileges). */
  probe(): KernelFeatures;
  /** SIGKILL to pid if it is still the process that started at startNs (ns since boot); 0 or -errno. */
  killProcess(pid: number, startNs: bigint): number;
  /** malloc_trim(0): the C heap's free pages back to the kernel; true when some were (false without glibc). */
  trimMalloc(): boolean;
  /** V8's young generation held at about `bytes` committed (native/young_gen.cc); once. False when this V8 has none to watch. */
  capYoungGen(bytes: number): boolean;
  /** The cap and its state, or null when none was set. */
  youngGenCap(): { cap: number; frozen: boolean; toggles: number } | null;
  /** A copy of the BPF object (ELF) built into the addon, made on each call. */
  object(): Buffer;
}

export class AddonMissingError extends Error {
  constructor(
    readonly tried: string[],
    cause?: unknown,
  ) {
    super(`ctrwatch native addon not loadable; tried:\n  ${tried.join('\n  ')}\nbuild it with: make build`, { cause });
    this.name = 'AddonMissingError';
  }
}

let cached: NativeBinding | undefined;

/** Loads build/Release/ctrwatch.node; the error lists every path tried. */
export function loadBinding(): NativeBinding {
  if (cached) return cached;
  const root = packageRoot();
  const tried: string[] = [];
  let lastErr: unknown;
  for (const rel of ['build/Release/ctrwatch.node', 'build/Debug/ctrwatch.node']) {
    const p = join(root, rel);
    if (!existsSync(p)) {
      tried.push(`${p} (missing)`);
      continue;
    }
    try {
      // createRequire: inside the single executable, the plain require loads built-in modules only.
      cached = createRequire(__filename)(p) as NativeBinding;
      return cached;
    } catch (err) {
      tried.push(`${p} (${(err as Error).message})`);
      lastErr = err;
    }
  }
  throw new AddonMissingError(tried, lastErr);
}
