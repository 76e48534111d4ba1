import type { ContainerInput } from './proto/schema';
import { loadEventSchema } from './proto/schema';
import { alignRows, cut, hostNsColumn } from './ps';

/** `ctrwatch ps --pods`: the running containers grouped by their Kubernetes pod. */
export interface PodGroup {
  namespace: string;
  name: string;
  uid: string;
  sandboxId: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** The sandbox first, then the workloads by name. */
  containers: ContainerInput[];
}

/** Pods (by sandbox id, else uid) in namespace/name order, and the containers of no pod. */
export function groupByPod(cs: ContainerInput[]): { pods: PodGroup[]; others: ContainerInput[] } {
  const pods = new Map<string, PodGroup>();
  const others: ContainerInput[] = [];
  for (const c of cs) {
    const p = c.pod;
    const key = p?.sandboxId || p?.uid;
    if (!p || !key) {
      others.push(c);
      continue;
    }
    let g = pods.get(key);
    if (!g) {
      g = { namespace: '', name: '', uid: '', sandboxId: p.sandboxId ?? '', labels: {}, annotations: {}, containers: [] };
      pods.set(key, g);
    }
    // The sandbox's own record names the pod; a workload's fills in what is still missing.
    if (p.sandbox || !g.name) {
      g.namespace = p.namespace ?? g.namespace;
      g.name = p.name ?? g.name;
      g.uid = p.uid ?? g.uid;
      if (p.labels) g.labels = p.labels;
      if (p.annotations) g.annotations = p.annotations;
    }
    g.containers.push(c);
  }
  const rank = (c: ContainerInput) => (c.pod?.sandbox ? '' : `~${c.pod?.containerName ?? c.name ?? ''}`);
  for (const g of pods.values()) g.containers.sort((a, b) => rank(a).localeCompare(rank(b)));
  const list = [...pods.values()].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return { pods: list, others };
}

export function formatPodTable(cs: ContainerInput[]): string {
  const { pods, others } = groupByPod(cs);
  const rows = [['NAMESPACE', 'POD', 'CONTAINER', 'ROLE', 'CONTAINER ID', 'IMAGE', 'PID', 'PRIVILEGED', 'HOST NS']];
  const row = (c: ContainerInput, ns: string, pod: string, role: string) =>
    rows.push([
      cut(ns, 20),
      cut(pod, 32),
      cut(c.pod?.containerName ?? (c.pod?.sandbox ? '' : c.name), 24),
      role,
      cut(c.id, 16),
      cut(c.image, 32),
      String(c.initPid ?? '-'),
      c.privileged ? 'yes' : 'no',
      hostNsColumn(c),
    ]);
  for (const g of pods) for (const c of g.containers) row(c, g.namespace, g.name, c.pod?.sandbox ? 'sandbox' : 'workload');
  for (const c of others) row(c, '', '', 'no pod');
  return alignRows(rows);
}

/** One pod a line: its identity, labels, annotations and its containers in canonical JSON. */
export function formatPodJson(cs: ContainerInput[]): string {
  const schema = loadEventSchema();
  const canon = (c: ContainerInput) =>
    (schema.toCanonical({ containerStarted: { container: c } }) as { containerStarted: { container: unknown } }).containerStarted.container;
  const { pods } = groupByPod(cs);
  return pods.map((g) => JSON.stringify({ ...g, containers: g.containers.map(canon) })).join('\n');
}
