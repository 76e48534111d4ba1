import type { Logger } from 'pino';
import type { ContainerFacts } from '../container/lifecycle';
import { Arm, ContainerVerdict, KILL_CLASSES, type KillClass } from '../decode/layout';
import type { KernelKill } from '../decode/records';
import { globMatch, type Policy } from '../detect/policy';
import type { HostFs } from '../host-fs';
import { KERNEL_CLASSES } from '../detect/actions';
import type { Decision } from './decide';

/** What the kernel side offers containment (KernelSensor): its maps. */
export interface ContainPort {
  setKillArm(arm: number[]): void;
  setContainer(cgroupId: bigint, verdict: number): void;
  setHostFs(fs: HostFs): void;
}

/** kill_arm from the policy: enum cw_arm per enum cw_kill_class, index 0 unused. */
export function armFromPolicy(p: Policy): number[] {
  const arm = KILL_CLASSES.map(() => Arm.REPORT as number);
  for (const [rule, classes] of Object.entries(KERNEL_CLASSES)) {
    const action = p.rules[rule]?.enabled === false ? undefined : p.rules[rule]?.action;
    const v = action === 'kill' ? Arm.KILL : action === 'dry-run' ? Arm.DRY_RUN : Arm.REPORT;
    for (const c of classes) arm[KILL_CLASSES.indexOf(c)] = v;
  }
  return arm;
}

/**
 * What the kernel may do in a container: spared when its image is
 * allowlisted or its creator trusted (the policy's never-list), else armed.
 * The kernel sees the container's cgroup only; the per-actor checks (the
 * actor's own exe a trusted creator) stay in user space.
 */
export function containerVerdict(p: Policy, image: string | undefined, creatorExe: string | undefined): number {
  if (image && p.imageAllow.some((g) => globMatch(g, image))) return ContainerVerdict.SPARED;
  if (creatorExe) {
    const base = creatorExe.split('/').pop() ?? creatorExe;
    if (p.trustedCreators.some((t) => t === creatorExe || t === base)) return ContainerVerdict.SPARED;
  }
  return ContainerVerdict.ARMED;
}

/**
 * Keeps the kernel's containment maps in step with the policy and the
 * containers: arms the classes once, names each container's cgroup when the
 * container is created (and again when enriched further), forgets it when it
 * exits, and hands over the host's devices and / when they are read.
 */
export class KernelContainment {
  /** Containers named to the kernel: the cgroup and verdict written. */
  private readonly named = new Map<ContainerFacts, { cg: bigint; v: number }>();
  private readonly log: Logger;

  constructor(private readonly o: { policy: Policy; port: ContainPort; logger: Logger }) {
    this.log = o.logger.child({ component: 'containment' });
  }

  arm(): void {
    const arm = armFromPolicy(this.o.policy);
    this.o.port.setKillArm(arm);
    const armed = KILL_CLASSES.filter((c, i) => c && arm[i] !== Arm.REPORT);
    if (armed.length) this.log.info({ classes: armed }, 'kernel containment armed');
  }

  /**
   * ownsCgroup: the cgroup is the container's alone (not the host's, its
   * creator's or an outer container's). selfCgroup: the sensor's own cgroup:
   * the container the sensor runs in (a DaemonSet pod) is always spared.
   * imageBased: made by an engine (docker, podman, containerd…) that gives
   * its containers images, unlike a bare OCI runtime.
   */
  container(c: ContainerFacts, ownsCgroup: boolean, image: string | undefined, selfCgroup = 0n, imageBased = false): void {
    if (c.status === 'exited' || !ownsCgroup || c.cgroupId <= 1n) return;
    // An engine's container whose image is not read yet may turn out allowlisted: not armed
    // until it is (the kernel spares it meanwhile, and user space decides with what it knows).
    if (!image && imageBased && this.o.policy.imageAllow.length && !this.named.has(c)) return;
    const v = c.cgroupId === selfCgroup ? ContainerVerdict.SPARED : containerVerdict(this.o.policy, image, c.creator?.exe);
    const was = this.named.get(c);
    if (was && was.cg === c.cgroupId && was.v === v) return;
    try {
      if (was && was.cg !== c.cgroupId) this.forget(c, was.cg);
      this.o.port.setContainer(c.cgroupId, v);
      this.named.set(c, { cg: c.cgroupId, v });
    } catch (err) {
      this.log.warn({ err, cgroup: String(c.cgroupId) }, 'container not named to the kernel: its escapes are contained from user space');
    }
  }

  exited(c: ContainerFacts): void {
    const was = this.named.get(c);
    if (was) this.forget(c, was.cg);
  }

  private forget(c: ContainerFacts, cg: bigint): void {
    this.named.delete(c);
    try {
      this.o.port.setContainer(cg, ContainerVerdict.UNKNOWN);
    } catch (err) {
      this.log.warn({ err, cgroup: String(cg) }, 'container not forgotten by the kernel');
    }
  }

  hostFs(fs: HostFs | undefined): void {
    if (!fs) return;
    try {
      this.o.port.setHostFs(fs);
    } catch (err) {
      this.log.warn({ err }, 'host devices not given to the kernel: host-disk mounts and chroots are contained from user space');
    }
  }
}

const KERNEL_REASONS: Record<string, string> = {
  not_container: 'the kernel did not know it as a container (not named yet, or no cgroup of its own)',
  allowlisted: "the container's image or creator is allowlisted",
  host_init: "the host's PID 1",
  kthread: 'a kernel thread',
  self: 'the sensor itself',
  no_helper: 'no bpf_send_signal on this kernel',
  inside: 'the process acted on is in the same container',
};

/**
 * The detection's containment for a kernel rule, from what the kernel did
 * (the record's cw_kill) and what user space decided (`user`, with path
 * 'kernel' and the same never-list). Where the kernel did not act (no
 * decision in the record, a container it was not told of yet, no
 * bpf_send_signal, a failed signal), user space acts instead: path 'user',
 * and the reason says why.
 */
export function fromKernel(user: Decision, k: KernelKill | undefined, cls: readonly KillClass[]): Decision {
  if (!user.outcome) return user;
  const viaUser = (why: string): Decision => {
    if (user.outcome === 'KILLED') return { outcome: 'KILLED', path: 'user', reason: `${why}: killed from user space` };
    return { ...user, path: 'user', reason: user.reason ? `${user.reason} (${why})` : why };
  };
  if (!k || !cls.includes(k.cls) || !k.outcome) return viaUser('not decided in the kernel');
  switch (k.outcome) {
    case 'killed':
      return { outcome: 'KILLED', path: 'kernel' };
    case 'would_kill':
      return { outcome: 'WOULD_KILL', path: 'kernel', reason: 'dry-run' };
    case 'denied':
      return { outcome: 'DENIED', path: 'kernel', reason: 'refused with EPERM by BPF-LSM' };
    case 'spared':
      if (k.reason === 'not_container') return viaUser(KERNEL_REASONS.not_container);
      return { outcome: 'SPARED', path: 'kernel', reason: KERNEL_REASONS[k.reason ?? ''] ?? k.reason };
    case 'failed':
      if (k.reason === 'no_helper') return viaUser(KERNEL_REASONS.no_helper);
      return viaUser(`the kernel's signal failed (errno ${-k.err})`);
  }
}
