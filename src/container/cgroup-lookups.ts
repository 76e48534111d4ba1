import type { CgroupParseOptions } from '../meta/cgroup-path';
import {
  DEFAULT_CONTAINERD_STATE,
  DEFAULT_CRUN_ROOT,
  DEFAULT_RUNC_ROOT,
  isValidOciId,
  listContainerdNamespaces,
} from '../meta/runtime-state';
import { listDirUnder } from '../meta/safe-read';

/**
 * What the node's runtime state directories know, so that a cgroup path alone can name a
 * container whose path does not say which runtime made it: ctr's `/<namespace>/<id>`, a systemd
 * scope `<prefix>-<id>.scope` with a prefix the user chose, runc's and crun's `/<id>`. Asked only
 * when the runtime's own word (its command line, its state) is missing. An id counts when it is a
 * real directory below the state root, no link followed.
 */
export interface StateRoots {
  containerdState: string;
  runcRoot: string;
  crunRoot: string;
}

export const DEFAULT_STATE_ROOTS: StateRoots = {
  containerdState: DEFAULT_CONTAINERD_STATE,
  runcRoot: DEFAULT_RUNC_ROOT,
  crunRoot: DEFAULT_CRUN_ROOT,
};

function isDirUnder(root: string, rel: string): boolean {
  try {
    listDirUnder(root, rel, { maxEntries: 1 });
    return true;
  } catch {
    return false;
  }
}

export function nodeCgroupLookups(roots: StateRoots = DEFAULT_STATE_ROOTS): CgroupParseOptions {
  let namespaces: string[];
  try {
    namespaces = listContainerdNamespaces(roots.containerdState);
  } catch {
    namespaces = [];
  }
  const tasks = `${roots.containerdState}/io.containerd.runtime.v2.task`;
  return {
    containerdNamespaces: namespaces,
    containerdIdOf: (id) => (isValidOciId(id) ? namespaces.find((ns) => isDirUnder(tasks, `${ns}/${id}`)) : undefined),
    ociRuntimeOf: (id) => {
      if (!isValidOciId(id)) return undefined;
      if (isDirUnder(roots.runcRoot, id)) return 'RUNC';
      if (isDirUnder(roots.crunRoot, id)) return 'CRUN';
      return undefined;
    },
  };
}
