import { mkdirSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { runSync, sleepSync, waitSync } from './runtime-exec';

/**
 * cgroup state the lab touches: the crun hybrid-mode fix (global, shared by every lab in this
 * process) and the cgroup directories runtimes leave behind.
 */

const CGROUP_ROOT = '/sys/fs/cgroup';
const UNIFIED = join(CGROUP_ROOT, 'unified');

/** Mount points of every cgroup hierarchy under /sys/fs/cgroup (v1 and v2). */
export function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => {
      const sep = f.indexOf('-');
      return sep > 0 && (f[sep + 1] === 'cgroup' || f[sep + 1] === 'cgroup2') && f[4].startsWith(CGROUP_ROOT + '/');
    })
    .map((f) => f[4]);
}

function isMountPoint(path: string): boolean {
  return cgroupMounts().includes(path);
}

/** rmdir path and every cgroup below it, deepest first; a busy (populated) cgroup stays. */
function rmdirTree(path: string): void {
  let entries: string[];
  try {
    entries = readdirSync(path, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return;
  }
  for (const e of entries) rmdirTree(join(path, e));
  try {
    rmdirSync(path);
  } catch {
    /* populated or already gone */
  }
}

/** Cgroup directories named in names, at any depth up to maxDepth, in every hierarchy. */
export function findCgroupDirs(names: ReadonlySet<string>, maxDepth = 5): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e);
      if (names.has(e)) found.push(p);
      else if (depth < maxDepth) walk(p, depth + 1);
    }
  };
  for (const m of cgroupMounts()) walk(m, 1);
  return found;
}

/**
 * Removes the cgroups named in names (and their children), wherever they are. rmdir only
 * succeeds on cgroups without tasks, so a live container's cgroup is never touched.
 */
export function removeCgroupDirs(names: ReadonlySet<string>): void {
  removeCgroupPaths(findCgroupDirs(names));
}

export function removeCgroupPaths(paths: readonly string[]): void {
  for (const p of paths) rmdirTree(p);
}

// ---------------------------------------------------------------- crun hybrid-mode fix
// crun 1.8 refuses hybrid cgroups while a controller (here hugetlb) sits on cgroup2. The fix
// mounts each such controller as a v1 hierarchy while crun containers exist. It is global state:
// holders are counted across every lab in this process and the fix is undone after the last.

const holders = new Set<object>();

/** Controllers whose v1 hierarchy reads as live in /proc/cgroups (hierarchy id != 0). */
function hierarchy(controller: string): { id: number; cgroups: number } | undefined {
  for (const line of readFileSync('/proc/cgroups', 'utf8').split('\n')) {
    const [name, id, n] = line.split(/\s+/);
    if (name === controller) return { id: Number(id), cgroups: Number(n) };
  }
  return undefined;
}

function v2Controllers(): string[] {
  try {
    return readFileSync(join(UNIFIED, 'cgroup.controllers'), 'utf8').split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/** Controllers this process moved to v1 (a fix someone else made is left to them). */
const movedControllers = new Set<string>();

export function acquireCrunHybridFix(holder: object): void {
  holders.add(holder);
  for (const c of v2Controllers()) {
    const dir = join(CGROUP_ROOT, c);
    mkdirSync(dir, { recursive: true });
    if (!isMountPoint(dir)) runSync(['mount', '-t', 'cgroup', '-o', c, 'cgroup', dir], { timeoutMs: 10_000 });
    movedControllers.add(c);
  }
}

/**
 * Drops holder; after the last holder, moves the controllers back to cgroup2. A v1 hierarchy that
 * still has child cgroups (even dying ones) at umount survives invisibly and keeps its controller
 * off cgroup2, so: rmdir the children, wait for /proc/cgroups to count only the root, umount, and
 * mount+retry if it survived. Returns false while some child cgroup is still populated (another
 * container is in it): call again once that is gone.
 */
export function releaseCrunHybridFix(holder: object, timeoutMs = 5_000): boolean {
  holders.delete(holder);
  if (holders.size > 0) return true;
  let done = true;
  for (const c of [...movedControllers]) {
    if (restoreController(c, timeoutMs)) movedControllers.delete(c);
    else done = false;
  }
  return done;
}

function restoreController(c: string, timeoutMs: number): boolean {
  const dir = join(CGROUP_ROOT, c);
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 10 && Date.now() < deadline; attempt++) {
    const h = hierarchy(c);
    if (!h || h.id === 0) break; // already back on cgroup2
    mkdirSync(dir, { recursive: true });
    if (!isMountPoint(dir)) runSync(['mount', '-t', 'cgroup', '-o', c, 'cgroup', dir], { timeoutMs: 10_000 });
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(dir, e.name));
    if (readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory())) return false; // populated: leave mounted
    waitSync(() => (hierarchy(c)?.cgroups ?? 1) <= 1, Math.max(0, deadline - Date.now()));
    runSync(['umount', dir], { timeoutMs: 10_000 });
    sleepSync(200);
  }
  if (isMountPoint(dir)) return false;
  try {
    rmdirSync(dir);
  } catch {
    /* not ours to remove or already gone */
  }
  return hierarchy(c)?.id === 0;
}
