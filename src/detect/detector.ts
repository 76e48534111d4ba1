import type { Logger } from 'pino';
import type { CgroupRegistry } from '../container/cgroups';
import { DUPLICATE_ID_LABEL, type EnrichedMeta } from '../container/enrich';
import type { ContainerFacts, Lifecycle, LifecycleEvent } from '../container/lifecycle';
import type {
  ConnectRecord,
  ExecRecord,
  GuardRecord,
  KernelRecord,
  Namespaces,
  ObjectRecord,
  SyscallRecord,
  UringRecord,
} from '../decode/records';
import type { RuntimeSockets } from '../container/runtime-sockets';
import { TaskFlag } from '../decode/layout';
import { bpfCmdName, bpfSeverity, ptraceSeverity, signalName, signalResult, signalSeverity, UringCounts } from './guard-rules';
import type { Proc, ProcessTable } from '../process/table';
import type { ContainerInput } from '../proto/schema';
import { RULE_BY_ID } from './catalog';
import { cliOf, deployment, enumeration, imageImport } from './cli-patterns';
import { ImageStore } from './image-store';
import type { Policy } from './policy';
import { controlFile, filelessExe, mountVerdict, rootVerdict } from './object-rules';
import { devName, type HostFs } from '../host-fs';
import { startRules } from './start-rules';
import { podCreators, type PodCreatorClient } from './pod-rules';
import { criClients } from '../container/cri-clients';
import type { TokenVolumes } from '../container/token-volumes';
import { tokenRuleOf } from './token-rules';
import { severityRank, type Finding, type Severity } from './types';

export interface DetectorDeps {
  procs: ProcessTable;
  lifecycle: Lifecycle;
  cgroups: CgroupRegistry;
  host: Namespaces;
  policy: Policy;
  /** Monotonic ns to Unix ns. */
  wall: (ktime: bigint) => bigint;
  /** The container's record as last enriched. */
  containerOf: (c: ContainerFacts) => { k: ContainerInput; meta: EnrichedMeta };
  logger: Logger;
  images?: ImageStore;
  /** Runtime API sockets by file identity; without it only the bound name decides. */
  runtimeSockets?: RuntimeSockets;
  /** The host's / and mounted devices, for the root and device rules. */
  hostFs?: HostFs;
  /** Processes connected to a runtime socket now (undefined: cannot tell). */
  criClients?: (socket: string) => PodCreatorClient[] | undefined;
  /** Pods' service-account volumes and API servers (discovery.service-account-token). */
  tokens?: TokenVolumes<ContainerFacts>;
}

const NS_JOINABLE: (keyof Namespaces)[] = ['mnt', 'net', 'ipc', 'uts', 'cgroup', 'user', 'pid'];
const PTRACE_ATTACH = 16n;
const PTRACE_SEIZE = 0x4206n;
const KTHREADD = 2;
const RUNTIME_SOCKET = /(^|\/)(docker|containerd|crio|podman|cri-dockerd|dockershim|buildkitd)\.sock(\.ttrpc)?$/;
const MINUTE_NS = 60_000_000_000n;
const EINPROGRESS = -115;

/**
 * The rule engine: start-time rules on each container start, action rules on
 * each kernel record, and the few that correlate over time (usermode helpers
 * after a control-file write, deployments after a runtime-socket connect,
 * images started on a schedule). Policy decides what is on and how severe.
 */
export class Detector {
  private readonly images: ImageStore;
  /** Last control-file write by a container: the kernel's helper may run on its behalf. */
  private lastControlWrite?: { c: ContainerFacts; actor: Proc; path: string; at: bigint };
  private lastSocketConnect?: { c: ContainerFacts; actor: Proc; path: string; at: bigint };
  private lastImport?: { what: string; at: bigint };
  private lastWallSec?: { ktime: bigint; sec: number };
  private readonly starts = new Map<string, bigint[]>();
  private readonly reportedSchedules = new Map<string, bigint>();
  private readonly uring = new UringCounts();
  private criScanFailed = false;
  private readonly criHolders = new Map<string, number>();
  /** Mounts reported (process and mount id → when): fsmount then move_mount of one mount is one finding. */
  private readonly reportedMounts = new Map<string, bigint>();

  private readonly tokens;

  constructor(private readonly d: DetectorDeps) {
    this.images = d.images ?? new ImageStore(d.policy.stateDir, d.logger);
    this.tokens = tokenRuleOf(
      d.tokens,
      (c) => d.containerOf(c).k.pod,
      (c) => this.name(c),
    );
  }

