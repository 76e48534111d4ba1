import { readlinkSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Logger } from 'pino';
import type { Namespaces } from '../decode/records';
import { containerFromCgroupPath, type CgroupParseOptions } from '../meta/cgroup-path';
import { formatRestartPolicy, readDockerContainer } from '../meta/docker';
import { readOciConfig, readOciConfigUnder, type OciConfigSummary, type OciHook } from '../meta/oci-config';
import { readPodmanContainer } from '../meta/podman';
import type { ContainerInput, RuntimeName } from '../proto/schema';
import { encodeOnce } from '../proto/codec-encode';
import type { ProcessTable } from '../process/table';
import { nsInode } from '../host';
import { capNames } from './caps';
import { nodeCgroupLookups } from './cgroup-lookups';
import { podOf } from './pod-enrich';
import { ContainerdPodStore, type PodLabelSource } from './pod-store';
import type { CgroupRegistry } from './cgroups';
import { hostNamespacesShared, type ContainerFacts } from './lifecycle';
import { basename } from './runtime-cli';
import { findRuntimeState } from './state-scan';

/**
 * Metadata of a container, read from the host's files at create time (a
 * container that lives 5 ms still gets it): the OCI bundle's config.json,
 * Docker's config.v2.json/hostconfig.json, Podman's storage. A file that is
 * missing, hostile or unreadable costs that part of the metadata and a logged
 * reason, never the record. Kernel facts (namespaces, capabilities, user) win
 * over what files claim.
 */
export interface EnrichedMeta {
  container: ContainerInput;
  /** What the rules need of the bundle's config.json, kept per container (the rest is dropped: memory). */
  oci?: { privileged: boolean; hooks: OciHook[]; kubernetesService?: OciConfigSummary['kubernetesService'] };
  /** Why some metadata is missing. */
  problems: string[];
}

/** Label set when the container's id was taken by another live container: the id it claimed. */
export const DUPLICATE_ID_LABEL = 'ctrwatch.io/duplicate-id';
/** Label set on a container made inside another one: the outer container's id. */
export const OUTER_LABEL = 'ctrwatch.io/made-in';
const OWN_LABEL_PREFIX = 'ctrwatch.io/';
/** Containers whose withEntry answer is kept (the ones events are about now). */
const ENTRIES_MAX = 1024;

const DOCKER_DEFAULT = { dataRoot: '/var/lib/docker', execRoot: '/var/run/docker' };
const PODMAN_USERDATA = /^(.*)\/([a-z0-9]+)-containers\/([0-9a-f]{64})\/userdata\/?$/;

function flagValue(argv: string[], name: string): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === name) return argv[i + 1];
    if (argv[i].startsWith(`${name}=`)) return argv[i].slice(name.length + 1);
  }
  return undefined;
}

export class Enricher {
  private readonly log: Logger;
  /** Ids given out, and to whom: no id is held by two live containers. */
  private readonly ids = new Map<string, ContainerFacts>();
  /** Size at which exited holders are next swept out of `ids` (doubles: amortised O(1) a container). */
  private idsSweepAt = 4096;
  /** Containers whose metadata came out incomplete (sensorStats enrichFailures). */
  failures = 0;
  /** withEntry's last answer for the containers most recently asked about, and what it was made from (bounded: memory). */
  private readonly entries = new Map<ContainerFacts, { from: unknown[]; out: ContainerInput }>();

  constructor(
    private readonly procs: ProcessTable,
    private readonly host: Namespaces,
    private readonly cgroups: CgroupRegistry,
    logger: Logger,
    /** What the node's state dirs know, for naming a container by its cgroup path alone. */
    private readonly cgroupLookups: () => CgroupParseOptions = nodeCgroupLookups,
    /** Pods' labels and annotations (containerd's metadata store). */
    private readonly podLabels: PodLabelSource = new ContainerdPodStore(undefined, undefined, undefined, undefined, (pid) =>
      procs.inOtherMountNs(pid, host.mnt),
    ),
  ) {
    this.log = logger.child({ component: 'enrich' });
  }

