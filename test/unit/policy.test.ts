import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, parsePolicy, PolicyError } from '../../src/detect/policy';

/** The error parsePolicy gives for a text, as file:line:col: reason. */
function errorOf(text: string): string {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${text}`);
}

describe('policy file', () => {
  it('reads every key', () => {
    const p = parsePolicy(
      [
        'rules:',
        '  escape.root-container: false',
        '  drift.exec-new-file: { severity: critical, action: dry-run }',
        'images: { allow: ["localhost/*"] }',
        'trustedCreators: [/usr/bin/bwrap]',
        'criClients: [/usr/bin/kubelet]',
        'discovery: { allowedUids: [0, 1000], runtimePorts: [2375] }',
        'kubernetes: { apiServers: ["10.96.0.1:443", "[fd00::1]:6443"] }',
        'minSeverity: medium',
        'stateDir: /var/lib/cw',
      ].join('\n'),
    );
    expect(p.rules['escape.root-container']).toEqual({ enabled: false });
    expect(p.rules['drift.exec-new-file']).toEqual({ enabled: true, severity: 'CRITICAL', action: 'dry-run' });
    expect(p).toMatchObject({
      imageAllow: ['localhost/*'],
      trustedCreators: ['/usr/bin/bwrap'],
      criClients: ['/usr/bin/kubelet'],
      discoveryUids: [0, 1000],
      runtimePorts: [2375],
      apiServers: ['10.96.0.1:443', '[fd00::1]:6443'],
      minSeverity: 'MEDIUM',
      stateDir: '/var/lib/cw',
    });
    expect(parsePolicy('')).toEqual(DEFAULT_POLICY);
  });

  it.each([
    ['- a', 'p.yaml:1:1: the policy must be a mapping (key: value lines)'],
    [
      'colour: red',
      "p.yaml:1:1: unknown key 'colour' (rules, images, trustedCreators, criClients, discovery, kubernetes, minSeverity, stateDir)",
    ],
    ['rules: [a]', 'p.yaml:1:8: rules must be a mapping of rule id to settings'],
    ['rules: { no.such: true }', "p.yaml:1:10: unknown rule 'no.such' (ctrwatch rules lists them)"],
    ['rules: { escape.root-container: 3 }', 'p.yaml:1:33: rule escape.root-container: give true/false or {enabled, severity, action}'],
    ['rules: { escape.root-container: { enabled: yes } }', 'p.yaml:1:44: rule escape.root-container: enabled must be true or false'],
    [
      'rules: { escape.root-container: { severity: loud } }',
      "p.yaml:1:45: rule escape.root-container: severity must be one of INFO, LOW, MEDIUM, HIGH, CRITICAL, not 'LOUD'",
    ],
    [
      'rules: { escape.root-container: { action: stop } }',
      "p.yaml:1:43: rule escape.root-container: action must be one of report, kill, dry-run, not 'stop'",
    ],
    [
      'rules: { escape.root-container: { color: 1 } }',
      "p.yaml:1:35: rule escape.root-container: unknown setting 'color' (enabled, severity, action)",
    ],
    ['images: [a]', 'p.yaml:1:9: images must be a mapping with allow: [patterns]'],
    ['images: { deny: [a] }', "p.yaml:1:11: images: unknown setting 'deny' (allow)"],
    ['trustedCreators: a', 'p.yaml:1:18: trustedCreators must be a list'],
    ['criClients: [kubelet]', "p.yaml:1:14: criClients: 'kubelet' is not an absolute exe path"],
    ['discovery: 1', 'p.yaml:1:12: discovery must be a mapping with allowedUids: [uids], runtimePorts: [ports]'],
    ['discovery: { allowedUids: [-1] }', 'p.yaml:1:28: each uid must be a whole number ≥ 0'],
    ['discovery: { runtimePorts: 80 }', 'p.yaml:1:28: discovery.runtimePorts must be a list of TCP ports'],
    ['discovery: { runtimePorts: [70000] }', 'p.yaml:1:29: each port must be a whole number from 1 to 65535'],
    [
      `discovery: { runtimePorts: [${Array.from({ length: 65 }, (_, i) => i + 1).join(',')}] }`,
      'p.yaml:1:28: discovery.runtimePorts holds 65 ports, at most 64',
    ],
    ['discovery: { users: [] }', "p.yaml:1:14: discovery: unknown setting 'users' (allowedUids, runtimePorts)"],
    ['kubernetes: 1', 'p.yaml:1:13: kubernetes must be a mapping with apiServers: [address:port]'],
    ['kubernetes: { servers: [] }', "p.yaml:1:15: kubernetes: unknown setting 'servers' (apiServers)"],
    ['kubernetes: { apiServers: 10.96.0.1 }', 'p.yaml:1:27: kubernetes.apiServers must be a list of address:port'],
    ['kubernetes: { apiServers: [1] }', 'p.yaml:1:28: each entry of kubernetes.apiServers must be a string'],
    [
      'kubernetes: { apiServers: ["10.96.0.1"] }',
      `p.yaml:1:28: kubernetes.apiServers: '10.96.0.1' is not address:port ("10.96.0.1:443" or "[fd00::1]:443")`,
    ],
    [
      'kubernetes: { apiServers: ["kubernetes.default:443"] }',
      "p.yaml:1:28: kubernetes.apiServers: 'kubernetes.default' in 'kubernetes.default:443' is not an IP address (names are not resolved)",
    ],
    ['kubernetes: { apiServers: ["10.96.0.1:0"] }', "p.yaml:1:28: kubernetes.apiServers: port 0 in '10.96.0.1:0' is not from 1 to 65535"],
    [
      `kubernetes: { apiServers: [${Array.from({ length: 17 }, (_, i) => `"10.0.0.${i}:443"`).join(',')}] }`,
      'p.yaml:1:27: kubernetes.apiServers holds 17 addresses, at most 16',
    ],
    ['minSeverity: 3', 'p.yaml:1:14: minSeverity must be a string'],
    ['stateDir: var/lib', 'p.yaml:1:11: stateDir must be an absolute path'],
  ])('refuses %s with file, line, column and reason', (text, message) => {
    expect(errorOf(text)).toBe(message);
  });

  it('refuses an action on a rule that cannot kill, naming those that can', () => {
    expect(errorOf('rules: { image.first-seen: { action: kill } }')).toMatch(
      /^p\.yaml:1:38: rule image\.first-seen cannot kill; rules that can: /,
    );
  });
});