  /** Writes the image first-seen store if it changed (the upkeep, the stop): never in a start's path. */
  flushImages(): void {
    this.images.flush();
  }

  /** Failed reads and writes of the image first-seen store (each logged where it happened). */
  imageStoreErrors(): { read: number; write: number } {
    return { ...this.images.errors };
  }

  /** Applies policy: off rules vanish, severities are overridden, the floor is enforced. */
  private gate(fs: Finding[]): Finding[] {
    if (!fs.length) return fs;
    const out: Finding[] = [];
    for (const f of fs) {
      const set = this.d.policy.rules[f.ruleId];
      if (set && !set.enabled) continue;
      const sev: Severity = set?.severity ?? f.severity;
      if (severityRank(sev) < severityRank(this.d.policy.minSeverity)) continue;
      out.push({ ...f, severity: sev });
    }
    return out;
  }

  /** The host's mounts change (a disk mounted later): the caller refreshes them. */
  setHostFs(fs: HostFs): void {
    this.d.hostFs = fs;
  }

  techniques(ruleId: string): string[] {
    return RULE_BY_ID.get(ruleId)?.techniques ?? [];
  }

  onLifecycle(ev: LifecycleEvent): Finding[] {
    if (ev.kind === 'created') return this.gate(this.podCreation(ev.c));
    if (ev.kind === 'exited') this.tokens.forget(ev.c);
    if (ev.kind !== 'started') return [];
    const c = ev.c;
    const { k, meta } = this.d.containerOf(c);
    // A pod's sandbox (pause) container holds the pod's namespaces: what it was given shows on the workloads.
    const f = k.pod?.sandbox ? [] : startRules({ c, k, meta, policy: this.d.policy });
    const imageKey = k.imageDigest || k.image;
    if (imageKey) {
      const isNew = this.images.add(imageKey);
      // Existing containers teach the store the node's images; they are not news.
      if (isNew && !(c.existing && this.images.fresh)) {
        f.push({
          ruleId: 'image.first-seen',
          severity: 'LOW',
          message: `image ${k.image ?? imageKey} seen on this node for the first time`,
          container: c,
          actor: c.entry,
          attributes: { image: k.image ?? '', digest: k.imageDigest ?? '' },
        });
        if (this.lastImport && ev.ktime - this.lastImport.at < 60n * MINUTE_NS) {
          f.push({
            ruleId: 'image.local-import',
            severity: 'MEDIUM',
            message: `container started from ${k.image ?? imageKey}, new on this node after a local '${this.lastImport.what}'`,
            container: c,
            actor: c.entry,
            attributes: { image: k.image ?? '', import: this.lastImport.what },
          });
        }
      }
    }
    if (!c.existing) {
      f.push(...this.schedule(c, k, ev.ktime));
      const s = this.lastSocketConnect;
      if (s && s.c !== c && ev.ktime - s.at < 10_000_000_000n && k.runtime !== 'RUNC' && k.runtime !== 'CRUN' && k.runtime !== 'UNKNOWN') {
        f.push({
          ruleId: 'deploy.from-container',
          severity: 'HIGH',
          message: `${k.runtime} container ${k.name ?? k.id} started ${(Number(ev.ktime - s.at) / 1e6).toFixed(0)} ms after a process in container ${this.name(s.c)} connected to ${s.path}`,
          container: c,
          actor: s.actor,
          attributes: { socket: s.path, from: this.name(s.c) },
        });
      }
    }
    if (c.outer) f.push(this.nested(c, k));
    return this.gate(f);
  }

  /**
   * T1610: who was connected to the runtime's API while a pod sandbox was made (at create:
   * its RunPodSandbox caller is still waiting). The socket is the one containerd told the
   * sandbox's shim (its -address), from the shim's argv as the kernel recorded it.
   */
  private podCreation(c: ContainerFacts): Finding[] {
    if (c.existing || !c.manager) return [];
    const { k } = this.d.containerOf(c);
    if (!k.pod?.sandbox) return [];
    const argv = this.d.procs.get(c.manager.pid)?.argv ?? [];
    const at = argv.findIndex((a) => a === '-address' || a === '--address');
    const socket = at > 0 ? argv[at + 1] : undefined;
    if (!socket) return [];
    const scan = this.d.criClients ?? ((s: string) => criClients(s, new Set(), `mnt:[${this.d.host.mnt}]`, undefined, this.criHolders));
    const clients = scan(socket);
    if (!clients) {
      if (!this.criScanFailed)
        this.d.logger.warn(
          { socket },
          'cannot list the clients of a runtime socket (is ss, from iproute2, installed?): deploy.pod-outside-kubelet is off',
        );
      this.criScanFailed = true;
      return [];
    }
    return podCreators(k, socket, clients, this.d.policy.criClients).map((p) => ({
      ruleId: 'deploy.pod-outside-kubelet' as const,
      severity: p.severity,
      message: p.message,
      container: c,
      actor: this.d.procs.get(p.client.pid),
      attributes: p.attributes,
    }));
  }

