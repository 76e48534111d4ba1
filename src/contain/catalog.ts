/**
 * Which rules may kill the process that acted (policy `action: kill` or
 * `dry-run`), and where the kill happens:
 * - `kernel`: decided at syscall exit in the acting thread; bpf_send_signal
 *   kills it before the syscall returns to user space.
 * - `user`: the rule correlates in user space (a CLI's argv, a deploy seen
 *   after a socket connect, a file written after start); the sensor kills
 *   through a pidfd, checked against the process's start time, so a reused
 *   pid is never hit. The process has run for a few milliseconds by then.
 */
export type KillPath = 'kernel' | 'user';

export const KILLABLE: Readonly<Record<string, KillPath>> = {
  'discovery.runtime-cli': 'user',
  'discovery.runtime-socket': 'user',
  'deploy.from-container': 'user',
  'drift.exec-new-file': 'user',
};

export const ACTIONS = ['report', 'kill', 'dry-run'] as const;
export type Action = (typeof ACTIONS)[number];
