import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { waitSync } from './runtime-exec';

/** A process identified across pid reuse: pid plus start time (clock ticks after boot). */
export interface ProcessRef {
  pid: number;
  start: number;
}

function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: fields resume after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

export function processRef(pid: number): ProcessRef | undefined {
  const start = startTime(pid);
  return start === undefined ? undefined : { pid, start };
}

/** Alive and not a zombie. */
export function isAlive(p: ProcessRef): boolean {
  if (startTime(p.pid) !== p.start) return false;
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Sends signal unless the process is gone or its pid was reused. */
export function signal(p: ProcessRef, sig: NodeJS.Signals): void {
  if (!isAlive(p)) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    /* exited meanwhile */
  }
}

/** SIGTERM, wait, then SIGKILL and wait. Returns whether it is gone. */
export function terminate(p: ProcessRef, graceMs: number): boolean {
  signal(p, 'SIGTERM');
  if (waitSync(() => !isAlive(p), graceMs)) return true;
  signal(p, 'SIGKILL');
  return waitSync(() => !isAlive(p), 5_000);
}

/** Processes whose command line contains text (the lab's directory names its daemons' shims and conmons). */
export function processesMentioning(text: string): (ProcessRef & { args: string })[] {
  const found: (ProcessRef & { args: string })[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let args: string;
    try {
      args = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    const ref = args.includes(text) ? processRef(Number(e)) : undefined;
    if (ref && isAlive(ref)) found.push({ ...ref, args });
  }
  return found;
}

/** Children of pid, forked by any of its threads (Go daemons fork from whichever thread runs). */
export function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

export type NamespaceType = 'pid' | 'net' | 'mnt' | 'uts' | 'ipc' | 'cgroup' | 'user' | 'time';

/** The namespace link of a process, e.g. 'pid:[4026531836]'. */
export function namespaceOf(pid: number | 'self', type: NamespaceType): string {
  return readlinkSync(`/proc/${pid}/ns/${type}`);
}

/**
 * Path of the host's namespace of a type: PID 1's where readable, else our own (on this machine
 * /proc/1/ns/* cannot be read, and the test process runs in the host's namespaces).
 */
export function hostNamespacePath(type: NamespaceType): string {
  try {
    readlinkSync(`/proc/1/ns/${type}`);
    return `/proc/1/ns/${type}`;
  } catch {
    return `/proc/${process.pid}/ns/${type}`;
  }
}

const RUNTIME_EXE = /runc|crun|memfd:/;

/**
 * Whether pid has exec'd its entrypoint: `runc start`/`crun start` return once the init is
 * released, a moment before it execs (its exe is still runc's memfd clone or crun, its comm
 * 'runc:[2:INIT]' or 'crun'). Both are checked: execve switches them one after the other.
 */
export function hasExeced(pid: number): boolean {
  try {
    const exe = readlinkSync(`/proc/${pid}/exe`);
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8');
    return !RUNTIME_EXE.test(exe) && !RUNTIME_EXE.test(comm);
  } catch {
    return !existsSync(`/proc/${pid}`); // gone: nothing to wait for; else mid-exec
  }
}