  /**
   * A container made by a process of another container (T1610). A sandbox, in
   * a user namespace of its own (browsers, build tools, rootless engines), holds
   * no privilege the outer container lacks: LOW; one made with the host's user
   * namespace (a privileged container running a runtime) is HIGH.
   */
  private nested(c: ContainerFacts, k: ContainerInput): Finding {
    const outer = c.outer!;
    const confined = c.ns.user !== this.d.host.user && c.ns.user !== outer.ns.user;
    const by = c.creator ? ` by ${c.creator.exe || c.creator.comm}` : '';
    const attributes: Record<string, string> = { from: this.name(outer), userNamespace: confined ? 'own' : 'shared' };
    if (k.labels?.[DUPLICATE_ID_LABEL]) attributes.claimedId = k.labels[DUPLICATE_ID_LABEL];
    return {
      ruleId: 'deploy.from-container',
      severity: confined ? 'LOW' : 'HIGH',
      message: `container ${k.name ?? k.id} was made${by} inside container ${this.name(outer)}${confined ? ', in a user namespace of its own' : ''}`,
      container: c,
      actor: c.creator ?? c.entry,
      attributes,
    };
  }

  private name(c: ContainerFacts): string {
    const { k } = this.d.containerOf(c);
    return k.name ?? k.id ?? String(c.key);
  }

  /** The same image (or command, for image-less runtimes) started at a regular interval, 3+ times. */
  private schedule(c: ContainerFacts, k: ContainerInput, at: bigint): Finding[] {
    const key = k.image || (c.entry ? c.entry.argv.join(' ') : '');
    if (!key) return [];
    const list = [...(this.starts.get(key) ?? []), at].slice(-4);
    this.starts.set(key, list);
    if (this.starts.size > 5000) this.starts.delete(this.starts.keys().next().value as string);
    if (list.length < 4) return [];
    const gaps = list.slice(1).map((t, i) => Number(t - list[i]));
    const min = Math.min(...gaps);
    const max = Math.max(...gaps);
    // Bursts (50 at once) are not schedules; jitter of a quarter is.
    if (min < 500e6 || max > min * 1.25) return [];
    const last = this.reportedSchedules.get(key);
    if (last !== undefined && at - last < 60n * MINUTE_NS) return [];
    this.reportedSchedules.set(key, at);
    const period = gaps.reduce((a, b) => a + b, 0) / gaps.length / 1e9;
    return [
      {
        ruleId: 'orchestration.scheduled-image',
        severity: 'LOW',
        message: `${key} started ${list.length} times, every ${period.toFixed(1)} s`,
        container: c,
        actor: c.entry,
        attributes: { key, periodSeconds: period.toFixed(1) },
      },
    ];
  }

  /**
   * The started container a process acts for, by lineage (see Lifecycle.owner).
   * An exec record says whether the kernel follows the process (syscall records
   * do not): one that is neither followed nor in a container's namespaces is
   * the host's, without a walk.
   */
  private acting(r: KernelRecord, p: Proc): ContainerFacts | undefined {
    return this.d.lifecycle.actingFor(p, r.kind === 'exec' ? r.task.flags : undefined);
  }

  onRecord(r: KernelRecord, p: Proc): Finding[] {
    switch (r.kind) {
      case 'exec':
        return this.gate(this.exec(r, p));
      case 'syscall':
        return this.gate(this.syscall(r, p));
      case 'guard':
        return this.gate(this.guard(r, p));
      case 'connect':
        return this.gate([...this.connect(r, p), ...this.tokens.onConnect(r, p, () => this.acting(r, p))]);
      case 'uring':
        return this.gate(this.uringOp(r, p));
      case 'object':
        return this.gate([...this.object(r, p), ...this.tokens.onObject(r, p, () => this.acting(r, p))]);
      default:
        return [];
    }
  }

  private exec(r: ExecRecord, p: Proc): Finding[] {
    const c = this.acting(r, p);
    // Usermode helper: the kernel starts it as a child of kthreadd.
    const f: Finding[] = p.ppid === KTHREADD ? [this.usermodeHelper(r, p)] : [];
    if (cliOf(r.argv)) f.push(...this.runtimeCli(r, p, c));
    return f.concat(this.drift(r, p, c));
  }

