import { kernelDev } from '../container/runtime-sockets';
import { MetaReadError, statDirUnder, type DirStat } from './safe-read';

/**
 * A pod's service-account volume, as the kubelet mounts it: at a fixed path in the container,
 * from a host directory that is a tmpfs of its own (the kubelet's secret and projected volume
 * plugins mount one per volume under /var/lib/kubelet/pods/<uid>/volumes/). That superblock
 * names the token whatever path reaches it, so the kernel decides by it (bpf/token.bpf.h).
 */

/** Where the kubelet mounts a pod's service-account token (and /run is /var/run in images). */
export const SERVICE_ACCOUNT_DIRS = ['/var/run/secrets/kubernetes.io/serviceaccount', '/run/secrets/kubernetes.io/serviceaccount'];

export interface ServiceAccountVolume {
  /** Host path of the volume, as the container's config names it. */
  source: string;
  /** Where the container sees it. */
  destination: string;
  /** Its superblock (kernel encoding major << 20 | minor). */
  dev: number;
}

/** The mount of the service-account volume among a container's mounts, or undefined. */
export function serviceAccountMount(
  mounts: readonly { source?: string; destination?: string }[],
): { source: string; destination: string } | undefined {
  for (const m of mounts) {
    const dest = (m.destination ?? '').replace(/\/+$/, '');
    if (SERVICE_ACCOUNT_DIRS.includes(dest) && m.source?.startsWith('/')) return { source: m.source, destination: dest };
  }
  return undefined;
}

/**
 * The volume's superblock, from an fstat of its host directory reached without following any
 * link (safe-read.ts), when that directory is a mount of its own (its device differs from its
 * parent's). A directory on its parent's filesystem is refused: its device would name every
 * file of that filesystem (the node's root, say), and its own files' (dev, inode) pairs would
 * miss the token the kubelet swaps in at each rotation — the limit is named instead.
 */
export function serviceAccountVolume(
  m: { source: string; destination: string },
  stat: (path: string) => DirStat = (p) => statDirUnder('/', p.replace(/^\/+/, '')),
): ServiceAccountVolume {
  let st: DirStat;
  try {
    st = stat(m.source);
  } catch (err) {
    if (err instanceof MetaReadError) throw new Error(`service-account volume ${m.source}: ${err.reason}: ${err.message}`, { cause: err });
    throw err;
  }
  if (st.dev === st.parentDev)
    throw new Error(
      `service-account volume ${m.source} is not a mount of its own (same device as its parent): reads of its token are not seen`,
    );
  return { ...m, dev: kernelDev(st.dev) };
}
