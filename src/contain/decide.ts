import { globMatch } from '../detect/policy';
import type { Finding } from '../detect/types';
import { KILLABLE, type Action, type KillPath } from '../detect/actions';

/** What the detection says was done about it (proto ContainmentAction). */
export type Outcome = 'KILLED' | 'WOULD_KILL' | 'KILL_FAILED' | 'SPARED' | 'DENIED';

export interface Decision {
  /** undefined: the rule only reports. */
  outcome?: Outcome;
  path?: KillPath;
  reason?: string;
}

/** What the guards need to know beyond the finding. */
export interface Guard {
  /** The sensor's own pid. */
  selfPid: number;
  /** The image of the finding's container, if known. */
  image?: string;
  imageAllow: readonly string[];
  trustedCreators: readonly string[];
  /** Made by an engine that gives containers images (not a bare OCI runtime): an unknown image may yet be allowlisted. */
  imageBased?: boolean;
}

const KTHREADD = 2;

/**
 * Whether this finding may kill its actor, and if not, why. Never: a process
 * outside containers, the host's PID 1, kernel threads, the sensor itself,
 * an allowlisted image or creator.
 */
export function decide(f: Finding, action: Action | undefined, g: Guard): Decision {
  const path = KILLABLE[f.ruleId];
  if (!action || action === 'report' || !path) return {};
  const spare = (reason: string): Decision => ({ outcome: 'SPARED', path, reason });
  const a = f.actor;
  if (!a) return spare('no acting process');
  if (!f.container) return spare('the actor is not in a container');
  if (a.tgid === 1) return spare("the host's PID 1");
  if (a.tgid === KTHREADD || a.ppid === KTHREADD) return spare('a kernel thread');
  if (a.tgid === g.selfPid) return spare('the sensor itself');
  if (g.image && g.imageAllow.some((p) => globMatch(p, g.image!))) return spare(`image ${g.image} is allowlisted`);
  if (!g.image && g.imageBased && g.imageAllow.length) return spare('its image is not known yet and may be allowlisted');
  const exe = a.exe.split('/').pop() ?? a.exe;
  if (g.trustedCreators.some((t) => t === a.exe || t === exe)) return spare(`${a.exe} is a trusted creator`);
  if (action === 'dry-run') return { outcome: 'WOULD_KILL', path, reason: 'dry-run' };
  return { outcome: 'KILLED', path };
}
