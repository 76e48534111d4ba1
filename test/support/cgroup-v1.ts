import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Remove a named cgroup v1 hierarchy ("name=<name>") that a test's release_agent escape made:
 * mount it, remove its cgroups, unmount, until the kernel has let it go.
 */
export function dropNamedHierarchy(name: string): void {
  const exists = () =>
    readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .some((l) => l.split(':')[1] === `name=${name}`);
  const at = mkdtempSync(join(tmpdir(), 'cw-cgv1-'));
  try {
    for (let attempt = 0; attempt < 10 && exists(); attempt++) {
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
      const until = Date.now() + 1_000;
      while (exists() && Date.now() < until) execFileSync('sleep', ['0.05']);
    }
  } finally {
    rmdirSync(at);
  }
  if (exists()) throw new Error(`cgroup v1 hierarchy name=${name} still exists after 10 tries`);
}
