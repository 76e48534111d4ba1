import type { Logger } from 'pino';
import type { KernelKill } from '../decode/records';
import type { Policy } from '../detect/policy';
import type { Finding } from '../detect/types';
import { KERNEL_CLASSES, KILLABLE } from '../detect/actions';
import { decide, type Decision, type Outcome } from './decide';
import { fromKernel } from './kernel';

export type KillFn = (pid: number, startNs: bigint) => number;

/** errno values the addon returns, named for the detection's reason. */
const ERRNO: Record<number, string> = { 1: 'EPERM: not permitted', 3: 'ESRCH: the process had already exited', 22: 'EINVAL' };

/**
 * The containment stage: after detection and policy, decides per finding
 * whether its actor is killed. For kernel rules it reports what the kernel
 * did (the record's cw_kill) and kills from user space where the kernel
 * could not; for user rules it kills through a pidfd. Counts every outcome,
 * in total and per rule and path.
 */
export class Containment {
  readonly counts: Record<Outcome, number> = { KILLED: 0, WOULD_KILL: 0, KILL_FAILED: 0, SPARED: 0, DENIED: 0 };
  /** "<rule>.<outcome>.<path>" → count (sensorStats counters containment.*). */
  readonly byRule = new Map<string, number>();

  constructor(private readonly o: { policy: Policy; selfPid: number; kill: KillFn; logger: Logger }) {}

  /** kill: the cw_kill of the record the finding came from, if any. */
  apply(f: Finding, image?: string, kill?: KernelKill, imageBased = false): Decision {
    const p = this.o.policy;
    let d = decide(f, p.rules[f.ruleId]?.action, {
      selfPid: this.o.selfPid,
      image,
      imageBased,
      imageAllow: p.imageAllow,
      trustedCreators: p.trustedCreators,
    });
    if (KILLABLE[f.ruleId] === 'kernel') d = fromKernel(d, kill, KERNEL_CLASSES[f.ruleId] ?? []);
    if (d.outcome === 'KILLED' && d.path === 'user' && f.actor) {
      const r = this.o.kill(f.actor.tgid, f.actor.startNs);
      if (r !== 0) {
        const why = ERRNO[-r] ?? `errno ${-r}`;
        d = {
          outcome: 'KILL_FAILED',
          path: d.path,
          reason: d.reason ? `${d.reason.replace(/: killed from user space$/, '')}; from user space: ${why}` : why,
        };
      }
    }
    if (d.outcome) {
      this.counts[d.outcome]++;
      const key = `${f.ruleId}.${d.outcome.toLowerCase()}.${d.path}`;
      this.byRule.set(key, (this.byRule.get(key) ?? 0) + 1);
      this.o.logger.info({ rule: f.ruleId, pid: f.actor?.tgid, outcome: d.outcome, path: d.path, reason: d.reason }, 'containment');
    }
    return d;
  }
}
