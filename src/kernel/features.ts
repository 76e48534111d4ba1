/**
 * What the running kernel offers, and what follows for each detection: the
 * addon probes by loading (native/probe.c), never by version number; this
 * module turns the answers and the list of attached programs into refusals
 * and per-rule degradations for `doctor`, `run` and sensorReady.
 */

import type { KernelFeatures, ProgramInfo } from '../native';

/** One line saying why ctrwatch cannot run on this kernel, or undefined when it can. */
export function refusal(f: KernelFeatures, release = ''): string | undefined {
  const on = release ? ` (this kernel: ${release})` : '';
  if (!f.btf) return `the kernel has no BTF (/sys/kernel/btf/vmlinux)${on}: ctrwatch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y`;
  if (!f.ringbuf) return `the kernel has no BPF ring buffer${on}: ctrwatch needs Linux 5.8 or later (5.10 is the oldest tested)`;
  if (!f.tracing) return `the kernel cannot load BTF tracepoint programs (tp_btf)${on}: ctrwatch needs Linux 5.5 or later with BTF`;
  return undefined;
}

/** What this kernel changes in how ctrwatch works, short of degrading a rule. */
export function featureNotes(f: KernelFeatures): string[] {
  const out: string[] = [];
  if (!f.taskBtf)
    out.push(
      'syscall programs read the current task with probe reads (bpf_get_current_task_btf is 5.11+): same records, a little more kernel time per syscall record',
    );
  if (!f.sendSignal)
    out.push(
      'no bpf_send_signal (5.3+): rules armed to kill are killed from user space through a pidfd, after the call returned; each detection says so',
    );
  if (!f.lsm) out.push('no BPF-LSM: escape actions are killed at syscall exit (after the call completed), not denied before they happen');
  return out;
}

/** The tracepoint of a program's section ("tp_btf/sched_process_fork" → "sched_process_fork"). */
export function hookName(section: string): string {
  return section.replace(/^(tp_btf|raw_tp|tracepoint\/[^/]+|tracepoint)\//, '');
}

/**
 * Which detections depend on which hooks (tracepoint names as hookName gives
 * them). A group is lost when none of its hooks is attached: open and openat
 * are alternatives (arm64 has no open(2)), and so are the two names the
 * io_uring submission tracepoint had. `required` groups make the sensor
 * useless when lost.
 */
interface Dependency {
  hooks: string[];
  rules: string[];
  what: string;
  required?: boolean;
}

const sys = (...names: string[]) => names.map((n) => `sys_enter_${n}`);

export const DEPENDENCIES: readonly Dependency[] = [
  { hooks: sys('pivot_root', 'chroot'), rules: [], what: 'container creation (a root change in a new mount namespace)', required: true },
  { hooks: sys('setns'), rules: ['escape.setns-host'], what: 'setns into host namespaces, and telling exec-into from a new container' },
  { hooks: sys('unshare'), rules: [], what: 'namespaces made by unshare(2), followed from then on' },
  {
    hooks: sys('mount'),
    rules: ['escape.mount-cgroupfs', 'escape.mount-device'],
    what: 'mount(2) of cgroup filesystems and block devices',
  },
  { hooks: sys('chroot'), rules: ['escape.chroot-host'], what: 'chroot into the host filesystem' },
  {
    hooks: sys('ptrace'),
    rules: ['escape.ptrace-host', 'sensor.ptrace'],
    what: 'ptrace of processes outside the container, or of the sensor',
  },
  { hooks: sys('open', 'openat', 'openat2'), rules: ['escape.kernel-control-write'], what: 'write-opens of kernel control files' },
  { hooks: sys('openat2'), rules: ['escape.kernel-control-write'], what: 'write-opens through openat2' },
  { hooks: sys('open_by_handle_at'), rules: ['escape.kernel-control-write'], what: 'write-opens by file handle' },
  // fsmount's mount is judged from the fd it returns: only its exit is traced
  {
    hooks: ['sys_exit_fsmount'],
    rules: ['escape.mount-cgroupfs', 'escape.mount-device'],
    what: 'mounts made with the new mount API (fsmount)',
  },
  { hooks: sys('open_tree'), rules: ['escape.mount-cgroupfs', 'escape.mount-device'], what: 'mount copies made with open_tree' },
  {
    hooks: sys('process_vm_writev'),
    rules: ['escape.process-memory-write'],
    what: "writes to another process's memory with process_vm_writev",
  },
  { hooks: sys('pidfd_getfd'), rules: ['escape.pidfd-getfd'], what: "taking another process's file descriptors" },
  { hooks: sys('connect'), rules: ['discovery.runtime-socket', 'deploy.from-container'], what: "connects to a runtime's socket" },
  { hooks: sys('init_module', 'finit_module'), rules: ['escape.module-load'], what: 'kernel module loads' },
  { hooks: sys('bpf'), rules: ['escape.bpf-from-container'], what: 'bpf() from containers' },
  { hooks: sys('io_uring_setup'), rules: ['escape.io-uring-setup'], what: 'io_uring set up in containers' },
  { hooks: ['io_uring_submit_req', 'io_uring_submit_sqe'], rules: ['evasion.io-uring-ops'], what: 'io_uring open and connect submissions' },
  { hooks: ['signal_generate'], rules: ['sensor.signal'], what: 'signals sent to the sensor' },
];

export interface Degradation {
  /** The lost rule (or a description when no single rule depends on it). */
  rule: string;
  why: string;
  required: boolean;
}

/** One entry per rule that this kernel's attached programs cannot serve, saying why. */
export function degradations(programs: readonly ProgramInfo[]): Degradation[] {
  const have = new Set(programs.filter((p) => p.attached).map((p) => hookName(p.section)));
  const out: Degradation[] = [];
  for (const d of DEPENDENCIES) {
    if (d.hooks.some((h) => have.has(h))) continue;
    const why = `no ${d.hooks.join(' or ')} tracepoint on this kernel: ${d.what} not seen`;
    const rules = d.rules.length ? d.rules : [d.what];
    for (const rule of rules) out.push({ rule, why, required: Boolean(d.required) });
  }
  return out;
}
