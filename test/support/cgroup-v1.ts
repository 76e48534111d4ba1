import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether a named cgroup v1 hierarchy (mount -o none,name=NAME) exists. */
export function namedHierarchyExists(name: string): boolean {
  return readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .some((l) => l.split(':')[1] === `name=${name}`);
}

/**
 * Removes a named cgroup v1 hierarchy a test made: mounts it again, removes
 * its child cgroups, unmounts it, and waits for the kernel to let it go
 * (another mount namespace that held it, a container's, may go after the
 * first unmount). Throws when it is still there after ten tries.
 */
export function dropNamedHierarchy(name: string): void {
  const at = mkdtempSync(join(tmpdir(), 'cw-cgv1-'));
  try {
    for (let attempt = 0; attempt < 10 && namedHierarchyExists(name); attempt++) {
      execFileSync('mount', ['-t', 'cgroup', '-o', `none,name=${name}`, 'cgroup', at]);
      try {
        const rmTree = (dir: string): void => {
          for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmTree(join(dir, e.name));
          if (dir !== at) rmdirSync(dir);
        };
        rmTree(at);
      } finally {
        execFileSync('umount', [at]);
      }
      const until = Date.now() + 3_000;
      while (namedHierarchyExists(name) && Date.now() < until) execFileSync('sleep', ['0.05']);
    }
  } finally {
    rmdirSync(at);
  }
  if (namedHierarchyExists(name)) throw new Error(`cgroup v1 hierarchy name=${name} still exists after 10 tries`);
}
