import { closeSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { NS_NAMES } from '../decode/layout';
import type { Namespaces } from '../decode/records';
import { ticksToNs } from './clock';
import type { Proc } from './table';

/**
 * Reading processes from /proc: for the startup scan and for processes the
 * kernel did not report. /proc/<pid>/* are kernel files (not container-controlled)
 * but can vanish at any moment: every read may fail and returns undefined then.
 */

const CAP_READ = 64 * 1024;

/** One buffer for every read: they are synchronous, and each is copied out into its string. */
const scratch = Buffer.allocUnsafe(CAP_READ);

/** Why a read failed: ENOENT or ESRCH mean the process is gone. */
type ReadFailure = { code: string | undefined };

/**
 * At most CAP_READ bytes of a /proc file: a process's cmdline is as long as its arguments, which
 * a container chooses. Read until the end or the cap, since /proc hands out its files in pieces.
 */
function read(path: string, failed?: ReadFailure): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if (failed) failed.code = (err as NodeJS.ErrnoException).code;
    return undefined;
  }
  try {
    let len = 0;
    for (let n; len < CAP_READ && (n = readSync(fd, scratch, len, CAP_READ - len, null)) > 0;) len += n;
    return scratch.toString('utf8', 0, len);
  } catch (err) {
    if (failed) failed.code = (err as NodeJS.ErrnoException).code;
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export interface ProcStat {
  ppid: number;
  /** PF_KTHREAD: a kernel thread (kdevtmpfs even has its own mount namespace and root). */
  kernelThread: boolean;
  /** Start time since boot, in ns, at clock-tick resolution. */
  startNs: bigint;
  comm: string;
}

export function parseStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  const ppid = Number(f[1]);
  const flags = Number(f[6]);
  const start = Number(f[19]);
  if (!Number.isFinite(ppid) || !Number.isFinite(start)) return undefined;
  const PF_KTHREAD = 0x00200000;
  return { ppid, kernelThread: (flags & PF_KTHREAD) !== 0, startNs: ticksToNs(start), comm };
}

export function readNamespaces(pid: number): Namespaces | undefined {
  const out: Partial<Namespaces> = {};
  try {
    for (const n of NS_NAMES) {
      const m = /:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/${n}`));
      out[n] = m ? Number(m[1]) : 0;
    }
  } catch {
    return undefined;
  }
  return out as Namespaces;
}

function statusField(status: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status);
  return m?.[1];
}

/** nspid: the last pid of NSpid (its pid in its own pid namespace). */
function nsPid(status: string, pid: number): number {
  const v = statusField(status, 'NSpid');
  const last = v?.trim().split(/\s+/).pop();
  return last ? Number(last) : pid;
}

/**
 * One process from /proc: the process with this pid now; null when there is none (/proc/<pid>
 * does not exist: whatever process had the pid is gone for good); undefined when it could not be
 * read (a kernel thread, a read that failed otherwise, or it went away between two reads). Start
 * times from /proc have clock-tick resolution, so `startNs` is rounded down to 10 ms: identity
 * checks against kernel records use `sameStart`.
 */
export function readProc(pid: number, cgroupIdOf?: (pid: number) => bigint): Proc | null | undefined {
  const failed: ReadFailure = { code: undefined };
  const stat = read(`/proc/${pid}/stat`, failed);
  // The usual answer for an ancestor that has exited: one failed open, not four (stat, status,
  // cmdline, then the first namespace link).
  if (stat === undefined) return failed.code === 'ENOENT' || failed.code === 'ESRCH' ? null : undefined;
  const status = read(`/proc/${pid}/status`);
  const cmdline = read(`/proc/${pid}/cmdline`);
  const ns = readNamespaces(pid);
  const st = stat ? parseStat(stat) : undefined;
  if (!st || !status || ns === undefined || st.kernelThread) return undefined;
  const uids = statusField(status, 'Uid')?.split(/\s+/).map(Number) ?? [];
  const cap = statusField(status, 'CapEff');
  let parentStartNs = 0n;
  const pstat = st.ppid ? read(`/proc/${st.ppid}/stat`) : undefined;
  if (pstat) parentStartNs = parseStat(pstat)?.startNs ?? 0n;
  let exe = '';
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    /* kernel thread, or gone */
  }
  const argv = cmdline ? cmdline.replace(/\0$/, '').split('\0') : [];
  return {
    tgid: pid,
    startNs: st.startNs,
    ppid: st.ppid,
    parentStartNs,
    nspid: nsPid(status, pid),
    comm: st.comm,
    exe,
    argv: argv.length === 1 && argv[0] === '' ? [] : argv,
    execMnt: ns.mnt,
    uid: uids[0] ?? 0,
    euid: uids[1] ?? 0,
    capEffective: cap ? BigInt(`0x${cap}`) : 0n,
    ns,
    cgroupId: cgroupIdOf ? cgroupIdOf(pid) : 0n,
    // Its children before the sensor are unknown: kept after its exit like any parent.
    forked: true,
  };
}

/** Every process now, as far as it can be read. */
export function listPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return [];
  }
}
