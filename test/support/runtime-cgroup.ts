import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { runSync, waitSync } from './runtime-exec';

/**
 * cgroup state the lab touches: the crun hybrid-mode fix (global, shared by every lab in this
 * process) and the cgroup directories runtimes leave behind.
 */

const CGROUP_ROOT = '/sys/fs/cgroup';
const UNIFIED = join(CGROUP_ROOT, 'unified');

/** (mount point, filesystem type) of every mount, from mountinfo. */
function mounts(): { at: string; fs: string }[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.indexOf('-') > 4)
    .map((f) => ({ at: f[4], fs: f[f.indexOf('-') + 1] }));
}

/** Mount points of every cgroup hierarchy under /sys/fs/cgroup (v1 and v2). */
export function cgroupMounts(): string[] {
  return mounts()
    .filter((m) => (m.fs === 'cgroup' || m.fs === 'cgroup2') && m.at.startsWith(CGROUP_ROOT + '/'))
    .map((m) => m.at);
}

function isMountPoint(path: string): boolean {
  return mounts().some((m) => m.at === path);
}

/** rmdir path and every cgroup below it, deepest first; a busy (populated) cgroup stays. */
function rmdirTree(path: string): void {
  let entries: string[];
  try {
    entries = readdirSync(path, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
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
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
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
//
// Unlike recipes.sh, the hierarchy is mounted in a private directory, not /sys/fs/cgroup/<c>:
// crun only needs the controller gone from cgroup2 and then creates no cgroup in it, so no
// dying child cgroup (about 1.8 s to be freed here) holds up the undo after a crun container.
// runc does find the mount and uses it, so runc containers started meanwhile can still delay it.

const holders = new Set<object>();
/** Controllers this process moved to v1 (a fix someone else made is left to them). */
const moved = new Set<string>();
let mountDir: string | undefined;

/** A controller's v1 hierarchy id (0: on cgroup2) and its number of cgroups, from /proc/cgroups. */
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

const mount = (c: string, dir: string) => runSync(['mount', '-t', 'cgroup', '-o', c, 'cgroup', dir], { timeoutMs: 10_000 });

export function acquireCrunHybridFix(holder: object): void {
  holders.add(holder);
  for (const c of v2Controllers()) {
    mountDir ??= mkdtempSync('/tmp/ctrwatch-cgfix-');
    const dir = join(mountDir, c);
    mkdirSync(dir, { recursive: true });
    mount(c, dir);
    moved.add(c);
  }
}

/**
 * Drops holder; after the last holder, moves the controllers back to cgroup2. A v1 hierarchy that
 * still has child cgroups (even dying ones) at umount survives invisibly and keeps its controller
 * off cgroup2, so: rmdir the children, wait for /proc/cgroups to count only the root, umount, and
 * mount+retry if it survived. Returns false while a child cgroup is still populated (a runc
 * container started meanwhile is in it): call again once that is gone.
 */
export function releaseCrunHybridFix(holder: object, timeoutMs = 5_000): boolean {
  holders.delete(holder);
  if (holders.size > 0 || !mountDir) return true;
  for (const c of [...moved]) if (restoreController(c, join(mountDir, c), timeoutMs)) moved.delete(c);
  if (moved.size > 0) return false;
  rmdirTree(mountDir);
  mountDir = undefined;
  return true;
}

function restoreController(c: string, dir: string, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(0, deadline - Date.now());
  for (let attempt = 0; attempt < 10 && left() > 0; attempt++) {
    if ((hierarchy(c)?.id ?? 0) === 0) break; // back on cgroup2
    mkdirSync(dir, { recursive: true });
    if (!isMountPoint(dir)) mount(c, dir);
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(dir, e.name));
    if (readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory())) return false; // populated: leave mounted
    waitSync(() => (hierarchy(c)?.cgroups ?? 1) <= 1, left());
    runSync(['umount', dir], { timeoutMs: 10_000 });
    // the kernel destroys the hierarchy asynchronously after umount
    waitSync(() => hierarchy(c)?.id === 0, Math.min(2_000, left()));
  }
  return !isMountPoint(dir) && hierarchy(c)?.id === 0;
}
