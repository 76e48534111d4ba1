// Which runtime made a cgroup, and the runtime's own container id, from the cgroup's path alone.
//
// Input is a path relative to a hierarchy's root as the kernel shows it (a line of
// /proc/<pid>/cgroup, v1 or v2, or a cgroup_mkdir path). Layouts recognised, one component at a
// time, outermost first (a container's processes may make sub-cgroups, and a runtime nested in a
// container has no files on the host, so the outermost match is the host runtime's container):
//   docker (cgroupfs)            /docker/<64hex>
//   docker (systemd)             /system.slice/docker-<64hex>.scope
//   containerd CRI (systemd)     .../cri-containerd-<64hex>.scope
//   containerd (ctr, cgroupfs)   /<namespace>/<id>          only for namespaces the caller names
//   CRI-O                        .../crio-<64hex>.scope, .../crio-<64hex>;  crio-conmon-* is conmon
//   podman (cgroupfs)            /libpod_parent/libpod-<64hex>;             /libpod_parent/conmon
//   podman (systemd)             .../libpod-<64hex>.scope;                  libpod-conmon-* is conmon
//   kubelet (systemd)            /kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/<ctr>
//   kubelet (cgroupfs)           /kubepods/<qos>/pod<uid>/<64hex>   (runtime not in the path: UNKNOWN)
//   runc / crun default          /<id> (v1 controllers other than the caller's may nest it under the
//                                caller's own cgroup) only for ids the caller names (state dir, argv)
//   systemd driver, any prefix   .../<prefix>-<id>.scope  from a "slice:prefix:name" cgroupsPath (ctr
//                                --runc-systemd-cgroup --cgroup system.slice:ctr:<id>, runc
//                                --systemd-cgroup): only for ids the caller knows as a containerd
//                                task (namespace moby is Docker's) or a runc/crun container
//   crun under systemd           .../libpod-<64hex>.scope/container: crun runs the container in a
//                                sub-cgroup of the scope; the outermost match names it
// Anything else gives undefined: we do not guess.

export type RuntimeKind = 'DOCKER' | 'CONTAINERD' | 'CRIO' | 'PODMAN' | 'RUNC' | 'CRUN' | 'UNKNOWN';

export interface CgroupContainerRef {
  runtime: RuntimeKind;
  /** The runtime's own container id (docker/podman/CRI: 64 hex; ctr, runc, crun: the name given). */
  id: string;
  /** Kubernetes pod uid (with dashes) when the path is under a kubepods hierarchy. */
  podUid?: string;
}

export interface CgroupParseOptions {
  /** containerd namespaces known on the node (e.g. the directories of <state>/io.containerd.runtime.v2.task). */
  containerdNamespaces?: Iterable<string>;
  /** Tells whether an id is a runc or crun container known on the node (from /run/runc, /run/crun or `runc create <id>`). */
  ociRuntimeOf?: (id: string) => 'RUNC' | 'CRUN' | undefined;
  /** The containerd namespace that holds a task with this id (from <state>/io.containerd.runtime.v2.task/<ns>/<id>), if any. */
  containerdIdOf?: (id: string) => string | undefined;
}

const HEX64 = '[0-9a-f]{64}';
const SCOPED: ReadonlyArray<[RegExp, RuntimeKind | 'NOT_A_CONTAINER']> = [
  [new RegExp(`^docker-(${HEX64})\\.scope$`), 'DOCKER'],
  [new RegExp(`^cri-containerd-(${HEX64})\\.scope$`), 'CONTAINERD'],
  [new RegExp(`^crio-conmon-(${HEX64})\\.scope$`), 'NOT_A_CONTAINER'],
  [new RegExp(`^crio-(${HEX64})(?:\\.scope)?$`), 'CRIO'],
  [new RegExp(`^libpod-conmon-(${HEX64})\\.scope$`), 'NOT_A_CONTAINER'],
  [new RegExp(`^libpod-(${HEX64})(?:\\.scope)?$`), 'PODMAN'],
];
const BARE_ID = new RegExp(`^${HEX64}$`);
// kubepods-pod<uid>.slice, kubepods-burstable-pod<uid>.slice, kubepods-besteffort-pod<uid>.slice;
// systemd slice names cannot hold '-' inside a component, so the uid's dashes become '_'.
const POD_SLICE = /^kubepods(?:-[a-z]+)?-pod([0-9a-f_]{36})\.slice$/;
const POD_DIR = /^pod([0-9a-f-]{36})$/;
// runc's container id rule (libcontainer: ^[\w+-\.]+$), which also keeps it one path component.
const OCI_ID = /^[\w+.-]+$/;

/**
 * A systemd scope named by the systemd cgroup driver from "slice:prefix:name": `<prefix>-<name>.scope`.
 * The prefix is the caller's choice and both parts may hold '-', so every split is tried, longest
 * name first, and only a name the node knows as a container is taken.
 */
