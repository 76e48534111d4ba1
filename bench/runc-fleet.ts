/**
 * Real runc containers for the footprint part's loaded reads: each a busybox `sleep` from one
 * read-only root, with a bundle of its own (its own config.json, as every runtime writes one per
 * container) and a cgroup under one parent made for this fleet. All of them, their cgroups and
 * their files are removed by removeAll(), and at the bench's exit whatever is left.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'];
const live = new Set<RuncFleet>();
process.on('exit', () => {
  for (const f of live) f.removeAll();
});

/** Every cgroup hierarchy mounted under /sys/fs/cgroup (v1's controllers, v2's root): where runc makes a container's cgroup. */
function hierarchies(): string[] {
  const root = '/sys/fs/cgroup';
  if (existsSync(join(root, 'cgroup.controllers'))) return [root];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(root, d.name))
    .filter((d) => existsSync(join(d, 'cgroup.procs')));
}

/** rmdir a cgroup directory and what is below it, deepest first (cgroupfs refuses rm -r). */
function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const d of readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) removeCgroupTree(join(dir, d.name));
  try {
    rmdirSync(dir);
  } catch {
    /* a task still in it: left, and named by the bench's leftover check */
  }
}

export class RuncFleet {
  readonly dir = mkdtempSync(join(tmpdir(), 'cwbench-fleet-'));
  private readonly state = join(this.dir, 'runc');
  private readonly rootfs = join(this.dir, 'rootfs');
  private readonly parent = `cwbench-fleet-${process.pid}`;
  private readonly config: Record<string, unknown>;
  readonly ids: string[] = [];

  constructor() {
    live.add(this);
    const busybox = BUSYBOX.find((p) => existsSync(p));
    if (!busybox) throw new Error('no busybox at /bin/busybox (package busybox-static): the loaded footprint needs it');
    for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp']) mkdirSync(join(this.rootfs, d), { recursive: true });
    copyFileSync(busybox, join(this.rootfs, 'bin', 'busybox'));
    symlinkSync('busybox', join(this.rootfs, 'bin', 'sleep'));
    const spec = join(this.dir, 'spec');
    mkdirSync(spec);
    execFileSync('runc', ['spec'], { cwd: spec, stdio: 'ignore' });
    const c = JSON.parse(readFileSync(join(spec, 'config.json'), 'utf8')) as {
      process: Record<string, unknown>;
      root: Record<string, unknown>;
      linux: Record<string, unknown>;
    };
    c.process.terminal = false;
    c.process.args = ['/bin/sleep', '86400'];
    c.root = { path: this.rootfs, readonly: true };
    this.config = c;
  }

  /** Starts containers until `total` run (detached: runc's init exits, the sleep stays, reparented). */
  growTo(total: number): void {
    while (this.ids.length < total) {
      const id = `cwfp-${process.pid}-${this.ids.length}`;
      const bundle = join(this.dir, 'bundles', id);
      mkdirSync(bundle, { recursive: true });
      const c = this.config as { linux: Record<string, unknown> };
      writeFileSync(join(bundle, 'config.json'), JSON.stringify({ ...c, linux: { ...c.linux, cgroupsPath: `/${this.parent}/${id}` } }));
      this.ids.push(id);
      execFileSync('runc', ['--root', this.state, 'run', '-d', '--bundle', bundle, id], { stdio: 'ignore', timeout: 30_000 });
    }
  }

  /** Stops and deletes every container, then removes their cgroups' parent and the fleet's files. Idempotent. */
  removeAll(): void {
    for (const id of this.ids.splice(0)) {
      try {
        execFileSync('runc', ['--root', this.state, 'delete', '--force', id], { stdio: 'ignore', timeout: 30_000 });
      } catch {
        /* never made, or gone already */
      }
    }
    for (const h of hierarchies()) removeCgroupTree(join(h, this.parent));
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}
