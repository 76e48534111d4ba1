import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupLayout } from '../host';
import type { KernelRecord } from '../decode/records';

/**
 * Cgroup id → path in the tracked hierarchy: from cgroup_mkdir records, and
 * from a walk of the hierarchy at startup (a cgroup directory's inode number
 * is its kernfs id). Bounded: cgroups removed are forgotten.
 */
export class CgroupRegistry {
  private readonly paths = new Map<bigint, string>();

  constructor(private readonly layout: CgroupLayout) {}

  onRecord(r: KernelRecord): void {
    if (r.kind === 'cgroup_mkdir' || r.kind === 'cgroup_attach') this.paths.set(r.cgroupId, r.path);
    // rmdir: kept until the lifecycle has used it; forget() drops it.
  }

  forget(id: bigint): void {
    this.paths.delete(id);
  }

  path(id: bigint): string | undefined {
    if (id === 1n) return '/';
    return this.paths.get(id);
  }

  /** Walks the mounted hierarchy (at most maxDirs directories, never through a symlink). */
  walk(maxDirs = 100_000): number {
    const root = this.layout.mount;
    if (!root) return 0;
    let n = 0;
    const stack: string[] = [''];
    while (stack.length && n < maxDirs) {
      const rel = stack.pop()!;
      let st;
      try {
        st = lstatSync(join(root, rel), { bigint: true });
      } catch {
        continue;
      }
      if (!st.isDirectory()) continue;
      this.paths.set(st.ino, rel === '' ? '/' : `/${rel}`);
      n++;
      let entries: import('node:fs').Dirent[] = [];
      try {
        entries = readdirSync(join(root, rel), { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) if (e.isDirectory()) stack.push(rel ? `${rel}/${e.name}` : e.name);
    }
    return n;
  }

  /** The path of a live process's cgroup in the tracked hierarchy, from /proc. */
  pathOfPid(pid: number): string | undefined {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/cgroup`, 'utf8').slice(0, 64 * 1024);
    } catch {
      return undefined;
    }
    for (const line of text.split('\n')) {
      const a = line.indexOf(':');
      const b = line.indexOf(':', a + 1);
      if (a < 0 || b < 0) continue;
      const hier = line.slice(0, a);
      const ctrls = line.slice(a + 1, b).split(',');
      if (this.layout.mode === 'v2' ? hier === '0' : ctrls.includes(this.layout.controller)) return line.slice(b + 1);
    }
    return undefined;
  }

  /** kernfs id of a live process's cgroup (the directory's inode), 0 when unknown. */
  idOfPid(pid: number): bigint {
    const rel = this.pathOfPid(pid);
    if (!rel || !this.layout.mount) return 0n;
    try {
      return lstatSync(join(this.layout.mount, rel), { bigint: true }).ino;
    } catch {
      return 0n;
    }
  }

  get size(): number {
    return this.paths.size;
  }
}