  private isHostNs = (type: string, path: string): boolean => {
    const m = /^\/proc\/(\d+|self)\/ns\/(\w+)$/.exec(path);
    if (!m) return false;
    try {
      const kind = type === 'network' ? 'net' : type === 'mount' ? 'mnt' : type;
      return nsInode(m[1], m[2]) === this.host[kind as keyof Namespaces];
    } catch {
      return false;
    }
  };

  /** Docker's data root: the dockerd whose exec root holds the bundle, else the default. */
  private dockerRoots(bundle?: string): { dataRoot: string; execRoot: string } {
    for (const p of this.procs.values()) {
      if (basename(p.argv[0] ?? '') !== 'dockerd' || p.exitedAt !== undefined) continue;
      const execRoot = flagValue(p.argv, '--exec-root') ?? DOCKER_DEFAULT.execRoot;
      const dataRoot = flagValue(p.argv, '--data-root') ?? flagValue(p.argv, '-g') ?? DOCKER_DEFAULT.dataRoot;
      if (!bundle || bundle.startsWith(`${execRoot}/`)) return { dataRoot, execRoot };
    }
    return DOCKER_DEFAULT;
  }

  /** A relative --bundle is relative to the runtime process's working directory. */
  private absoluteBundle(bundle: string | undefined, pid: number | undefined): string | undefined {
    if (!bundle || isAbsolute(bundle)) return bundle;
    if (pid === undefined) return undefined;
    try {
      return join(readlinkSync(`/proc/${pid}/cwd`), bundle);
    } catch {
      return undefined;
    }
  }