  /** escape.usermode-helper: CRITICAL when a container wrote a control file (release_agent, core_pattern...) shortly before. */
  private usermodeHelper(r: ExecRecord, p: Proc): Finding {
    const w = this.lastControlWrite;
    if (w && r.ktime - w.at < 5n * MINUTE_NS)
      return {
        ruleId: 'escape.usermode-helper',
        severity: 'CRITICAL',
        message: `the kernel ran ${r.filename} as root on the host after container ${this.name(w.c)} wrote ${w.path}`,
        container: w.c,
        actor: p,
        attributes: { program: r.filename, controlFile: w.path },
      };
    return {
      ruleId: 'escape.usermode-helper',
      severity: 'LOW',
      message: `the kernel ran ${r.filename} as a usermode helper`,
      actor: p,
      attributes: { program: r.filename },
    };
  }

  /** A container runtime's CLI: enumeration, deployment (from a container, or by a service unit), image import. */
  private runtimeCli(r: ExecRecord, p: Proc, c: ContainerFacts | undefined): Finding[] {
    const f: Finding[] = [];
    const en = enumeration(r.argv);
    if (en) {
      const sev: Severity = c ? 'HIGH' : this.d.policy.discoveryUids.includes(p.uid) ? 'LOW' : 'MEDIUM';
      const where = c ? `inside container ${this.name(c)}` : `on the host by uid ${p.uid}`;
      f.push({
        ruleId: 'discovery.runtime-cli',
        severity: sev,
        message: `'${en}' ${where}`,
        container: c,
        actor: p,
        attributes: { command: en },
      });
    }
    const dep = deployment(r.argv);
    if (dep && c) {
      f.push({
        ruleId: 'deploy.from-container',
        severity: 'HIGH',
        message: `'${dep}' run inside container ${this.name(c)}`,
        container: c,
        actor: p,
        attributes: { command: dep },
      });
    }
    const unit = dep && !c ? this.serviceUnit(dep, p) : undefined;
    if (unit) f.push(unit);
    const imp = imageImport(r.argv);
    if (imp) {
      this.lastImport = { what: imp, at: r.ktime };
      f.push({
        ruleId: 'image.local-import',
        severity: c ? 'MEDIUM' : 'LOW',
        message: `image ${imp.split(' ').pop()}ed locally${c ? ` inside container ${this.name(c)}` : ''}: '${r.argv.slice(0, 6).join(' ')}'`,
        container: c,
        actor: p,
        attributes: { command: imp },
      });
    }
    return f;
  }

  /** persistence.service-unit: an engine's run/create/start on the host by a service unit's process. */
  private serviceUnit(dep: string, p: Proc): Finding | undefined {
    if (!/^(docker|podman|nerdctl) (run|create|start|restart)$/.test(dep)) return undefined;
    const cg = this.d.cgroups.path(p.cgroupId) ?? '';
    if (!/\.service$/.test(cg)) return undefined;
    return {
      ruleId: 'persistence.service-unit',
      severity: 'LOW',
      message: `'${dep}' run by service unit ${cg.slice(cg.lastIndexOf('/') + 1)}`,
      actor: p,
      attributes: { unit: cg, command: dep },
    };
  }

  /** Whether p's line is c's, or a container nested in c. */
  private within(p: Proc, c: ContainerFacts): boolean {
    for (let o = this.d.lifecycle.owner(p) ?? undefined, i = 0; o && i < 16; o = o.outer, i++) if (o === c) return true;
    return false;
  }

  /** Unix seconds of a kernel time; the last answer kept (a container's execs come in runs). */
  private wallSec(ktime: bigint): number {
    if (this.lastWallSec?.ktime !== ktime) this.lastWallSec = { ktime, sec: Number(this.d.wall(ktime) / 1_000_000_000n) };
    return this.lastWallSec.sec;
  }

