import type { Logger } from 'pino';
import type { Policy } from '../detect/policy';
import type { Finding } from '../detect/types';
import { decide, type Decision, type Outcome } from './decide';

export type KillFn = (pid: number, startNs: bigint) => number;

/** errno values the addon returns, named for the detection's reason. */
const ERRNO: Record<number, string> = { 1: 'EPERM: not permitted', 3: 'ESRCH: the process had already exited', 22: 'EINVAL' };

/**
 * The containment stage: after detection and policy, decides per finding
 * whether its actor is killed, and kills from user space for the rules whose
 * decision is made there. Counts every outcome.
 */
export class Containment {
  readonly counts: Record<Outcome, number> = { KILLED: 0, WOULD_KILL: 0, KILL_FAILED: 0, SPARED: 0 };

  constructor(private readonly o: { policy: Policy; selfPid: number; kill: KillFn; logger: Logger }) {}

  apply(f: Finding, image?: string): Decision {
    const p = this.o.policy;
    let d = decide(f, p.rules[f.ruleId]?.action, {
      selfPid: this.o.selfPid,
      image,
      imageAllow: p.imageAllow,
      trustedCreators: p.trustedCreators,
    });
    if (d.outcome === 'KILLED' && d.path === 'user' && f.actor) {
      const r = this.o.kill(f.actor.tgid, f.actor.startNs);
      if (r !== 0) d = { outcome: 'KILL_FAILED', path: d.path, reason: ERRNO[-r] ?? `errno ${-r}` };
    }
    if (d.outcome) {
      this.counts[d.outcome]++;
      this.o.logger.info({ rule: f.ruleId, pid: f.actor?.tgid, outcome: d.outcome, path: d.path, reason: d.reason }, 'containment');
    }
    return d;
  }
}