  /**
   * A container made inside another one: what its runtime's command line names
   * (bundle, id) is the outer container's view, never the host's. The bundle is
   * read under the runtime process's own root (or working directory), the id is
   * put under the outer container's, and no host store (runtime state, Docker,
   * Podman, cgroup names) is asked about it.
   */
  private enrichNested(
    c: ContainerFacts,
    outer: ContainerFacts,
    problems: string[],
  ): { id: string; runtime: RuntimeName; bundle?: string; oci?: OciConfigSummary } {
    const rc = c.runtimeCall;
    const outerId = this.idOf(outer);
    const runtime: RuntimeName = rc ? (rc.runtime === 'crun' ? 'CRUN' : 'RUNC') : 'UNKNOWN';
    const own = rc?.id ?? c.manager?.id ?? `mntns-${c.key}-${c.initTgid}`;
    const id = `${outerId}/${own}`;
    const bundle = rc ? (rc.bundle ?? '.') : undefined;
    let oci: OciConfigSummary | undefined;
    if (rc && bundle !== undefined) {
      const root = isAbsolute(bundle) ? `/proc/${rc.pid}/root` : `/proc/${rc.pid}/cwd`;
      try {
        oci = readOciConfigUnder(root, bundle, { isHostNamespace: () => false });
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    return { id, runtime, bundle, oci };
  }

  /**
   * containerd's shim serves every container of a pod under the sandbox's id, from the
   * sandbox's bundle: for a container found running, the runtime's state, found by the init's
   * pid, names the container itself.
   */
  private ownOfShim(c: ContainerFacts, id?: string, bundle?: string): { id?: string; bundle?: string } {
    const st = findRuntimeState(c.initTgid, this.dockerRoots().execRoot);
    return st ? { id: st.id, bundle: st.bundle ?? bundle } : { id, bundle };
  }

  /** The id a container was given, enriching it on the way when it was not yet. */
  private idOf(c: ContainerFacts): string {
    if (!c.meta) c.meta = this.enrich(c);
    return (c.meta as EnrichedMeta).container.id ?? `mntns-${c.key}-${c.initTgid}`;
  }

  /** id, or a distinct one when a live container other than c holds it already. */
  private unique(id: string, c: ContainerFacts): { id: string; claimed?: string } {
    if (this.ids.size > this.idsSweepAt) {
      for (const [k, v] of this.ids) if (v.status === 'exited') this.ids.delete(k);
      this.idsSweepAt = Math.max(4096, 2 * this.ids.size);
    }
    let out = id;
    for (let n = 0; ; n++) {
      const holder = this.ids.get(out);
      if (!holder || holder === c || holder.status === 'exited') break;
      // Stable for this container: its mount namespace and init, which no other live container has.
      out = `${id}~${c.key}-${c.initTgid}${n ? `-${n}` : ''}`;
    }
    this.ids.set(out, c);
    return out === id ? { id } : { id: out, claimed: id };
  }

  enrich(c: ContainerFacts): EnrichedMeta {
    const problems: string[] = [];
    if (c.outer) return settled(this.finish(c, this.enrichNested(c, c.outer, problems), problems));
    const rc = c.runtimeCall;
    const mgr = c.manager;
    const cgroupPath = this.cgroups.path(c.cgroupId) ?? this.cgroups.pathOfPid(c.initTgid);
    const cgRef = cgroupPath ? containerFromCgroupPath(cgroupPath) : undefined;

    let bundle = this.absoluteBundle(rc?.bundle ?? (rc ? '.' : undefined), rc?.pid) ?? mgr?.bundle;
    let id = rc?.id ?? mgr?.id;
    let runtime: RuntimeName | undefined = mgr?.runtime ?? (rc ? (rc.runtime === 'crun' ? 'CRUN' : 'RUNC') : undefined);
    if (c.existing && !rc && mgr?.kind === 'containerd-shim') ({ id, bundle } = this.ownOfShim(c, id, bundle));
    if ((!bundle || !id) && c.existing) {
      // Found by the scan: the runtime's state names it (runc/crun/containerd/docker state dirs).
      const st = findRuntimeState(c.initTgid, this.dockerRoots().execRoot);
      if (st) {
        id ??= st.id;
        bundle ??= st.bundle;
        runtime ??= st.runtime;
      }
    }
    // Failing the runtime's word, the cgroup path; with what the node's state dirs know when the
    // path alone does not say (ctr's /<ns>/<id>, a systemd scope with a prefix the user chose).
    const byPath = (!id || !runtime) && cgroupPath && !cgRef ? containerFromCgroupPath(cgroupPath, this.cgroupLookups()) : cgRef;
    if (!id && byPath) id = byPath.id;
    if (!runtime && byPath) runtime = byPath.runtime;
    runtime ??= 'UNKNOWN';
    // Last resort: the mount namespace (inode numbers are reused) and the init's pid.
    id ??= `mntns-${c.key}-${c.initTgid}`;

    let oci: OciConfigSummary | undefined;
    if (bundle) {
      try {
        oci = readOciConfig(bundle, { isHostNamespace: (t, p) => this.isHostNs(t, p) });
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    const meta = this.finish(c, { id, runtime, bundle, oci, cgroupPath, podUid: cgRef?.podUid }, problems);
    const out = meta.container;
    const pod = oci && out.id === id ? podOf(oci, id, bundle, this.podLabels, problems) : undefined;
    if (pod) out.pod = pod;

    // A duplicate (out.id !== id): the stores hold the other container's metadata under that id.
    if (out.id === id) this.fromEngine(out, runtime, bundle, problems);
    out.name ??= out.id;
    if (problems.length) {
      this.failures++;
      this.log.warn({ container: out.id, runtime, problems }, 'container metadata incomplete');
    }
    return settled(meta);
  }

  /** What Docker's or Podman's own store says of the container (name, image, labels, restart policy). */
  private fromEngine(out: ContainerInput, runtime: RuntimeName, bundle: string | undefined, problems: string[]): void {
    const id = out.id!;
    if (runtime === 'DOCKER') {
      const roots = this.dockerRoots(bundle);
      try {
        const d = readDockerContainer(roots.dataRoot, id);
        out.name = d.name;
        out.image = d.image;
        if (d.imageId) out.imageDigest = d.imageId;
        out.labels = {
          ...(out.labels ?? {}),
          ...Object.fromEntries(Object.entries(d.labels).filter(([k]) => !k.startsWith(OWN_LABEL_PREFIX))),
        };
        out.restartPolicy = formatRestartPolicy(d.restartPolicy);
        out.privileged = d.privileged || (out.privileged ?? false);
      } catch (err) {
        problems.push((err as Error).message);
      }
      return;
    }
    const m = runtime === 'PODMAN' && bundle ? PODMAN_USERDATA.exec(bundle) : null;
    if (!m) return;
    try {
      const pm = readPodmanContainer(m[1], m[3], m[2]);
      out.name = pm.name;
      if (pm.imageName) out.image = pm.imageName;
      if (pm.imageDigest) out.imageDigest = pm.imageDigest;
    } catch (err) {
      problems.push((err as Error).message);
    }
  }

  /** The record from what was found: a unique id, the bundle's config, marks of nesting and duplicates. */
  private finish(
    c: ContainerFacts,
    f: { id: string; runtime: RuntimeName; bundle?: string; oci?: OciConfigSummary; cgroupPath?: string; podUid?: string },
    problems: string[],
  ): EnrichedMeta {
    const { id, claimed } = this.unique(f.id, c);
    const out: ContainerInput = {
      id,
      runtime: f.runtime,
      initPid: c.initTgid,
      hostNamespaces: sharedList(hostNamespacesShared(c.ns, this.host)),
      existing: c.existing,
      cgroupId: c.cgroupId,
    };
    if (f.cgroupPath) out.cgroupPath = f.cgroupPath;
    if (f.bundle) out.bundle = f.bundle;
    if (f.podUid) out.podUid = f.podUid;
    const oci = f.oci;
    if (oci) {
      out.mounts = sharedList(oci.mounts.map(sharedMount));
      const labels = Object.entries(oci.annotations).filter(([k]) => !k.startsWith(OWN_LABEL_PREFIX));
      out.labels = labels.length ? Object.fromEntries(labels) : NO_LABELS;
      out.privileged = oci.privileged;
      if (oci.cri.imageName) out.image = oci.cri.imageName;
      if (oci.cri.podName) out.podName = oci.cri.podName;
      if (oci.cri.podNamespace) out.podNamespace = oci.cri.podNamespace;
      if (oci.cri.podUid) out.podUid = oci.cri.podUid;
      if (oci.cri.containerName) out.name = oci.cri.containerName;
      if (oci.trimmed.length) problems.push(`config.json trimmed: ${oci.trimmed.join(', ')}`);
    }
    if (claimed) {
      out.labels = { ...(out.labels ?? {}), [DUPLICATE_ID_LABEL]: claimed };
      problems.push(`id ${claimed} is held by another live container: reported as ${id}`);
    }
    if (c.outer) {
      out.labels = { ...(out.labels ?? {}), [OUTER_LABEL]: this.idOf(c.outer) };
      // Its own config is the outer container's word: privilege is the kernel's (see withEntry).
      delete out.privileged;
      out.name ??= id;
      if (problems.length) this.log.warn({ container: id, runtime: f.runtime, problems }, 'container metadata incomplete');
    }
    // A nested runtime runs its hooks inside the outer container, not on the host.
    return {
      container: out,
      oci: oci && {
        privileged: c.outer ? false : oci.privileged,
        hooks: c.outer || !oci.hooks.length ? NO_HOOKS : oci.hooks,
        kubernetesService: oci.kubernetesService,
      },
      problems,
    };
  }

  /**
   * Facts only the entry process has: the user and the capabilities it really runs with. The
   * same object while none of its inputs changed, frozen and marked to be encoded once: every
   * event about the container carries the same bytes for it.
   */
  withEntry(meta: EnrichedMeta, c: ContainerFacts): ContainerInput {
    const p = c.entry;
    const cgroupPath = this.cgroups.path(c.cgroupId);
    const from = [meta, c.initTgid, c.ns, c.cgroupId, c.outer, p, p?.uid, p?.capEffective, p?.ns.user, cgroupPath];
    const last = this.entries.get(c);
    if (last && last.from.every((x, i) => x === from[i])) return last.out;
    const out = encodeOnce(this.entryOf(meta, c, cgroupPath));
    if (!last && this.entries.size >= ENTRIES_MAX) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(c, { from, out });
    return out;
  }

  private entryOf(meta: EnrichedMeta, c: ContainerFacts, cgroupPath: string | undefined): ContainerInput {
    const p = c.entry;
    const out = {
      ...meta.container,
      initPid: c.initTgid,
      hostNamespaces: sharedList(hostNamespacesShared(c.ns, this.host)),
      cgroupId: c.cgroupId,
    };
    if (p) {
      out.user = String(p.uid);
      out.capabilities = capNames(p.capEffective);
      // Capabilities count on the host only in the host's user namespace.
      const full = isFullCaps(p.capEffective) && p.ns.user === this.host.user;
      if (out.privileged === undefined) out.privileged = meta.oci && !c.outer ? meta.oci.privileged : full;
    }
    if (cgroupPath) out.cgroupPath = cgroupPath;
    return out;
  }
}

/**
 * What most containers of a node have alike, one frozen copy each (kept per container, these
 * were about 0.25 KiB of each container's heap in a snapshot at 10,000 containers): no problems,
 * no hooks, no labels, and the lists of host namespaces and of mounts, whose members are shared
 * already. Bounded: cleared when full.
 */
const NO_PROBLEMS: string[] = Object.freeze([]) as unknown as string[];
const NO_HOOKS: OciHook[] = Object.freeze([]) as unknown as OciHook[];
const NO_LABELS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const LISTS_MAX = 4096;
const lists = new Map<string, readonly unknown[]>();
const listIds = new WeakMap<object, number>();
let nextListId = 0;

/** Its metadata once complete: no problems share one empty list. */
function settled(meta: EnrichedMeta): EnrichedMeta {
  if (!meta.problems.length) meta.problems = NO_PROBLEMS;
  return meta;
}

/** One frozen copy of a list of strings or of shared (frozen) objects, by its members. */
function sharedList<T>(items: T[]): T[] {
  let key = '';
  for (const x of items) {
    if (typeof x === 'object' && x !== null) {
      let id = listIds.get(x);
      if (id === undefined) listIds.set(x, (id = nextListId++));
      key += `\0o${id}`;
    } else key += `\0s${String(x)}`;
  }
  let v = lists.get(key);
  if (!v) {
    if (lists.size >= LISTS_MAX) lists.clear();
    v = Object.freeze(items);
    lists.set(key, v);
  }
  return v as T[];
}

/** Without a config to say otherwise: every capability the host grants (root's full set minus none). */
function isFullCaps(mask: bigint): boolean {
  return capNames(mask).length >= 38;
}

/**
 * Mounts as events carry them, one frozen copy of each distinct one: most of a container's
 * mounts (/proc, /dev, /sys, cgroups, mqueue) are the same in every container of a node.
 * Bounded: cleared when full.
 */
const MOUNTS_MAX = 4096;
const mounts = new Map<string, NonNullable<ContainerInput['mounts']>[number]>();

function sharedMount(m: {
  source: string;
  destination: string;
  readOnly: boolean;
  type: string;
}): NonNullable<ContainerInput['mounts']>[number] {
  const key = `${m.source}\0${m.destination}\0${m.readOnly ? 1 : 0}\0${m.type}`;
  let v = mounts.get(key);
  if (!v) {
    if (mounts.size >= MOUNTS_MAX) mounts.clear();
    v = Object.freeze({ source: m.source, destination: m.destination, readOnly: m.readOnly, type: m.type });
    mounts.set(key, v);
  }
  return v;
}
