import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';

/**
 * libbpf finds a syscall tracepoint's id in tracefs, which nodes often leave
 * unmounted. Once programs are attached tracefs is no longer needed, so the
 * sensor mounts it for the attach and unmounts what it mounted right after.
 */
const CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

export function tracefsPath(): string | undefined {
  return CANDIDATES.find((p) => existsSync(`${p}/events/syscalls`));
}

export class TracefsError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'TracefsError';
  }
}

/** Ensures tracefs is reachable; returns an undo that unmounts it if we mounted it. */
export function withTracefs(): () => void {
  if (tracefsPath()) return () => {};
  const where = CANDIDATES[0];
  try {
    mkdirSync(where, { recursive: true });
    execFileSync('mount', ['-t', 'tracefs', 'nodev', where], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new TracefsError(`cannot mount tracefs at ${where}${stderr ? `: ${stderr}` : ''}`, err);
  }
  if (!existsSync(`${where}/events/syscalls`)) {
    throw new TracefsError(`tracefs at ${where} has no syscall tracepoints (kernel built without CONFIG_FTRACE_SYSCALLS)`);
  }
  return () => {
    try {
      execFileSync('umount', [where], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      /* busy (someone else uses it now): leave it */
    }
  };
}
