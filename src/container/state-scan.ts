import { join } from 'node:path';
import { listDirUnder } from '../meta/safe-read';
import { readCrunStatus, readRuncState, type OciRuntimeState } from '../meta/runtime-state';
import type { RuntimeName } from '../proto/schema';

/**
 * For containers found running at startup: which runtime state directory holds
 * the one whose init is `pid`. Covers runc's and crun's default roots,
 * containerd's (/run/containerd/runc/<namespace>) and Docker's
 * (<exec-root>/runtime-runc/moby). Bounded: at most 4096 entries a directory.
 */
export interface FoundState {
  id: string;
  bundle?: string;
  runtime: RuntimeName;
}

function list(root: string, rel = '.'): string[] {
  try {
    return listDirUnder(root, rel, { maxEntries: 4096 }).names;
  } catch {
    return [];
  }
}

function roots(dockerExecRoot: string): { dir: string; runtime: RuntimeName; crun?: boolean }[] {
  const out: { dir: string; runtime: RuntimeName; crun?: boolean }[] = [
    { dir: '/run/runc', runtime: 'RUNC' },
    { dir: '/run/crun', runtime: 'CRUN', crun: true },
    { dir: join(dockerExecRoot, 'runtime-runc', 'moby'), runtime: 'DOCKER' },
  ];
  for (const ns of list('/run/containerd/runc')) {
    out.push({ dir: join('/run/containerd/runc', ns), runtime: ns === 'moby' ? 'DOCKER' : 'CONTAINERD' });
  }
  return out;
}

export function findRuntimeState(pid: number, dockerExecRoot = '/var/run/docker'): FoundState | undefined {
  for (const r of roots(dockerExecRoot)) {
    for (const id of list(r.dir)) {
      let st: OciRuntimeState;
      try {
        st = r.crun ? readCrunStatus(r.dir, id) : readRuncState(r.dir, id);
      } catch {
        continue;
      }
      if (st.initPid === pid) return { id: st.id, bundle: st.bundle, runtime: r.runtime };
    }
  }
  return undefined;
}
