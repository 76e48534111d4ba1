import type { KillClass } from '../decode/layout';

/**
 * Which rules may kill the process that acted (policy `action: kill` or
 * `dry-run`), and where the kill happens:
 * - `kernel`: decided at syscall exit in the acting thread; bpf_send_signal
 *   kills it before the syscall returns to user space (bpf/contain.bpf.h).
 *   Where the kernel cannot (no bpf_send_signal, a container the kernel was
 *   not told of yet, a door with no kernel decision such as
 *   process_vm_writev), the sensor kills from user space instead and the
 *   detection says so.
 * - `user`: the rule correlates in user space (a CLI's argv, a deploy seen
 *   after a socket connect, a file written after start); the sensor kills
 *   through a pidfd, checked against the process's start time, so a reused
 *   pid is never hit. The process has run for a few milliseconds by then.
 */
export type KillPath = 'kernel' | 'user';

export const KILLABLE: Readonly<Record<string, KillPath>> = {
  'escape.kernel-control-write': 'kernel',
  'escape.setns-host': 'kernel',
  'escape.mount-cgroupfs': 'kernel',
  'escape.mount-device': 'kernel',
  'escape.chroot-host': 'kernel',
  'escape.ptrace-host': 'kernel',
  'escape.process-memory-write': 'kernel',
  'escape.bpf-from-container': 'kernel',
  'sensor.signal': 'kernel',
  'discovery.runtime-cli': 'user',
  'discovery.runtime-socket': 'user',
  'deploy.from-container': 'user',
  'drift.exec-new-file': 'user',
};

/** The kernel's action classes (enum cw_kill_class) each kernel rule arms. */
export const KERNEL_CLASSES: Readonly<Record<string, readonly KillClass[]>> = {
  'escape.kernel-control-write': ['control_write'],
  'escape.setns-host': ['setns_host'],
  'escape.mount-cgroupfs': ['mount_cgroup'],
  'escape.mount-device': ['mount_device'],
  'escape.chroot-host': ['root_host'],
  'escape.ptrace-host': ['ptrace_host'],
  'escape.process-memory-write': ['proc_mem'],
  'escape.bpf-from-container': ['bpf'],
  'sensor.signal': ['sensor_signal'],
};

export const ACTIONS = ['report', 'kill', 'dry-run'] as const;
export type Action = (typeof ACTIONS)[number];
