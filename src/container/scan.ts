import { readlinkSync, statSync } from 'node:fs';
import type { Namespaces } from '../decode/records';
import { listPids, readProc } from '../process/procfs';
import type { Proc, ProcessTable } from '../process/table';
import type { ContainerFacts } from './lifecycle';
import { parseManager } from './runtime-cli';

/**
 * Containers that already run: processes in a mount namespace that is not the
 * host's and under a root that is not the host's, grouped by mount namespace.
 * Seeds the process table with every process read on the way.
 */
function rootId(pid: number | 'self'): string | undefined {
  try {
    // The kernel's magic link to the process's root: not a container-controlled symlink.
    const st = statSync(`/proc/${pid}/root/`, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

export function scanExisting(host: Namespaces, procs: ProcessTable, cgroupIdOf?: (pid: number) => bigint): ContainerFacts[] {
  const hostRoot = rootId('self');
  const groups = new Map<number, Proc[]>();
  for (const pid of listPids()) {
    const p = readProc(pid, cgroupIdOf);
    if (!p) continue;
    procs.put(p);
    if (p.ns.mnt === host.mnt || p.ns.mnt === 0) continue;
    let g = groups.get(p.ns.mnt);
    if (!g) groups.set(p.ns.mnt, (g = []));
    g.push(p);
  }
  const out: ContainerFacts[] = [];
  for (const [key, members] of groups) {
    const newPidNs = members[0].ns.pid !== host.pid;
    // The init: PID 1 of a new pid namespace, else the oldest process whose parent is outside.
    const top = members.filter((p) => procs.parent(p)?.ns.mnt !== key);
    const init = (newPidNs ? members.find((p) => p.nspid === 1) : undefined) ??
      top.sort((a, b) => (a.startNs < b.startNs ? -1 : 1))[0];
    if (!init) continue;
    const r = rootId(init.tgid);
    if (!r || r === hostRoot) continue; // a private mount namespace on the host's root: not a container
    const parent = procs.parent(init);
    const m = parent ? parseManager(parent.argv) : undefined;
    out.push({
      key, status: 'started', initTgid: init.tgid, initStartNs: init.startNs, ns: init.ns, cgroupId: init.cgroupId,
      rootChange: 'existing', manager: m && parent ? { ...m, pid: parent.tgid, bundle: m.bundle ?? cwdOf(parent.tgid) } : undefined,
      createdNs: 0n, entry: init, existing: true,
    });
  }
  return out;
}

/** containerd's shim runs in its bundle directory. */
function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}