  private drift(r: ExecRecord, p: Proc, c: ContainerFacts | undefined): Finding[] {
    const f: Finding[] = [];
    // The container's own start (its init's exec of the entrypoint) is not drift; any later exec is,
    // the init's too, when the file has no name left or was written (or its inode changed) after the container started.
    const later = c && c.entry && c.startedNs !== undefined && (p.tgid !== c.entry.tgid || r.ktime > c.startedNs);
    const fileless = c && later ? filelessExe(r.exe) : undefined;
    if (c && fileless) {
      f.push({
        ruleId: 'drift.exec-fileless',
        severity: 'HIGH',
        message: `container ${this.name(c)} ran ${fileless === 'memfd' ? 'a memfd (or a deleted tmpfs file)' : 'a deleted file'} as ${r.filename}`,
        container: c,
        actor: p,
        attributes: { file: r.filename, kind: fileless, fsMagic: `0x${r.exe.fsMagic.toString(16)}`, inode: String(r.exe.ino) },
      });
    }
    if (c && later && c.startedNs !== undefined) {
      const startedSec = this.wallSec(c.startedNs);
      // Times are in seconds. In the very second of the start, an image unpacked just before
      // has a new ctime but its files' old mtimes (tar keeps them); a file written then has both.
      if (r.exe.ctime > 0 && (r.exe.ctime > startedSec || (r.exe.ctime === startedSec && r.exe.mtime >= startedSec))) {
        f.push({
          ruleId: 'drift.exec-new-file',
          severity: 'HIGH',
          message: `container ${this.name(c)} ran ${r.filename}, written after the container started`,
          container: c,
          actor: p,
          attributes: { file: r.filename, ctime: String(r.exe.ctime) },
        });
      }
    }
    return f;
  }

  /** In a container: a started one by its mount namespace, or (one the sensor has not adopted) the kernel's flag. */
  private actorContainer(r: KernelRecord, p: Proc): { c?: ContainerFacts; inContainer: boolean } {
    const c = this.acting(r, p);
    // An exiting task has no namespaces left (all read 0): the kernel's flag says nothing then.
    return { c, inContainer: !!c || ((r.task.flags & TaskFlag.IN_CONTAINER) !== 0 && r.task.ns.mnt !== 0) };
  }

  private where(c: ContainerFacts | undefined, inContainer: boolean, p: Proc): string {
    return c
      ? `a process of container ${this.name(c)}`
      : inContainer
        ? `process ${p.tgid} (${p.comm}) in a container`
        : `host process ${p.tgid} (${p.comm})`;
  }

  private guard(r: GuardRecord, p: Proc): Finding[] {
    const { c, inContainer } = this.actorContainer(r, p);
    const who = this.where(c, inContainer, p);
    if (r.what === 'signal') {
      const sev = signalSeverity(r.sig, inContainer);
      if (!sev) return [];
      const name = signalName(r.sig);
      return [
        {
          ruleId: 'sensor.signal',
          severity: sev,
          message: `${who} sent ${name} to the sensor`,
          container: c,
          actor: p,
          attributes: {
            signal: name,
            signo: String(r.sig),
            siCode: String(r.code),
            result: signalResult(r.result),
            targetTid: String(r.targetTid),
          },
        },
      ];
    }
    const ok = r.result === 0;
    return [
      {
        ruleId: 'sensor.ptrace',
        severity: ptraceSeverity(inContainer),
        message: `${who} ${ok ? 'attached to' : 'tried to attach to'} the sensor with ptrace`,
        container: c,
        actor: p,
        attributes: {
          request: r.sig === 0x4206 ? 'PTRACE_SEIZE' : 'PTRACE_ATTACH',
          targetTid: String(r.targetTid),
          result: String(r.result),
        },
      },
    ];
  }

  private connect(r: ConnectRecord, p: Proc): Finding[] {
    const c = this.acting(r, p);
    if (!c) return [];
    if (r.family === 'unix') {
      const known = this.d.runtimeSockets?.match(r.peerDev, r.peerIno);
      const byName = RUNTIME_SOCKET.test(r.peerPath);
      if (!known && !byName) return [];
      const socket = r.peerPath || known!.path;
      this.lastSocketConnect = { c, actor: p, path: socket, at: r.ktime };
      return [
        {
          ruleId: 'discovery.runtime-socket',
          severity: 'HIGH',
          message: `a process of container ${this.name(c)} connected to runtime socket ${socket}`,
          container: c,
          actor: p,
          attributes: {
            socket,
            inode: String(r.peerIno),
            matchedBy: known ? 'inode' : 'bound-name',
            ...(known ? { daemon: known.source } : {}),
          },
        },
      ];
    }
    if (!this.d.policy.runtimePorts.includes(r.port)) return [];
    const ok = r.ret === 0 || r.ret === EINPROGRESS;
    const socket = r.family === 'inet6' ? `[${r.addr}]:${r.port}` : `${r.addr}:${r.port}`;
    if (ok) this.lastSocketConnect = { c, actor: p, path: socket, at: r.ktime };
    return [
      {
        ruleId: 'discovery.runtime-socket',
        severity: ok ? 'HIGH' : 'MEDIUM',
        message: `a process of container ${this.name(c)} ${ok ? 'connected' : 'tried to connect'} to runtime API port ${socket}`,
        container: c,
        actor: p,
        attributes: { socket, port: String(r.port), result: String(r.ret) },
      },
    ];
  }

