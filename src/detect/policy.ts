import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { ACTIONS, KILLABLE, type Action } from './actions';
import { RULE_BY_ID } from './catalog';
import { SEVERITIES, type Severity } from './types';
import { parseApiAddress } from './api-address';

/**
 * The policy file (`ctrwatch run --policy FILE`, YAML): rules on/off and their
 * severities, the image allowlist, trusted creators, users allowed to
 * enumerate, the minimum severity emitted. Validated as a whole at start; a
 * bad file is refused with file:line:column and the reason.
 */
export interface Policy {
  /** action: what to do to the acting process beyond reporting (default report). */
  rules: Record<string, { enabled: boolean; severity?: Severity; action?: Action }>;
  /** Glob patterns ('*' any run of characters); empty: no allowlist, the rule is off. */
  imageAllow: string[];
  /** Exe paths or basenames allowed to make containers without a known runtime. */
  trustedCreators: string[];
  /** Exe paths of the host processes that may make pods through the CRI (the kubelet). */
  criClients: string[];
  /** uids whose runtime CLI enumeration on the host is expected. */
  discoveryUids: number[];
  /** TCP ports of runtime and kubelet APIs: a connect to one from a container is discovery (T1613). */
  runtimePorts: number[];
  /** Kubernetes API server addresses ("10.96.0.1:443"), besides those the kubelet gives each pod's environment. */
  apiServers: string[];
  minSeverity: Severity;
  /** Where node state lives (images seen). */
  stateDir: string;
}

export const DEFAULT_POLICY: Policy = {
  rules: {},
  imageAllow: [],
  trustedCreators: [],
  criClients: ['/usr/bin/kubelet', '/usr/local/bin/kubelet', '/opt/bin/kubelet', '/usr/bin/k3s', '/usr/local/bin/k3s'],
  discoveryUids: [0],
  runtimePorts: [2375, 2376, 10250, 10255],
  apiServers: [],
  minSeverity: 'INFO',
  stateDir: '/var/lib/ctrwatch',
};

