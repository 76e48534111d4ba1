import type { Severity } from './types';

/**
 * Pure decisions of the rules that protect the sensor and watch the doors
 * around the syscall hooks (bpf, io_uring): what each kernel fact is worth.
 */

/** bpf() commands (enum bpf_cmd, a stable UAPI) by number. */
export const BPF_CMDS = [
  'MAP_CREATE',
  'MAP_LOOKUP_ELEM',
  'MAP_UPDATE_ELEM',
  'MAP_DELETE_ELEM',
  'MAP_GET_NEXT_KEY',
  'PROG_LOAD',
  'OBJ_PIN',
  'OBJ_GET',
  'PROG_ATTACH',
  'PROG_DETACH',
  'PROG_TEST_RUN',
  'PROG_GET_NEXT_ID',
  'MAP_GET_NEXT_ID',
  'PROG_GET_FD_BY_ID',
  'MAP_GET_FD_BY_ID',
  'OBJ_GET_INFO_BY_FD',
  'PROG_QUERY',
  'RAW_TRACEPOINT_OPEN',
  'BTF_LOAD',
  'BTF_GET_FD_BY_ID',
  'TASK_FD_QUERY',
  'MAP_LOOKUP_AND_DELETE_ELEM',
  'MAP_FREEZE',
  'BTF_GET_NEXT_ID',
  'MAP_LOOKUP_BATCH',
  'MAP_LOOKUP_AND_DELETE_BATCH',
  'MAP_UPDATE_BATCH',
  'MAP_DELETE_BATCH',
  'LINK_CREATE',
  'LINK_UPDATE',
  'LINK_GET_FD_BY_ID',
  'LINK_GET_NEXT_ID',
  'ENABLE_STATS',
  'ITER_CREATE',
  'LINK_DETACH',
  'PROG_BIND_MAP',
  'TOKEN_CREATE',
] as const;

export function bpfCmdName(cmd: bigint | number): string {
  const n = Number(cmd);
  return BPF_CMDS[n] ?? `cmd ${n}`;
}

/**
 * The commands that reach objects the container did not make (another
 * program's maps, programs and links, by id or pinned path), change them, or
 * put new programs into the kernel.
 */
const DANGEROUS = new Set<string>([
  'MAP_GET_FD_BY_ID',
  'PROG_GET_FD_BY_ID',
  'LINK_GET_FD_BY_ID',
  'BTF_GET_FD_BY_ID',
  'OBJ_GET',
  'MAP_UPDATE_ELEM',
  'MAP_DELETE_ELEM',
  'MAP_LOOKUP_AND_DELETE_ELEM',
  'MAP_UPDATE_BATCH',
  'MAP_DELETE_BATCH',
  'MAP_LOOKUP_AND_DELETE_BATCH',
  'PROG_DETACH',
  'LINK_DETACH',
  'LINK_UPDATE',
  'PROG_LOAD',
  'PROG_ATTACH',
  'LINK_CREATE',
  'RAW_TRACEPOINT_OPEN',
]);

export function bpfDangerous(cmd: bigint | number): boolean {
  return DANGEROUS.has(bpfCmdName(cmd));
}

/** CRITICAL when a dangerous command succeeded; HIGH for any other bpf() from a container (refused ones too). */
export function bpfSeverity(cmd: bigint | number, ret: number): Severity {
  return ret >= 0 && bpfDangerous(cmd) ? 'CRITICAL' : 'HIGH';
}

const SIGNAL_NAMES: Record<number, string> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  4: 'SIGILL',
  5: 'SIGTRAP',
  6: 'SIGABRT',
  7: 'SIGBUS',
  8: 'SIGFPE',
  9: 'SIGKILL',
  10: 'SIGUSR1',
  11: 'SIGSEGV',
  12: 'SIGUSR2',
  13: 'SIGPIPE',
  14: 'SIGALRM',
  15: 'SIGTERM',
  16: 'SIGSTKFLT',
  17: 'SIGCHLD',
  18: 'SIGCONT',
  19: 'SIGSTOP',
  20: 'SIGTSTP',
  21: 'SIGTTIN',
  22: 'SIGTTOU',
  23: 'SIGURG',
  24: 'SIGXCPU',
  25: 'SIGXFSZ',
  26: 'SIGVTALRM',
  27: 'SIGPROF',
  28: 'SIGWINCH',
  29: 'SIGIO',
  30: 'SIGPWR',
  31: 'SIGSYS',
};

export function signalName(sig: number): string {
  if (SIGNAL_NAMES[sig]) return SIGNAL_NAMES[sig];
  return sig >= 32 && sig <= 64 ? `SIGRT${sig - 32}` : `signal ${sig}`;
}

const STOP_SIGNALS = new Set([19, 20, 21, 22]);

/**
 * A signal to the sensor: from a container, whatever it is, CRITICAL (a
 * container has no business signalling a host agent; even a harmless one is
 * a probe of whether it can). From a host process only a stop is reported
 * (HIGH): the operator's SIGTERM, SIGINT or SIGHUP is how the sensor is run.
 */
export function signalSeverity(sig: number, fromContainer: boolean): Severity | undefined {
  if (fromContainer) return 'CRITICAL';
  return STOP_SIGNALS.has(sig) ? 'HIGH' : undefined;
}

export function ptraceSeverity(fromContainer: boolean): Severity {
  return fromContainer ? 'CRITICAL' : 'HIGH';
}

/** TRACE_SIGNAL_* results of signal_generate. */
export function signalResult(r: number): string {
  return ['delivered', 'ignored', 'already_pending', 'overflow_fail', 'lose_info'][r] ?? String(r);
}

/** io_uring opcodes the kernel reports (bpf/uring.bpf.h). */
export const URING_OPS: Record<number, string> = { 16: 'connect', 18: 'openat', 28: 'openat2', 45: 'socket' };

/**
 * Per-container io_uring counts, reported at most once per interval per
 * container: the first operation at once, then a summary of what came since.
 */
export class UringCounts {
  private readonly by = new Map<unknown, { counts: Record<string, number>; total: number; lastReport?: bigint }>();

  constructor(
    private readonly intervalNs = 60_000_000_000n,
    private readonly max = 10_000,
  ) {}

  /** Counts one operation; returns the counts to report now, or undefined. */
  add(container: unknown, opcode: number, at: bigint): { counts: Record<string, number>; total: number } | undefined {
    let e = this.by.get(container);
    if (!e) {
      if (this.by.size >= this.max) this.by.delete(this.by.keys().next().value);
      e = { counts: {}, total: 0 };
      this.by.set(container, e);
    }
    const op = URING_OPS[opcode] ?? `op${opcode}`;
    e.counts[op] = (e.counts[op] ?? 0) + 1;
    e.total++;
    if (e.lastReport !== undefined && at - e.lastReport < this.intervalNs) return undefined;
    e.lastReport = at;
    return { counts: { ...e.counts }, total: e.total };
  }

  forget(container: unknown): void {
    this.by.delete(container);
  }
}