  private uringOp(r: UringRecord, p: Proc): Finding[] {
    const c = this.acting(r, p);
    if (!c) return [];
    const n = this.uring.add(c, r.opcode, r.ktime);
    if (!n) return [];
    const list = Object.entries(n.counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    return [
      {
        ruleId: 'evasion.io-uring-ops',
        severity: 'LOW',
        message: `container ${this.name(c)} submitted ${n.total} open/connect operation${n.total > 1 ? 's' : ''} through io_uring (${list})`,
        container: c,
        actor: p,
        attributes: { total: String(n.total), ops: list },
      },
    ];
  }

  private syscall(r: SyscallRecord, p: Proc): Finding[] {
    const f = this.syscallFinding(r, p);
    return f ? [f] : [];
  }

  /** At most one finding a syscall record. */
  private syscallFinding(r: SyscallRecord, p: Proc): Finding | undefined {
    switch (r.syscall) {
      case 'setns':
        return this.setnsHost(r, p);
      case 'mount':
        return this.mountAttempt(r, p);
      case 'bpf':
        return this.bpfCall(r, p);
      case 'io_uring_setup':
        return this.uringSetup(r, p);
      case 'init_module':
      case 'finit_module':
        return this.moduleLoad(r, p);
      case 'ptrace':
        return this.ptraceHost(r, p);
    }
    return undefined;
  }

  private setnsHost(r: SyscallRecord, p: Proc): Finding | undefined {
    const c = this.acting(r, p);
    if (!c || r.ret !== 0) return undefined;
    const host = this.d.host;
    const joined = NS_JOINABLE.filter((k) => r.task.ns[k] === host[k] && r.oldNs[k] !== host[k]);
    if (!joined.length) return undefined;
    return {
      ruleId: 'escape.setns-host',
      severity: 'CRITICAL',
      message: `a process of container ${this.name(c)} joined the host's ${joined.join(', ')} namespace${joined.length > 1 ? 's' : ''}`,
      container: c,
      actor: p,
      attributes: { namespaces: joined.join(',') },
    };
  }

  /** A mount that succeeded is judged from its superblock (object records); attempts from the strings. */
  private mountAttempt(r: SyscallRecord, p: Proc): Finding | undefined {
    const c = this.acting(r, p);
    if (!c || r.ret === 0) return undefined;
    if (r.fstype === 'cgroup' || r.fstype === 'cgroup2')
      return {
        ruleId: 'escape.mount-cgroupfs',
        severity: 'MEDIUM',
        message: `a process of container ${this.name(c)} tried to mount ${r.fstype} at ${r.path1}`,
        container: c,
        actor: p,
        attributes: { api: 'mount(2)', fstype: r.fstype, target: r.path1, result: String(r.ret) },
      };
    if (!/^\/dev\/(sd|vd|xvd|hd|nvme|mmcblk|dm-|mapper\/|md|loop)/.test(r.path0)) return undefined;
    return {
      ruleId: 'escape.mount-device',
      severity: 'HIGH',
      message: `a process of container ${this.name(c)} tried to mount host device ${r.path0} at ${r.path1}`,
      container: c,
      actor: p,
      attributes: { api: 'mount(2)', source: r.path0, target: r.path1, result: String(r.ret) },
    };
  }

  private bpfCall(r: SyscallRecord, p: Proc): Finding | undefined {
    const { c, inContainer } = this.actorContainer(r, p);
    if (!inContainer) return undefined;
    const cmd = bpfCmdName(r.args[0]);
    const ok = r.ret >= 0;
    return {
      ruleId: 'escape.bpf-from-container',
      severity: bpfSeverity(r.args[0], r.ret),
      message: `${this.where(c, inContainer, p)} ${ok ? 'called' : 'tried'} bpf(BPF_${cmd})`,
      container: c,
      actor: p,
      attributes: { cmd: `BPF_${cmd}`, result: String(r.ret), attr: `0x${r.args[3].toString(16)}` },
    };
  }

  private uringSetup(r: SyscallRecord, p: Proc): Finding | undefined {
    const { c, inContainer } = this.actorContainer(r, p);
    if (!inContainer) return undefined;
    const ok = r.ret >= 0;
    return {
      ruleId: 'escape.io-uring-setup',
      severity: 'MEDIUM',
      message: `${this.where(c, inContainer, p)} ${ok ? 'set up' : 'tried to set up'} an io_uring`,
      container: c,
      actor: p,
      attributes: { entries: String(r.args[0]), result: String(r.ret) },
    };
  }

  private moduleLoad(r: SyscallRecord, p: Proc): Finding | undefined {
    const c = this.acting(r, p);
    if (!c) return undefined;
    return {
      ruleId: 'escape.module-load',
      severity: 'CRITICAL',
      message: `a process of container ${this.name(c)} ${r.ret === 0 ? 'loaded' : 'tried to load'} a kernel module`,
      container: c,
      actor: p,
      attributes: { result: String(r.ret) },
    };
  }

  private ptraceHost(r: SyscallRecord, p: Proc): Finding | undefined {
    const c = this.acting(r, p);
    if (!c || (r.args[0] !== PTRACE_ATTACH && r.args[0] !== PTRACE_SEIZE)) return undefined;
    // The target pid is in the caller's pid namespace: the host's only when the container shares it.
    if (p.ns.pid !== this.d.host.pid) return undefined;
    const target = this.d.procs.get(Number(r.args[1]));
    if (!target || this.within(target, c)) return undefined;
    return {
      ruleId: 'escape.ptrace-host',
      severity: 'HIGH',
      message: `a process of container ${this.name(c)} ${r.ret === 0 ? 'attached to' : 'tried to attach to'} host process ${target.tgid} (${target.comm})`,
      container: c,
      actor: p,
      attributes: { target: String(target.tgid), targetExe: target.exe, result: String(r.ret) },
    };
  }

  /** Whether the process an object record names lies outside container c. */
  private targetOutside(r: ObjectRecord, p: Proc, c: ContainerFacts): { outside: boolean; tgid: number; comm: string } | undefined {
    const t = r.target;
    if (!t) return undefined;
    const hostPidNs = p.ns.pid === this.d.host.pid;
    // A pid named in the actor's own pid namespace (or a struct pid inside it) is in the container.
    if (!hostPidNs && (t.vpid || t.inNs)) return { outside: false, tgid: t.tgid, comm: '' };
    if (!t.vpid && !t.inNs) {
      // Outside the actor's pid namespace: outside the container unless the actor sits in a pid namespace nested in it.
      const proc = this.d.procs.get(t.tgid);
      return { outside: !proc || !this.within(proc, c), tgid: t.tgid, comm: proc?.comm ?? '' };
    }
    // The actor shares the host's pid namespace: the pid is a host pid; whose process is it?
    const proc = this.d.procs.get(t.tgid);
    if (!proc) return { outside: true, tgid: t.tgid, comm: '' };
    return { outside: !this.within(proc, c), tgid: t.tgid, comm: proc.comm };
  }

  /**
   * An open of a file on a mount whose maker the kernel killed: the mount
   * stayed in the container's namespace, and the kernel stops whoever uses it
   * (bpf/contain.bpf.h). Reported under the mount's rule.
   */
  private killedMountUse(r: ObjectRecord, p: Proc, c: ContainerFacts): Finding | undefined {
    const cls = r.kill?.cls;
    if (cls !== 'mount_device' && cls !== 'mount_cgroup') return undefined;
    const device = cls === 'mount_device';
    const file = `/${r.chain.join('/')}`;
    return {
      ruleId: device ? 'escape.mount-device' : 'escape.mount-cgroupfs',
      severity: device ? 'CRITICAL' : 'HIGH',
      message: `a process of container ${this.name(c)} ${r.syscall === 'exec' ? 'ran' : 'opened'} ${r.path || file} on the ${device ? `host block device ${devName(r.dev)}` : 'cgroup hierarchy'} mounted by a process the kernel killed`,
      container: c,
      actor: p,
      attributes: {
        api: r.syscall,
        use: r.syscall === 'exec' ? 'exec' : 'open',
        file,
        path: r.path,
        fstype: r.fstype,
        device: devName(r.dev),
        mountId: String(r.mntId),
        hostDevice: String(device),
      },
    };
  }

  private object(r: ObjectRecord, p: Proc): Finding[] {
    const c = this.acting(r, p);
    const f = c && this.objectFinding(r, p, c);
    return f ? [f] : [];
  }

  /** At most one finding an object record. */
  private objectFinding(r: ObjectRecord, p: Proc, c: ContainerFacts): Finding | undefined {
    switch (r.syscall) {
      case 'open':
      case 'openat':
      case 'openat2':
      case 'creat':
      case 'open_by_handle_at':
        return this.openFinding(r, p, c);
      case 'exec':
        return this.killedMountUse(r, p, c);
      case 'mount':
      case 'fsmount':
      case 'open_tree':
      case 'move_mount':
      case 'mount_setattr':
        return this.mountFinding(r, p, c);
      case 'chroot':
      case 'pivot_root':
        return this.rootFinding(r, p, c);
      case 'process_vm_writev':
      case 'pidfd_getfd':
        return this.foreignProcess(r, p, c);
    }
    return undefined;
  }

  /** An open for writing: a kernel control file, another process's memory, or a file on a killed maker's mount. */
  private openFinding(r: ObjectRecord, p: Proc, c: ContainerFacts): Finding | undefined {
    const api = r.syscall;
    const cf = controlFile(r);
    if (!cf) return this.killedMountUse(r, p, c);
    if (cf.kind === 'proc-mem') {
      const t = this.targetOutside(r, p, c);
      if (!t?.outside) return undefined;
      return {
        ruleId: 'escape.process-memory-write',
        severity: 'CRITICAL',
        message: `a process of container ${this.name(c)} opened the memory of process ${t.tgid}${t.comm ? ` (${t.comm})` : ''}, outside the container, for writing`,
        container: c,
        actor: p,
        attributes: { api: `${api} ${cf.file}`, target: String(t.tgid), targetComm: t.comm, path: r.path },
      };
    }
    if (cf.kind !== 'notify_on_release') this.lastControlWrite = { c, actor: p, path: cf.file, at: r.ktime };
    return {
      ruleId: 'escape.kernel-control-write',
      severity: cf.severity,
      message: `a process of container ${this.name(c)} opened ${cf.file} for writing${r.path && r.path !== cf.file ? ` (as ${r.path})` : ''}`,
      container: c,
      actor: p,
      attributes: { file: cf.file, kind: cf.kind, api, path: r.path, fstype: r.fstype },
    };
  }

  private mountFinding(r: ObjectRecord, p: Proc, c: ContainerFacts): Finding | undefined {
    const v = mountVerdict(r, this.d.hostFs);
    if (!v) return undefined;
    // move_mount attaches a mount the same process made with fsmount/open_tree moments ago: one finding.
    // (Mount ids are reused once freed, so only that pair is folded.)
    const key = `${p.tgid}:${p.startNs}:${r.mntId}`;
    const seen = this.reportedMounts.get(key);
    if (r.syscall === 'move_mount' && seen !== undefined && r.ktime - seen < MINUTE_NS) return undefined;
    this.reportedMounts.set(key, r.ktime);
    if (this.reportedMounts.size > 1024) this.reportedMounts.delete(this.reportedMounts.keys().next().value as string);
    return {
      ruleId: v.ruleId,
      severity: v.severity,
      message: `a process of container ${this.name(c)} mounted a ${v.what} with ${v.api}${r.path ? ` at ${r.path}` : ''}`,
      container: c,
      actor: p,
      attributes: {
        api: v.api,
        fstype: r.fstype,
        device: `${Math.floor(r.dev / 0x100000)}:${r.dev % 0x100000}`,
        target: r.path,
        mountId: String(r.mntId),
        hostDevice: String(v.hostDevice ?? false),
      },
    };
  }

  private rootFinding(r: ObjectRecord, p: Proc, c: ContainerFacts): Finding | undefined {
    const v = rootVerdict(r, this.d.hostFs);
    if (!v) return undefined;
    const api = r.syscall;
    return {
      ruleId: 'escape.chroot-host',
      severity: v.severity,
      message: `a process of container ${this.name(c)} changed root (${api}) to ${r.path || '?'}, which is ${v.what}`,
      container: c,
      actor: p,
      attributes: { path: r.path, api, root: v.what, sameMountAsHost: String(v.sameMount) },
    };
  }

  /** process_vm_writev / pidfd_getfd on a process outside the container. */
  private foreignProcess(r: ObjectRecord, p: Proc, c: ContainerFacts): Finding | undefined {
    const t = this.targetOutside(r, p, c);
    if (!t?.outside) return undefined;
    const api = r.syscall;
    const ok = r.ret >= 0;
    const mem = r.syscall === 'process_vm_writev';
    return {
      ruleId: mem ? 'escape.process-memory-write' : 'escape.pidfd-getfd',
      severity: ok ? (mem ? 'CRITICAL' : 'HIGH') : 'MEDIUM',
      message: `a process of container ${this.name(c)} ${ok ? '' : 'tried to '}${mem ? 'write into the memory of' : 'take a file descriptor of'} process ${t.tgid}${t.comm ? ` (${t.comm})` : ''}, outside the container, with ${api}`,
      container: c,
      actor: p,
      attributes: { api, target: String(t.tgid), targetComm: t.comm, result: String(r.ret) },
    };
  }
}
