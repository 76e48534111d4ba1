import type { Logger } from 'pino';
import type { CgroupRegistry } from '../container/cgroups';
import type { EnrichedMeta } from '../container/enrich';
import type { ContainerFacts, Lifecycle, LifecycleEvent } from '../container/lifecycle';
import type { KernelRecord, Namespaces, SyscallRecord, ExecRecord } from '../decode/records';
import type { Proc, ProcessTable } from '../process/table';
import type { ContainerInput } from '../proto/schema';
import { RULE_BY_ID } from './catalog';
import { cliOf, deployment, enumeration, imageImport } from './cli-patterns';
import { ImageStore } from './image-store';
import type { Policy } from './policy';
import { sensitiveMounts, startRules } from './start-rules';
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
}

const NS_JOINABLE: (keyof Namespaces)[] = ['mnt', 'net', 'ipc', 'uts', 'cgroup', 'user', 'pid'];
const PTRACE_ATTACH = 16n;
const PTRACE_SEIZE = 0x4206n;
const KTHREADD = 2;
const RUNTIME_SOCKET = /(^|\/)(docker|containerd|crio|podman|cri-dockerd|dockershim|buildkitd)\.sock(\.ttrpc)?$/;
const CONTROL_FILE = /(release_agent|core_pattern|uevent_helper|kernel\/modprobe|sysrq-trigger|notify_on_release)$/;
const MINUTE_NS = 60_000_000_000n;

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
  private readonly starts = new Map<string, bigint[]>();
  private readonly reportedSchedules = new Map<string, bigint>();

  constructor(private readonly d: DetectorDeps) {
    this.images = d.images ?? new ImageStore(d.policy.stateDir);
  }

  /** Applies policy: off rules vanish, severities are overridden, the floor is enforced. */
  private gate(fs: Finding[]): Finding[] {
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

  techniques(ruleId: string): string[] {
    return RULE_BY_ID.get(ruleId)?.techniques ?? [];
  }

  onLifecycle(ev: LifecycleEvent): Finding[] {
    if (ev.kind !== 'started') return [];
    const c = ev.c;
    const { k, meta } = this.d.containerOf(c);
    const f = startRules({ c, k, meta, policy: this.d.policy });
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
      const outer = c.creator ? this.d.lifecycle.get(c.creator.ns.mnt) : undefined;
      if (outer && outer !== c) {
        f.push({
          ruleId: 'deploy.from-container',
          severity: 'HIGH',
          message: `container ${k.name ?? k.id} was made by ${c.creator!.exe} inside container ${this.name(outer)}`,
          container: c,
          actor: c.creator,
          attributes: { from: this.name(outer) },
        });
      }
    }
    return this.gate(f);
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

  /** The container a process acts from (for setns: the one it was in before). */
  private containerOfNs(mnt: number): ContainerFacts | undefined {
    const c = this.d.lifecycle.get(mnt);
    return c && c.status === 'started' ? c : undefined;
  }

  onRecord(r: KernelRecord, p: Proc): Finding[] {
    switch (r.kind) {
      case 'exec':
        return this.gate(this.exec(r, p));
      case 'syscall':
        return this.gate(this.syscall(r, p));
      default:
        return [];
    }
  }

  private exec(r: ExecRecord, p: Proc): Finding[] {
    const f: Finding[] = [];
    const c = this.containerOfNs(p.ns.mnt);
    // Usermode helper: the kernel starts it as a child of kthreadd.
    if (p.ppid === KTHREADD) {
      const w = this.lastControlWrite;
      if (w && r.ktime - w.at < 5n * MINUTE_NS) {
        f.push({
          ruleId: 'escape.usermode-helper',
          severity: 'CRITICAL',
          message: `the kernel ran ${r.filename} as root on the host after container ${this.name(w.c)} wrote ${w.path}`,
          container: w.c,
          actor: p,
          attributes: { program: r.filename, controlFile: w.path },
        });
      } else {
        f.push({
          ruleId: 'escape.usermode-helper',
          severity: 'LOW',
          message: `the kernel ran ${r.filename} as a usermode helper`,
          actor: p,
          attributes: { program: r.filename },
        });
      }
    }
    if (!cliOf(r.argv)) return f.concat(this.drift(r, p, c));
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
    if (dep && !c && /^(docker|podman|nerdctl) (run|create|start|restart)$/.test(dep)) {
      const cg = this.d.cgroups.path(p.cgroupId) ?? '';
      if (/\.service$/.test(cg)) {
        f.push({
          ruleId: 'persistence.service-unit',
          severity: 'LOW',
          message: `'${dep}' run by service unit ${cg.slice(cg.lastIndexOf('/') + 1)}`,
          actor: p,
          attributes: { unit: cg, command: dep },
        });
      }
    }
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
    return f.concat(this.drift(r, p, c));
  }

  private drift(r: ExecRecord, p: Proc, c: ContainerFacts | undefined): Finding[] {
    const f: Finding[] = [];
    if (c && c.entry && p.tgid !== c.entry.tgid && c.startedNs !== undefined) {
      // Drift: the file exec'd was written (or its inode changed) after the container started.
      const startedSec = Number(this.d.wall(c.startedNs) / 1_000_000_000n);
      if (r.exe.ctime >= startedSec && r.exe.ctime > 0) {
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

  private syscall(r: SyscallRecord, p: Proc): Finding[] {
    const f: Finding[] = [];
    const host = this.d.host;
    switch (r.syscall) {
      case 'setns': {
        const c = this.containerOfNs(r.oldNs.mnt) ?? this.containerOfNs(p.ns.mnt);
        if (!c || r.ret !== 0) break;
        const joined = NS_JOINABLE.filter((k) => r.task.ns[k] === host[k] && r.oldNs[k] !== host[k]);
        if (joined.length) {
          f.push({
            ruleId: 'escape.setns-host',
            severity: 'CRITICAL',
            message: `a process of container ${this.name(c)} joined the host's ${joined.join(', ')} namespace${joined.length > 1 ? 's' : ''}`,
            container: c,
            actor: p,
            attributes: { namespaces: joined.join(',') },
          });
        }
        break;
      }
      case 'mount': {
        const c = this.containerOfNs(p.ns.mnt);
        if (!c) break;
        const ok = r.ret === 0;
        if (r.fstype === 'cgroup' || r.fstype === 'cgroup2') {
          f.push({
            ruleId: 'escape.mount-cgroupfs',
            severity: ok ? 'HIGH' : 'MEDIUM',
            message: `a process of container ${this.name(c)} ${ok ? 'mounted' : 'tried to mount'} ${r.fstype} at ${r.path1}`,
            container: c,
            actor: p,
            attributes: { fstype: r.fstype, target: r.path1, result: String(r.ret) },
          });
        } else if (/^\/dev\/(sd|vd|xvd|hd|nvme|mmcblk|dm-|mapper\/|md|loop)/.test(r.path0)) {
          f.push({
            ruleId: 'escape.mount-device',
            severity: ok ? 'CRITICAL' : 'HIGH',
            message: `a process of container ${this.name(c)} ${ok ? 'mounted' : 'tried to mount'} host device ${r.path0} at ${r.path1}`,
            container: c,
            actor: p,
            attributes: { source: r.path0, target: r.path1, result: String(r.ret) },
          });
        }
        break;
      }
      case 'open_write': {
        const c = this.containerOfNs(p.ns.mnt);
        if (!c || !CONTROL_FILE.test(r.path0)) break;
        const notify = r.path0.endsWith('notify_on_release');
        if (!notify) this.lastControlWrite = { c, actor: p, path: r.path0, at: r.ktime };
        f.push({
          ruleId: 'escape.kernel-control-write',
          severity: notify ? 'HIGH' : 'CRITICAL',
          message: `a process of container ${this.name(c)} opened ${r.path0} for writing`,
          container: c,
          actor: p,
          attributes: { file: r.path0 },
        });
        break;
      }
      case 'connect_unix': {
        const c = this.containerOfNs(p.ns.mnt);
        if (!c || !RUNTIME_SOCKET.test(r.path0)) break;
        this.lastSocketConnect = { c, actor: p, path: r.path0, at: r.ktime };
        f.push({
          ruleId: 'discovery.runtime-socket',
          severity: 'HIGH',
          message: `a process of container ${this.name(c)} connected to runtime socket ${r.path0}`,
          container: c,
          actor: p,
          attributes: { socket: r.path0 },
        });
        break;
      }
      case 'init_module':
      case 'finit_module': {
        const c = this.containerOfNs(p.ns.mnt);
        if (!c) break;
        f.push({
          ruleId: 'escape.module-load',
          severity: 'CRITICAL',
          message: `a process of container ${this.name(c)} ${r.ret === 0 ? 'loaded' : 'tried to load'} a kernel module`,
          container: c,
          actor: p,
          attributes: { result: String(r.ret) },
        });
        break;
      }
      case 'ptrace': {
        const c = this.containerOfNs(p.ns.mnt);
        if (!c || (r.args[0] !== PTRACE_ATTACH && r.args[0] !== PTRACE_SEIZE)) break;
        // The target pid is in the caller's pid namespace: the host's only when the container shares it.
        if (p.ns.pid !== host.pid) break;
        const target = this.d.procs.get(Number(r.args[1]));
        if (target && target.ns.mnt !== c.key) {
          f.push({
            ruleId: 'escape.ptrace-host',
            severity: 'HIGH',
            message: `a process of container ${this.name(c)} ${r.ret === 0 ? 'attached to' : 'tried to attach to'} host process ${target.tgid} (${target.comm})`,
            container: c,
            actor: p,
            attributes: { target: String(target.tgid), targetExe: target.exe, result: String(r.ret) },
          });
        }
        break;
      }
      case 'chroot':
      case 'pivot_root': {
        const c = this.containerOfNs(p.ns.mnt);
        if (!c || r.ret !== 0) break;
        const path = r.path0.replace(/\/+$/, '') || '/';
        const { k } = this.d.containerOf(c);
        const hostRootMount = sensitiveMounts(k).find(
          (m) => m.source === '/' && (path === m.destination || path.startsWith(`${m.destination}/`)),
        );
        if (hostRootMount || /^\/proc\/\d+\/root(\/|$)/.test(path)) {
          f.push({
            ruleId: 'escape.chroot-host',
            severity: 'HIGH',
            message: `a process of container ${this.name(c)} changed root to ${r.path0}, the host's filesystem`,
            container: c,
            actor: p,
            attributes: { path: r.path0 },
          });
        }
        break;
      }
    }
    return f;
  }
}
