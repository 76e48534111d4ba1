import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { ACTIONS, KILLABLE, type Action } from '../contain/catalog';
import { RULE_BY_ID } from './catalog';
import { SEVERITIES, type Severity } from './types';

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

export function parsePolicy(text: string, file = 'policy'): Policy {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const fail = (node: Node | null | undefined, reason: string): never => {
    const off = node?.range?.[0] ?? 0;
    const { line, col } = lc.linePos(off);
    throw new PolicyError(file, line, col, reason);
  };
  if (doc.errors.length) {
    const e = doc.errors[0];
    const { line, col } = lc.linePos(e.pos[0]);
    throw new PolicyError(file, line, col, e.message.split('\n')[0]);
  }
  const p: Policy = structuredClone(DEFAULT_POLICY);
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return p;
  if (!isMap(root)) return fail(root, 'the policy must be a mapping (key: value lines)');

  const str = (n: unknown, what: string): string => {
    if (!isScalar(n) || typeof n.value !== 'string') return fail(n as Node, `${what} must be a string`);
    return n.value;
  };
  const strList = (n: unknown, what: string): string[] => {
    if (!isSeq(n)) return fail(n as Node, `${what} must be a list`);
    return n.items.map((i) => str(i, `each entry of ${what}`));
  };
  const severity = (n: unknown, what: string): Severity => {
    const v = str(n, what).toUpperCase();
    if (!(SEVERITIES as readonly string[]).includes(v))
      return fail(n as Node, `${what} must be one of ${SEVERITIES.join(', ')}, not '${v}'`);
    return v as Severity;
  };

  for (const pair of root.items) {
    const key = str(pair.key, 'a top-level key');
    const v = pair.value;
    switch (key) {
      case 'rules': {
        if (!isMap(v)) return fail(v as Node, 'rules must be a mapping of rule id to settings');
        for (const rp of v.items) {
          const id = str(rp.key, 'a rule id');
          if (!RULE_BY_ID.has(id)) return fail(rp.key as Node, `unknown rule '${id}' (ctrwatch rules lists them)`);
          const set = rp.value;
          if (isScalar(set) && typeof set.value === 'boolean') {
            p.rules[id] = { enabled: set.value };
            continue;
          }
          if (!isMap(set)) return fail(set as Node, `rule ${id}: give true/false or {enabled, severity, action}`);
          const r: Policy['rules'][string] = { enabled: true };
          for (const sp of set.items) {
            const sk = str(sp.key, 'a rule setting');
            if (sk === 'enabled') {
              if (!isScalar(sp.value) || typeof sp.value.value !== 'boolean')
                return fail(sp.value as Node, `rule ${id}: enabled must be true or false`);
              r.enabled = sp.value.value;
            } else if (sk === 'severity') {
              r.severity = severity(sp.value, `rule ${id}: severity`);
            } else if (sk === 'action') {
              const a = str(sp.value, `rule ${id}: action`);
              if (!(ACTIONS as readonly string[]).includes(a))
                return fail(sp.value as Node, `rule ${id}: action must be one of ${ACTIONS.join(', ')}, not '${a}'`);
              if (a !== 'report' && !KILLABLE[id])
                return fail(sp.value as Node, `rule ${id} cannot kill; rules that can: ${Object.keys(KILLABLE).join(', ')}`);
              r.action = a as Action;
            } else {
              return fail(sp.key as Node, `rule ${id}: unknown setting '${sk}' (enabled, severity, action)`);
            }
          }
          p.rules[id] = r;
        }
        break;
      }
      case 'images': {
        if (!isMap(v)) return fail(v as Node, 'images must be a mapping with allow: [patterns]');
        for (const ip of v.items) {
          const ik = str(ip.key, 'an images setting');
          if (ik !== 'allow') return fail(ip.key as Node, `images: unknown setting '${ik}' (allow)`);
          p.imageAllow = strList(ip.value, 'images.allow');
        }
        break;
      }
      case 'trustedCreators':
        p.trustedCreators = strList(v, 'trustedCreators');
        break;
      case 'criClients':
        p.criClients = strList(v, 'criClients');
        for (const [i, c] of p.criClients.entries())
          if (!c.startsWith('/')) fail(isSeq(v) ? (v.items[i] as Node) : (v as Node), `criClients: '${c}' is not an absolute exe path`);
        break;
      case 'discovery': {
        if (!isMap(v)) return fail(v as Node, 'discovery must be a mapping with allowedUids: [uids], runtimePorts: [ports]');
        for (const dp of v.items) {
          const dk = str(dp.key, 'a discovery setting');
          if (dk === 'runtimePorts') {
            if (!isSeq(dp.value)) return fail(dp.value as Node, 'discovery.runtimePorts must be a list of TCP ports');
            p.runtimePorts = dp.value.items.map((i) => {
              if (!isScalar(i) || !Number.isInteger(i.value) || (i.value as number) < 1 || (i.value as number) > 65535)
                return fail(i as Node, 'each port must be a whole number from 1 to 65535');
              return i.value as number;
            });
            if (p.runtimePorts.length > 64)
              return fail(dp.value as Node, `discovery.runtimePorts holds ${p.runtimePorts.length} ports, at most 64`);
            continue;
          }
          if (dk !== 'allowedUids') return fail(dp.key as Node, `discovery: unknown setting '${dk}' (allowedUids, runtimePorts)`);
          if (!isSeq(dp.value)) return fail(dp.value as Node, 'discovery.allowedUids must be a list of uids');
          p.discoveryUids = dp.value.items.map((i) => {
            if (!isScalar(i) || !Number.isInteger(i.value) || (i.value as number) < 0)
              return fail(i as Node, 'each uid must be a whole number ≥ 0');
            return i.value as number;
          });
        }
        break;
      }
      case 'minSeverity':
        p.minSeverity = severity(v, 'minSeverity');
        break;
      case 'stateDir':
        p.stateDir = str(v, 'stateDir');
        if (!p.stateDir.startsWith('/')) return fail(v as Node, 'stateDir must be an absolute path');
        break;
      default:
        return fail(
          pair.key as Node,
          `unknown key '${key}' (rules, images, trustedCreators, criClients, discovery, minSeverity, stateDir)`,
        );
    }
  }
  return p;
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
