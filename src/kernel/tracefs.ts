import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmdirSync } from 'node:fs';

/**
 * Syscall tracepoint programs attach by the tracepoint's id, read from tracefs,
 * which nodes often leave unmounted. The sensor mounts a private tracefs of its
 * own under /run for the attach and unmounts it right after: the node's
 * /sys/kernel/tracing is never touched, and nobody unmounting it (another
 * ctrwatch, an admin) can pull it away mid-attach. Without the privilege to
 * mount, an already mounted tracefs is used.
 */
const CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** A mounted tracefs with syscall tracepoints, if the node has one. */
export function tracefsPath(): string | undefined {
  return CANDIDATES.find((p) => existsSync(`${p}/events/syscalls`));
}

export class TracefsError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'TracefsError';
  }
}

export interface Tracefs {
  /** Where tracefs is mounted for this attach. */
  path: string;
  /** Unmounts and removes the private mount (a no-op when the node's was used). */
  release(): void;
}

const quiet = { stdio: ['ignore', 'ignore', 'pipe'] as ('ignore' | 'pipe')[], timeout: 10_000 };

/** A tracefs for one attach: a private mount, else the node's own. */
export function withTracefs(base = '/run'): Tracefs {
  let dir: string | undefined;
  let mountErr: unknown;
  try {
    dir = mkdtempSync(`${base}/ctrwatch-tracefs-`);
    execFileSync('mount', ['-t', 'tracefs', 'nodev', dir], quiet);
  } catch (err) {
    mountErr = err;
    if (dir) rmdirSync(dir);
    dir = undefined;
  }
  if (!dir) {
    const shared = tracefsPath();
    if (shared) return { path: shared, release: () => {} };
    const stderr = (mountErr as { stderr?: Buffer }).stderr?.toString().trim();
    throw new TracefsError(`cannot mount tracefs${stderr ? `: ${stderr}` : ''} and none is mounted`, mountErr);
  }
  const path = dir;
  const release = () => {
    try {
      execFileSync('umount', [path], quiet);
      rmdirSync(path);
    } catch {
      /* already gone */
    }
  };
  if (!existsSync(`${path}/events/syscalls`)) {
    release();
    throw new TracefsError('tracefs has no syscall tracepoints (kernel built without CONFIG_FTRACE_SYSCALLS)');
  }
  return { path, release };
}
