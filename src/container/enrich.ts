import { readlinkSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Logger } from 'pino';
import type { Namespaces } from '../decode/records';
import { containerFromCgroupPath, type CgroupParseOptions } from '../meta/cgroup-path';
import { formatRestartPolicy, readDockerContainer } from '../meta/docker';
import { readOciConfig, type OciConfigSummary, type OciHook } from '../meta/oci-config';
import { readPodmanContainer } from '../meta/podman';
import type { ContainerInput, RuntimeName } from '../proto/schema';
import type { ProcessTable } from '../process/table';
import { nsInode } from '../host';
import { capNames } from './caps';
import { nodeCgroupLookups } from './cgroup-lookups';
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
  oci?: { privileged: boolean; hooks: OciHook[] };
  /** Why some metadata is missing. */
  problems: string[];
}

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

  constructor(
    private readonly procs: ProcessTable,
    private readonly host: Namespaces,
    private readonly cgroups: CgroupRegistry,
    logger: Logger,
    /** What the node's state dirs know, for naming a container by its cgroup path alone. */
    private readonly cgroupLookups: () => CgroupParseOptions = nodeCgroupLookups,
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

  enrich(c: ContainerFacts): EnrichedMeta {
    const problems: string[] = [];
    const rc = c.runtimeCall;
    const mgr = c.manager;
    const cgroupPath = this.cgroups.path(c.cgroupId) ?? this.cgroups.pathOfPid(c.initTgid);
    const cgRef = cgroupPath ? containerFromCgroupPath(cgroupPath) : undefined;

    let bundle = this.absoluteBundle(rc?.bundle ?? (rc ? '.' : undefined), rc?.pid) ?? mgr?.bundle;
    let id = rc?.id ?? mgr?.id;
    let runtime: RuntimeName | undefined = mgr?.runtime ?? (rc ? (rc.runtime === 'crun' ? 'CRUN' : 'RUNC') : undefined);
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

    const out: ContainerInput = {
      id, runtime, initPid: c.initTgid,
      hostNamespaces: hostNamespacesShared(c.ns, this.host),
      existing: c.existing,
      cgroupId: c.cgroupId,
    };
    if (cgroupPath) out.cgroupPath = cgroupPath;
    if (bundle) out.bundle = bundle;
    if (cgRef?.podUid) out.podUid = cgRef.podUid;

    let oci: OciConfigSummary | undefined;
    if (bundle) {
      try {
        oci = readOciConfig(bundle, { isHostNamespace: (t, p) => this.isHostNs(t, p) });
        out.mounts = oci.mounts.map((m) => ({ source: m.source, destination: m.destination, readOnly: m.readOnly, type: m.type }));
        out.labels = { ...oci.annotations };
        out.privileged = oci.privileged;
        if (oci.cri.imageName) out.image = oci.cri.imageName;
        if (oci.cri.podName) out.podName = oci.cri.podName;
        if (oci.cri.podNamespace) out.podNamespace = oci.cri.podNamespace;
        if (oci.cri.podUid) out.podUid = oci.cri.podUid;
        if (oci.cri.containerName) out.name = oci.cri.containerName;
        if (oci.trimmed.length) problems.push(`config.json trimmed: ${oci.trimmed.join(', ')}`);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }

    if (runtime === 'DOCKER') {
      const roots = this.dockerRoots(bundle);
      try {
        const d = readDockerContainer(roots.dataRoot, id);
        out.name = d.name;
        out.image = d.image;
        if (d.imageId) out.imageDigest = d.imageId;
        out.labels = { ...(out.labels ?? {}), ...d.labels };
        out.restartPolicy = formatRestartPolicy(d.restartPolicy);
        out.privileged = d.privileged || (out.privileged ?? false);
      } catch (err) {
        problems.push((err as Error).message);
      }
    } else if (runtime === 'PODMAN' && bundle) {
      const m = PODMAN_USERDATA.exec(bundle);
      if (m) {
        try {
          const pm = readPodmanContainer(m[1], m[3], m[2]);
          out.name = pm.name;
          if (pm.imageName) out.image = pm.imageName;
          if (pm.imageDigest) out.imageDigest = pm.imageDigest;
        } catch (err) {
          problems.push((err as Error).message);
        }
      }
    }
    out.name ??= id;
    if (problems.length) this.log.warn({ container: id, runtime, problems }, 'container metadata incomplete');
    return { container: out, oci: oci && { privileged: oci.privileged, hooks: oci.hooks }, problems };
  }

  /** Facts only the entry process has: the user and the capabilities it really runs with. */
  withEntry(meta: EnrichedMeta, c: ContainerFacts): ContainerInput {
    const p = c.entry;
    const out = { ...meta.container, initPid: c.initTgid, hostNamespaces: hostNamespacesShared(c.ns, this.host), cgroupId: c.cgroupId };
    if (p) {
      out.user = String(p.uid);
      out.capabilities = capNames(p.capEffective);
      if (out.privileged === undefined) out.privileged = meta.oci ? meta.oci.privileged : isFullCaps(p.capEffective);
    }
    const cgroupPath = this.cgroups.path(c.cgroupId);
    if (cgroupPath) out.cgroupPath = cgroupPath;
    return out;
  }
}

/** Without a config to say otherwise: every capability the host grants (root's full set minus none). */
function isFullCaps(mask: bigint): boolean {
  return capNames(mask).length >= 38;
}
