import type { ContainerFacts } from '../container/lifecycle';
import type { Proc } from '../process/table';

export const SEVERITIES = ['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const severityRank = (s: Severity) => SEVERITIES.indexOf(s);

/** What a rule found, before policy (enable, severity) and output. */
export interface Finding {
  ruleId: string;
  severity: Severity;
  message: string;
  container?: ContainerFacts;
  /** The process that acted; its chain goes out with the detection. */
  actor?: Proc;
  attributes?: Record<string, string>;
}

/** Every rule: stable id, ATT&CK techniques, default severity, one line of what it means. */
export interface RuleInfo {
  id: string;
  techniques: string[];
  severity: Severity;
  summary: string;
}
