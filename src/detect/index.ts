// detect: the MITRE ATT&CK detections — the rule catalogue, the policy that tunes it, and the detector over records and lifecycle events.

export { RULES, RULE_BY_ID, type RuleId } from './catalog';
export { Detector } from './detector';
export { DEFAULT_POLICY, loadPolicy, PolicyError, type Policy } from './policy';
export type { Finding, Severity } from './types';
