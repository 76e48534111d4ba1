import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join } from 'node:path';
import { findCgroupDirs, releaseCrunHybridFix, removeCgroupDirs, removeCgroupPaths } from './runtime-cgroup';
import { CtrDriver } from './runtime-ctr';
import { DOCKER_CLI } from './runtime-daemons';
import { DockerDriver, PodmanDriver } from './runtime-engines';
import { runSync, sleep, waitFor, waitSync, type CommandResult } from './runtime-exec';
import { requires } from './env';
import { buildImage, type ImageFiles } from './runtime-image';
import { OciDriver, specTemplate } from './runtime-oci';
import { hasExeced, isAlive, processesMentioning, terminate, type ProcessRef } from './runtime-proc';
import type { ContainerSpec, Driver, RuntimeName, Started } from './runtime-types';

export type { BindMount, ContainerSpec, RuntimeName, Started } from './runtime-types';
export { RUNTIMES } from './runtime-types';
export { IMAGE_REF } from './runtime-image';
export { hostNamespacePath, isAlive, namespaceOf, processesMentioning, processRef, type ProcessRef } from './runtime-proc';
export { CommandError, type CommandResult } from './runtime-exec';

/**
 * Starts real containers with runc, crun, containerd (ctr), podman and docker, and removes all
 * of it again. Usage in a kernel test:
 *
 *   let lab: RuntimeLab;
 *   beforeAll(async () => { lab = await RuntimeLab.open(); });
 *   afterAll(async () => { await lab?.close(); });   // always: it also undoes global cgroup state
 *
 * containerd and dockerd start on first use with private state, root and socket under the lab's
 * temp dir; the busybox image is imported once per lab as 'localhost/busybox:latest'. A process
 * 'exit' hook tears down labs that were never closed (it cannot run on SIGKILL).
 */
export class RuntimeLab {
  private readonly drivers = new Map<RuntimeName, Driver>();
  private readonly live = new Map<string, { started: Started; watch: ProcessRef[] }>();
  private readonly cgroupNames = new Set<string>();
  private names = 0;
  private closed = false;

  private constructor(
    /** Private temp dir: image, bundles, daemon state. */
    readonly dir: string,
    private readonly image: ImageFiles,
    private readonly template: string | undefined,
    /** Parent cgroups (docker, default, libpod_parent) that existed before: never removed. */
    private readonly cgroupsBefore: Set<string>,
    /** Runtime state dirs under /run that existed before: never removed. */
    private readonly stateDirsBefore: Set<string>,
  ) {}

  /** Whether runtime can run here (root, binaries present); reason says why not. */
  static available(runtime: RuntimeName): { ok: true } | { ok: false; reason: string } {
    if (process.getuid?.() !== 0) return { ok: false, reason: `${runtime} needs root` };
    const missing = REQUIRED[runtime].filter((b) => !which(b));
    return missing.length ? { ok: false, reason: `${runtime}: not installed (${missing.join(', ')} missing)` } : { ok: true };
  }