function knownScope(c: string, opts: CgroupParseOptions): CgroupContainerRef | undefined {
  if (!c.endsWith('.scope') || (!opts.containerdIdOf && !opts.ociRuntimeOf)) return undefined;
  const unit = c.slice(0, -'.scope'.length);
  for (let i = unit.indexOf('-'); i > 0; i = unit.indexOf('-', i + 1)) {
    const id = unit.slice(i + 1);
    if (!OCI_ID.test(id) || id === '.' || id === '..') continue;
    const ns = opts.containerdIdOf?.(id);
    if (ns) return { runtime: ns === 'moby' ? 'DOCKER' : 'CONTAINERD', id };
    const oci = opts.ociRuntimeOf?.(id);
    if (oci) return { runtime: oci, id };
  }
  return undefined;
}

/** Split a cgroup path into its components; '', '.' and '..' components are dropped or refused. */
function splitCgroupPath(cgPath: string): string[] | undefined {
  const parts = cgPath.split('/').filter((p) => p !== '' && p !== '.');
  return parts.some((p) => p === '..') ? undefined : parts;
}

/** The container a cgroup path belongs to, or undefined when the path does not say (or is conmon's). */
export function containerFromCgroupPath(cgPath: string, opts: CgroupParseOptions = {}): CgroupContainerRef | undefined {
  const parts = splitCgroupPath(cgPath);
  if (!parts || parts.length === 0) return undefined;
  let podUid: string | undefined;
  let underKubepods = false;
  const withPod = (ref: CgroupContainerRef): CgroupContainerRef => (podUid ? { ...ref, podUid } : ref);

  const namespaces = opts.containerdNamespaces ? new Set(opts.containerdNamespaces) : undefined;
  if (namespaces && parts.length >= 2 && namespaces.has(parts[0]) && OCI_ID.test(parts[1])) return { runtime: 'CONTAINERD', id: parts[1] };

  for (let i = 0; i < parts.length; i++) {
    const c = parts[i];
    if (c === 'kubepods' || c === 'kubepods.slice') underKubepods = true;
    const slice = POD_SLICE.exec(c);
    if (slice) {
      podUid = slice[1].replace(/_/g, '-');
      continue;
    }
    const dir = underKubepods ? POD_DIR.exec(c) : null;
    if (dir) {
      podUid = dir[1];
      continue;
    }
    for (const [re, kind] of SCOPED) {
      const m = re.exec(c);
      if (!m) continue;
      if (kind === 'NOT_A_CONTAINER') return undefined;
      return withPod({ runtime: kind, id: m[1] });
    }
    const scoped = knownScope(c, opts);
    if (scoped) return withPod(scoped);
    if (c === 'conmon' && i > 0 && parts[i - 1] === 'libpod_parent') return undefined;
    if (BARE_ID.test(c)) {
      if (i > 0 && parts[i - 1] === 'docker') return withPod({ runtime: 'DOCKER', id: c });
      // kubelet's cgroupfs layout (and docker --cgroup-parent) name no runtime.
      return withPod({ runtime: 'UNKNOWN', id: c });
    }
    const oci = opts.ociRuntimeOf && OCI_ID.test(c) ? opts.ociRuntimeOf(c) : undefined;
    if (oci) return withPod({ runtime: oci, id: c });
  }
  return undefined;
}

export interface ProcCgroupLine {
  /** 0 for the cgroup2 (unified) hierarchy. */
  hierarchyId: number;
  /** v1 controllers ("memory", "name=systemd"); empty for cgroup2. */
  controllers: string[];
  path: string;
}

/** Parse /proc/<pid>/cgroup ("hierarchy-ID:controller-list:cgroup-path" lines). Bad lines are skipped. */
export function parseProcCgroup(text: string): ProcCgroupLine[] {
  const out: ProcCgroupLine[] = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const id = Number(line.slice(0, a));
    if (!Number.isInteger(id) || id < 0) continue;
    const ctl = line.slice(a + 1, b);
    out.push({ hierarchyId: id, controllers: ctl === '' ? [] : ctl.split(','), path: line.slice(b + 1) });
  }
  return out;
}

/** Order in which hierarchies are asked: cgroup2 first, then name=systemd, then the rest as listed. */
function rank(l: ProcCgroupLine): number {
  if (l.hierarchyId === 0) return 0;
  if (l.controllers.includes('name=systemd')) return 1;
  return 2;
}

/**
 * The container of a process from its /proc/<pid>/cgroup text: the first hierarchy (cgroup2,
 * then name=systemd, then v1 controllers) whose path names one. `cgroupPath` is that path.
 */
export function containerFromProcCgroup(
  text: string,
  opts: CgroupParseOptions = {},
): (CgroupContainerRef & { cgroupPath: string }) | undefined {
  const lines = parseProcCgroup(text).sort((x, y) => rank(x) - rank(y));
  for (const l of lines) {
    const ref = containerFromCgroupPath(l.path, opts);
    if (ref) return { ...ref, cgroupPath: l.path };
  }
  return undefined;
}