export class PolicyError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}:${col}: ${reason}`);
    this.name = 'PolicyError';
  }
}

const MAX_POLICY_BYTES = 1 << 20;

export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_POLICY_BYTES) throw new PolicyError(file, 1, 1, `file is ${buf.length} bytes, more than ${MAX_POLICY_BYTES}`);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof PolicyError) throw err;
    throw new PolicyError(file, 1, 1, `cannot read: ${(err as Error).message}`);
  }
  return parsePolicy(text, file);
}

/** The YAML node readers of one policy file: each failure names file:line:column. */
class Reader {
  constructor(
    private readonly lc: LineCounter,
    private readonly file: string,
  ) {}

  fail(node: unknown, reason: string): never {
    const off = (node as Node | null | undefined)?.range?.[0] ?? 0;
    const { line, col } = this.lc.linePos(off);
    throw new PolicyError(this.file, line, col, reason);
  }

  str(n: unknown, what: string): string {
    if (!isScalar(n) || typeof n.value !== 'string') return this.fail(n, `${what} must be a string`);
    return n.value;
  }

  strList(n: unknown, what: string): string[] {
    if (!isSeq(n)) return this.fail(n, `${what} must be a list`);
    return n.items.map((i) => this.str(i, `each entry of ${what}`));
  }

  severity(n: unknown, what: string): Severity {
    const v = this.str(n, what).toUpperCase();
    if (!(SEVERITIES as readonly string[]).includes(v)) return this.fail(n, `${what} must be one of ${SEVERITIES.join(', ')}, not '${v}'`);
    return v as Severity;
  }

  /** A list of whole numbers in [min, max]; `each` names one in the error. */
  intList(n: unknown, what: string, each: string, min: number, max = Number.MAX_SAFE_INTEGER): number[] {
    if (!isSeq(n)) return this.fail(n, what);
    return n.items.map((i) => {
      if (!isScalar(i) || !Number.isInteger(i.value) || (i.value as number) < min || (i.value as number) > max) return this.fail(i, each);
      return i.value as number;
    });
  }
}

export function parsePolicy(text: string, file = 'policy'): Policy {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const { line, col } = lc.linePos(e.pos[0]);
    throw new PolicyError(file, line, col, e.message.split('\n')[0]);
  }
  const rd = new Reader(lc, file);
  const p: Policy = structuredClone(DEFAULT_POLICY);
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return p;
  if (!isMap(root)) return rd.fail(root, 'the policy must be a mapping (key: value lines)');

  for (const pair of root.items) {
    const key = rd.str(pair.key, 'a top-level key');
    const v = pair.value;
    switch (key) {
      case 'rules':
        parseRules(rd, v, p);
        break;
      case 'images':
        if (!isMap(v)) return rd.fail(v, 'images must be a mapping with allow: [patterns]');
        for (const ip of v.items) {
          const ik = rd.str(ip.key, 'an images setting');
          if (ik !== 'allow') return rd.fail(ip.key, `images: unknown setting '${ik}' (allow)`);
          p.imageAllow = rd.strList(ip.value, 'images.allow');
        }
        break;
      case 'trustedCreators':
        p.trustedCreators = rd.strList(v, 'trustedCreators');
        break;
      case 'criClients':
        p.criClients = rd.strList(v, 'criClients');
        for (const [i, c] of p.criClients.entries())
          if (!c.startsWith('/')) rd.fail(isSeq(v) ? v.items[i] : v, `criClients: '${c}' is not an absolute exe path`);
        break;
      case 'discovery':
        parseDiscovery(rd, v, p);
        break;
      case 'kubernetes':
        parseKubernetes(rd, v, p);
        break;
      case 'minSeverity':
        p.minSeverity = rd.severity(v, 'minSeverity');
        break;
      case 'stateDir':
        p.stateDir = rd.str(v, 'stateDir');
        if (!p.stateDir.startsWith('/')) return rd.fail(v, 'stateDir must be an absolute path');
        break;
      default:
        return rd.fail(
          pair.key,
          `unknown key '${key}' (rules, images, trustedCreators, criClients, discovery, kubernetes, minSeverity, stateDir)`,
        );
    }
  }
  return p;
}

/** rules: { id: true|false|{enabled, severity, action} } */
function parseRules(rd: Reader, v: unknown, p: Policy): void {
  if (!isMap(v)) return rd.fail(v, 'rules must be a mapping of rule id to settings');
  for (const rp of v.items) {
    const id = rd.str(rp.key, 'a rule id');
    if (!RULE_BY_ID.has(id)) return rd.fail(rp.key, `unknown rule '${id}' (ctrwatch rules lists them)`);
    const set = rp.value;
    if (isScalar(set) && typeof set.value === 'boolean') {
      p.rules[id] = { enabled: set.value };
      continue;
    }
    if (!isMap(set)) return rd.fail(set, `rule ${id}: give true/false or {enabled, severity, action}`);
    const r: Policy['rules'][string] = { enabled: true };
    for (const sp of set.items) {
      const sk = rd.str(sp.key, 'a rule setting');
      if (sk === 'enabled') {
        if (!isScalar(sp.value) || typeof sp.value.value !== 'boolean')
          return rd.fail(sp.value, `rule ${id}: enabled must be true or false`);
        r.enabled = sp.value.value;
      } else if (sk === 'severity') {
        r.severity = rd.severity(sp.value, `rule ${id}: severity`);
      } else if (sk === 'action') {
        r.action = ruleAction(rd, sp.value, id);
      } else {
        return rd.fail(sp.key, `rule ${id}: unknown setting '${sk}' (enabled, severity, action)`);
      }
    }
    p.rules[id] = r;
  }
}

function ruleAction(rd: Reader, n: unknown, id: string): Action {
  const a = rd.str(n, `rule ${id}: action`);
  if (!(ACTIONS as readonly string[]).includes(a)) return rd.fail(n, `rule ${id}: action must be one of ${ACTIONS.join(', ')}, not '${a}'`);
  if (a !== 'report' && !KILLABLE[id]) return rd.fail(n, `rule ${id} cannot kill; rules that can: ${Object.keys(KILLABLE).join(', ')}`);
  return a as Action;
}

/** discovery: { allowedUids: [uids], runtimePorts: [ports] } */
function parseDiscovery(rd: Reader, v: unknown, p: Policy): void {
  if (!isMap(v)) return rd.fail(v, 'discovery must be a mapping with allowedUids: [uids], runtimePorts: [ports]');
  for (const dp of v.items) {
    const dk = rd.str(dp.key, 'a discovery setting');
    if (dk === 'runtimePorts') {
      p.runtimePorts = rd.intList(
        dp.value,
        'discovery.runtimePorts must be a list of TCP ports',
        'each port must be a whole number from 1 to 65535',
        1,
        65535,
      );
      if (p.runtimePorts.length > 64) return rd.fail(dp.value, `discovery.runtimePorts holds ${p.runtimePorts.length} ports, at most 64`);
    } else if (dk === 'allowedUids') {
      p.discoveryUids = rd.intList(dp.value, 'discovery.allowedUids must be a list of uids', 'each uid must be a whole number ≥ 0', 0);
    } else {
      return rd.fail(dp.key, `discovery: unknown setting '${dk}' (allowedUids, runtimePorts)`);
    }
  }
}

/** Addresses in the kernel's map (bpf/token.bpf.h api_servers: 64 keys, two an IPv4 address) beside the pods' own. */
const API_SERVERS_MAX = 16;

/** kubernetes: { apiServers: ["10.96.0.1:443", "[fd00::1]:6443"] } */
function parseKubernetes(rd: Reader, v: unknown, p: Policy): void {
  if (!isMap(v)) return rd.fail(v, 'kubernetes must be a mapping with apiServers: [address:port]');
  for (const kp of v.items) {
    const kk = rd.str(kp.key, 'a kubernetes setting');
    if (kk !== 'apiServers') return rd.fail(kp.key, `kubernetes: unknown setting '${kk}' (apiServers)`);
    if (!isSeq(kp.value)) return rd.fail(kp.value, 'kubernetes.apiServers must be a list of address:port');
    if (kp.value.items.length > API_SERVERS_MAX)
      return rd.fail(kp.value, `kubernetes.apiServers holds ${kp.value.items.length} addresses, at most ${API_SERVERS_MAX}`);
    p.apiServers = kp.value.items.map((i) => {
      const s = rd.str(i, 'each entry of kubernetes.apiServers');
      try {
        parseApiAddress(s);
      } catch (err) {
        return rd.fail(i, `kubernetes.apiServers: ${(err as Error).message}`);
      }
      return s;
    });
  }
}

/** '*' matches any run of characters; everything else literally. */
export function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(s);
}
