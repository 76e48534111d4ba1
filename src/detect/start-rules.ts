import type { ContainerFacts } from '../container/lifecycle';
import type { EnrichedMeta } from '../container/enrich';
import type { ContainerInput } from '../proto/schema';
import { jobOwnership } from './pod-rules';
import { globMatch, type Policy } from './policy';
import type { Finding, RuleId, Severity } from './types';

/**
 * Rules judged once, when a container starts (or is found running): what it
 * was given. Pure functions of the container's record and the policy.
 */
export interface StartInput {
  c: ContainerFacts;
  k: ContainerInput;
  meta: EnrichedMeta;
  policy: Policy;
}

const RUNTIME_SOCKETS = /(^|\/)(docker|containerd|crio|podman|cri-dockerd|dockershim|buildkitd)\.sock$/;
const BLOCK_DEVICE = /^\/dev\/(sd|vd|xvd|hd|nvme|mmcblk|dm-|mapper\/|md|loop)/;
const SENSITIVE: [RegExp, Severity][] = [
  [/^\/$/, 'CRITICAL'],
  [
    /^\/(proc|sys|etc|root|boot|dev|var\/lib\/kubelet|var\/lib\/docker|var\/lib\/containerd|var\/lib\/containers|var\/run|run)(\/|$)/,
    'HIGH',
  ],
];

function isBind(m: { type?: string; source?: string }): boolean {
  return (m.type === 'bind' || m.type === 'none' || m.type === undefined || m.type === '') && (m.source ?? '').startsWith('/');
}

export function sensitiveMounts(k: ContainerInput): { source: string; destination: string; severity: Severity }[] {
  const out: { source: string; destination: string; severity: Severity }[] = [];
  for (const m of k.mounts ?? []) {
    if (!isBind(m)) continue;
    const src = (m.source ?? '').replace(/\/+$/, '') || '/';
    let sev: Severity | undefined;
    if (RUNTIME_SOCKETS.test(src) || BLOCK_DEVICE.test(src)) sev = 'CRITICAL';
    else
      for (const [re, s] of SENSITIVE)
        if (re.test(src)) {
          sev = s;
          break;
        }
    // /dev/null and friends bound in by every runtime are not host access.
    if (sev && /^\/dev\/(null|zero|full|random|urandom|tty|console|pts|shm|mqueue)(\/|$)/.test(src)) sev = undefined;
    if (sev && /^\/(etc\/(hosts|hostname|resolv\.conf)|proc\/self)/.test(src)) sev = undefined;
    if (sev) out.push({ source: src, destination: m.destination ?? '', severity: sev });
  }
  return out;
}

const HOOK_OWN = (path: string, args: string[]) =>
  // Docker's own network hook: dockerd re-executing itself.
  /^\/proc\/\d+\/exe$/.test(path) && args.includes('libnetwork-setkey');

/** Namespaces a container shares with the host; a nested one only those its outer container does not share already. */
function sharedWithHost(c: ContainerFacts, k: StartInput['k']): string[] {
  const outer = c.outer;
  const key = (n: string) => n.toLowerCase() as keyof ContainerFacts['ns'];
  return (k.hostNamespaces ?? []).filter(
    (n) => ['PID', 'NET', 'IPC', 'UTS', 'MNT'].includes(n) && !(outer && outer.ns[key(n)] === c.ns[key(n)]),
  );
}

export function startRules(i: StartInput): Finding[] {
  const { c, k, meta, policy } = i;
  const f: Finding[] = [];
  const actor = c.entry;
  const add = (ruleId: RuleId, severity: Severity, message: string, attributes?: Record<string, string>) =>
    f.push({ ruleId, severity, message, container: c, actor, attributes });
  const name = `${k.runtime} container ${k.name ?? k.id}`;

  if (k.privileged) add('escape.privileged-container', 'HIGH', `${name} runs privileged`);
  // A nested container shares with the host only what its outer container shares already, or entered it anew.
  const outer = c.outer;
  const shared = sharedWithHost(c, k);
  if (shared.length) {
    const sev: Severity = shared.some((n) => n === 'PID' || n === 'IPC' || n === 'MNT') ? 'HIGH' : 'MEDIUM';
    add('escape.host-namespaces', sev, `${name} shares the host's ${shared.join(', ')} namespace${shared.length > 1 ? 's' : ''}`, {
      namespaces: shared.join(','),
    });
  }
  if (k.user === '0' && (k.hostNamespaces ?? []).includes('USER'))
    add('escape.root-container', 'LOW', `${name} runs as root without a user namespace`);
  // A nested container's mount sources are its outer container's paths, not the host's.
  for (const m of outer ? [] : sensitiveMounts(k)) {
    add('escape.sensitive-mount', m.severity, `${name} has host ${m.source} mounted at ${m.destination}`, {
      source: m.source,
      destination: m.destination,
    });
  }

  if (policy.imageAllow.length && k.image && !policy.imageAllow.some((p) => globMatch(p, k.image!))) {
    add('deploy.image-not-allowed', 'MEDIUM', `${name} started from ${k.image}, which the policy does not allow`, { image: k.image });
  }
  if (k.runtime === 'UNKNOWN' && !outer) {
    // nested: deploy.from-container says it
    const creator = c.creator;
    const trusted =
      creator && policy.trustedCreators.some((t) => t === creator.exe || t === creator.exe.slice(creator.exe.lastIndexOf('/') + 1));
    if (!trusted && !c.existing) {
      add(
        'deploy.unknown-runtime',
        'MEDIUM',
        `${name} was made by ${creator?.exe || creator?.comm || 'an unknown process'}, not a known container runtime`,
        creator ? { creator: creator.exe || creator.comm } : undefined,
      );
    }
  }

  const rp = k.restartPolicy ?? '';
  if (rp === 'always' || rp === 'unless-stopped')
    add('persistence.restart-policy', 'LOW', `${name} restarts ${rp === 'always' ? 'always' : 'unless stopped'}`, { restartPolicy: rp });
  for (const h of meta.oci?.hooks ?? []) {
    if (HOOK_OWN(h.path, h.args)) continue;
    add('persistence.oci-hook', 'MEDIUM', `${name} runs ${h.path} as a ${h.stage} hook`, { stage: h.stage, path: h.path });
  }

  const job = jobOwnership(k);
  if (job) add('orchestration.k8s-job', 'LOW', `${name} belongs to Kubernetes ${job.what}`, job.attributes);
  return f;
}