  static async open(): Promise<RuntimeLab> {
    const dir = mkdtempSync('/tmp/ctrwatch-lab-');
    try {
      const image = await buildImage(join(dir, 'image'));
      const tool = which('runc') ? 'runc' : which('crun') ? 'crun' : undefined;
      const template = tool && (await specTemplate(join(dir, 'template'), tool));
      const cgroups = new Set(findCgroupDirs(new Set(PARENT_CGROUPS)));
      const lab = new RuntimeLab(dir, image, template, cgroups, new Set(STATE_DIRS.filter((d) => existsSync(d))));
      openLabs.add(lab);
      installExitHook();
      return lab;
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Starts a container (detached unless spec.detach is false) and, when detached, returns once its
   * init has exec'd the entrypoint. Throws if the runtime fails.
   */
  async start(runtime: RuntimeName, spec: ContainerSpec): Promise<Started> {
    if (this.closed) throw new Error('RuntimeLab is closed');
    const av = RuntimeLab.available(runtime);
    if (!av.ok) throw new Error(av.reason);
    const name = spec.name ?? `cwt-${basename(this.dir).slice(-6)}-${++this.names}`;
    const driver = this.driver(runtime);
    this.cgroupNames.add(name);
    const { started, watch } = await driver.start(spec, name);
    for (const n of driver.cgroupNames(started)) this.cgroupNames.add(n);
    const pid = started.initPid;
    if (pid === undefined) {
      removeCgroupDirs(new Set(driver.cgroupNames(started))); // ran to completion: already removed
      return started;
    }
    this.live.set(key(started), { started, watch });
    if (!(await waitFor(() => hasExeced(pid), 10_000))) {
      throw new Error(`${runtime} ${started.id}: init ${pid} did not exec ${spec.args[0]} within 10 s`);
    }
    return started;
  }

  /** Runs args inside c (runc exec, ctr tasks exec, docker exec, …); code is the process's exit status. */
  async exec(c: Started, args: string[]): Promise<CommandResult> {
    return this.driver(c.runtime).exec(c, args);
  }

  /** Kills and deletes c, waits for its processes to go, removes its cgroups. Idempotent. */
  async stop(c: Started): Promise<void> {
    const rec = this.live.get(key(c));
    if (!rec) return;
    this.live.delete(key(c));
    this.stopRecord(rec.started, rec.watch);
  }

  /** The runtime's CLI with the lab's private flags (starts its daemon), e.g. for `docker ps`. */
  async cli(runtime: RuntimeName): Promise<string[]> {
    return this.driver(runtime).cli();
  }

  /** Daemons this lab started, with the processes they started that must die with them. */
  daemons(): { name: string; process: ProcessRef }[] {
    return [...this.drivers.values()].flatMap((d) =>
      d
        .daemons()
        .flatMap((x) => [{ name: x.name, process: x.process }, ...x.helpers.map((h) => ({ name: `${x.name}/child`, process: h }))]),
    );
  }

  /**
   * Removes every container, stops the daemons (by pid, waiting for exit), kills any process left
   * that names the lab dir (shims, conmon), undoes the crun cgroup fix, removes the cgroups and
   * mounts (dockerd's netns) it left and the temp dir. Idempotent; every step runs even when an
   * earlier one fails, and the failures are thrown together at the end.
   */
  async close(): Promise<void> {
    const reaped = [...this.drivers.values()].flatMap((d) => d.daemons().map((x) => x.reaped));
    try {
      this.teardownSync();
    } finally {
      await Promise.race([Promise.all(reaped), sleep(5_000)]);
    }
  }

  /** close(), synchronously: also run by the process 'exit' hook. */
  teardownSync(): void {
    if (this.closed) return;
    this.closed = true;
    openLabs.delete(this);
    const problems: Error[] = [];
    const step = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (e) {
        problems.push(new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
      }
    };
    for (const { started, watch } of this.live.values())
      step(`stop ${started.runtime} ${started.id}`, () => this.stopRecord(started, watch));
    this.live.clear();
    for (const [name, d] of this.drivers) {
      step(`stop ${name} daemons`, () => {
        const stuck = d.closeSync();
        if (stuck.length) throw new Error(`would not die: ${stuck.join(', ')}`);
      });
    }
    step('leftover processes', () => {
      const left = processesMentioning(this.dir);
      for (const p of left) terminate(p, 2_000);
      if (left.length) throw new Error(`killed ${left.map((p) => `${p.pid} (${p.args})`).join('; ')}`);
    });
    step('crun hybrid-cgroup fix', () => {
      if (!releaseCrunHybridFix(this)) throw new Error('a v1 hugetlb hierarchy still has cgroups: not moved back to cgroup2');
    });
    step('cgroups', () => {
      const parents = findCgroupDirs(new Set(this.usedParents())).filter((p) => !this.cgroupsBefore.has(p));
      removeCgroupDirs(this.cgroupNames);
      removeCgroupPaths(parents);
    });
    step('runtime state dirs', () => {
      for (const d of STATE_DIRS.filter((x) => !this.stateDirsBefore.has(x))) {
        try {
          rmdirSync(d); // only when empty
        } catch {
          /* in use or gone */
        }
      }
    });
    step('mounts', () => unmountUnder(this.dir));
    step('temp dir', () => {
      const left = mountsUnder(this.dir);
      if (left.length) throw new Error(`still mounted, not removed: ${left.join(', ')}`);
      rmSync(this.dir, { recursive: true, force: true });
    });
    if (problems.length) throw new AggregateError(problems, `RuntimeLab.close: ${problems.map((p) => p.message).join(' | ')}`);
  }

  private stopRecord(c: Started, watch: ProcessRef[]): void {
    const driver = this.driver(c.runtime);
    let stuck: ProcessRef[] = [];
    try {
      driver.stopSync(c);
    } finally {
      // podman's conmon exits about a second after `podman rm`
      stuck = watch.filter((p) => !waitSync(() => !isAlive(p), 10_000) && !terminate(p, 1_000));
      removeCgroupDirs(new Set(driver.cgroupNames(c)));
    }
    if (stuck.length) throw new Error(`${c.runtime} ${c.id}: processes would not die: ${stuck.map((p) => p.pid).join(', ')}`);
  }

  private driver(runtime: RuntimeName): Driver {
    let d = this.drivers.get(runtime);
    if (d) return d;
    const dir = join(this.dir, runtime);
    switch (runtime) {
      case 'runc':
      case 'crun':
        if (!this.template) throw new Error('no runc or crun to make an OCI bundle template');
        d = new OciDriver(runtime, dir, this.template, this.image.rootfs);
        break;
      case 'containerd':
        d = new CtrDriver(dir, this.image.dockerArchive);
        break;
      case 'podman':
        d = new PodmanDriver(dir, this.image.rootfsTar);
        break;
      case 'docker':
        d = new DockerDriver(dir, this.image.rootfsTar);
        break;
    }
    this.drivers.set(runtime, d);
    return d;
  }

  private usedParents(): string[] {
    return [...this.drivers.values()].flatMap((d) => d.cgroupParents);
  }
}

const PARENT_CGROUPS = ['docker', 'default', 'libpod_parent'];
/** Fixed state dirs runc, crun and containerd's shims create (deepest first). */
const STATE_DIRS = [
  '/run/containerd/runc/default',
  '/run/containerd/runc',
  '/run/containerd/s',
  '/run/containerd/fifo',
  '/run/containerd',
  '/run/runc',
  '/run/crun',
];

const REQUIRED: Record<RuntimeName, string[]> = {
  runc: ['runc'],
  crun: ['crun'],
  containerd: ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc'],
  podman: ['podman', 'conmon', 'runc'],
  docker: ['dockerd', DOCKER_CLI, 'containerd', 'containerd-shim-runc-v2', 'runc'],
};

const key = (c: Started) => `${c.runtime}:${c.id}`;

function which(bin: string): string | undefined {
  const dirs = isAbsolute(bin) ? [''] : [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = d ? join(d, bin) : bin;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Mount points at or below dir, deepest first (mountinfo escapes spaces as \040). */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
}

function unmountUnder(dir: string): void {
  for (const m of mountsUnder(dir)) {
    try {
      runSync(['umount', m], { timeoutMs: 10_000 });
    } catch {
      runSync(['umount', '-l', m], { timeoutMs: 10_000 });
    }
  }
}

const openLabs = new Set<RuntimeLab>();
let exitHook = false;

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const lab of [...openLabs]) {
      try {
        lab.teardownSync();
      } catch (e) {
        process.stderr.write(`RuntimeLab exit hook: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
  });
}

/** Whether tests of one runtime can run here; under CI=true a missing runtime fails the run. */
export function runtimeReady(rt: RuntimeName): boolean {
  const av = RuntimeLab.available(rt);
  return requires(av.ok, av.ok ? rt : av.reason);
}
