import type { ContainerFacts } from '../container/lifecycle';
import type { Proc } from '../process/table';
import { SEVERITIES, type RuleId, type Severity } from './catalog';

export { SEVERITIES, type RuleId, type RuleInfo, type Severity } from './catalog';
export const severityRank = (s: Severity) => SEVERITIES.indexOf(s);

/** What a rule found, before policy (enable, severity) and output. */
export interface Finding {
  ruleId: RuleId;
  severity: Severity;
  message: string;
  container?: ContainerFacts;
  /** The process that acted; its chain goes out with the detection. */
  actor?: Proc;
  attributes?: Record<string, string>;
}
