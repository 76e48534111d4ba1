import { readFileSync, readlinkSync, statSync } from 'node:fs';
import type { Namespaces } from '../decode/records';
import { listPids, readProc } from '../process/procfs';
import type { Proc, ProcessTable } from '../process/table';
import type { ContainerFacts, Lifecycle } from './lifecycle';
import { parseManager } from './runtime-cli';

/**
 * Containers that already run: processes in a mount namespace that is not the
 * host's and under a root that is not the host's, grouped by mount namespace.
 * A mount namespace made inside a container on that container's root (`unshare
 * -m` in it) is not another container: its processes are the container's by
 * lineage. Outer containers come first (by their init's start). Seeds the
 * process table with every process read on the way.
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
  const toMono = bootToMonotonic();
  for (const [key, members] of groups) {
    const newPidNs = members[0].ns.pid !== host.pid;
    // The init: PID 1 of a new pid namespace, else the oldest process whose parent is outside.
    const top = members.filter((p) => procs.parent(p)?.ns.mnt !== key);
    const init = (newPidNs ? members.find((p) => p.nspid === 1) : undefined) ?? top.sort((a, b) => (a.startNs < b.startNs ? -1 : 1))[0];
    if (!init) continue;
    const r = rootId(init.tgid);
    if (!r || r === hostRoot) continue; // a private mount namespace on the host's root: not a container
    const parent = procs.parent(init);
    if (parent && parent.ns.mnt !== host.mnt && parent.ns.mnt !== 0 && rootId(parent.tgid) === r) continue;
    const m = parent ? parseManager(parent.argv) : undefined;
    out.push({
      key,
      status: 'started',
      initTgid: init.tgid,
      initStartNs: init.startNs,
      ns: init.ns,
      cgroupId: init.cgroupId,
      rootChange: 'existing',
      manager: m && parent ? { ...m, pid: parent.tgid, bundle: m.bundle ?? cwdOf(parent.tgid) } : undefined,
      createdNs: 0n,
      startedNs: toMono(init.startNs),
      entry: init,
      existing: true,
    });
  }
  return out.sort((a, b) => (a.initStartNs < b.initStartNs ? -1 : a.initStartNs > b.initStartNs ? 1 : 0));
}

/**
 * Process start times (CLOCK_BOOTTIME, from /proc) to the records' clock
 * (CLOCK_MONOTONIC): they differ by the time the machine slept.
 */
function bootToMonotonic(): (bootNs: bigint) => bigint | undefined {
  let offset: bigint | undefined;
  try {
    const up = readFileSync('/proc/uptime', 'utf8').split(' ')[0];
    const [sec, frac = '0'] = up.split('.');
    offset = BigInt(sec) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9)) - process.hrtime.bigint();
  } catch {
    offset = undefined;
  }
  return (bootNs) => (offset === undefined || bootNs <= offset ? undefined : bootNs - offset);
}

/** Processes whose line belongs to a container: the kernel is to follow them (KernelSensor.follow). */
export function containerLines(procs: ProcessTable, lifecycle: Lifecycle): { tgid: number; startNs: bigint }[] {
  const out: { tgid: number; startNs: bigint }[] = [];
  for (const p of procs.values()) {
    if (p.exitedAt === undefined && lifecycle.owner(p)) out.push({ tgid: p.tgid, startNs: p.startNs });
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
