import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOCKER_CLI, dockerEnv, dockerPaths, startDockerd, stopDaemon, type Daemon } from './runtime-daemons';
import { ANY_CODE, CommandError, deleteSync, run, type CommandResult } from './runtime-exec';
import { IMAGE_REF } from './runtime-image';
import { boundingCapabilities } from './runtime-oci';
import { processRef, type ProcessRef } from './runtime-proc';
import type { ContainerSpec, Driver, DriverStart, Started } from './runtime-types';

/**
 * podman and docker: the same `run` flags, an imported image, a 64-hex id from --cidfile.
 * Exit status 125 is the engine's own failure, never the container's.
 */
abstract class EngineDriver implements Driver {
  abstract readonly cgroupParents: readonly string[];
  protected abstract readonly runtime: 'podman' | 'docker';
  private ready?: Promise<void>;
  private starts = 0;

  constructor(
    protected readonly dir: string,
    private readonly rootfsTar: string,
  ) {}

  /** CLI argv with the lab's private flags. */
  protected abstract base(): string[];
  protected abstract env(): NodeJS.ProcessEnv | undefined;
  /** Flags that differ: privileged, annotations, ulimits. */
  protected abstract extraFlags(spec: ContainerSpec, name: string): string[];
  /** Processes besides init that must be gone after stop (podman's conmon). */
  protected abstract helpers(name: string): ProcessRef[];
  protected abstract daemonStart(): Promise<void>;
  protected abstract rmArgs(): string[];
  abstract cgroupNames(c: Started): string[];
  abstract daemons(): Daemon[];
  abstract closeSync(): string[];

  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      await this.daemonStart();
      await run([...this.base(), 'import', this.rootfsTar, IMAGE_REF], { timeoutMs: 60_000, env: this.env() });
    })();
    return this.ready;
  }

  async start(spec: ContainerSpec, name: string): Promise<DriverStart> {
    if (spec.restart && spec.detach === false) throw new Error(`${this.runtime}: a restart policy needs a detached container`);
    for (const m of spec.mounts ?? []) if (/,/.test(m.source + m.destination)) throw new Error(`mount path with a comma: ${m.source}`);
    await this.prepare();
    const files = join(this.dir, 'cid');
    mkdirSync(files, { recursive: true });
    const cidFile = join(files, `${name}-${++this.starts}`);
    const flags = ['--name', name, '--cidfile', cidFile, '--network', spec.hostNet ? 'host' : 'none'];
    if (spec.hostPid) flags.push('--pid', 'host');
    if (spec.hostCgroupns) flags.push('--cgroupns', 'host');
    for (const m of spec.mounts ?? []) {
      flags.push('--mount', `type=bind,source=${m.source},target=${m.destination}${m.readonly ? ',readonly=true' : ''}`);
    }
    if (spec.user !== undefined) flags.push('--user', `${spec.user}:${spec.user}`);
    if (spec.restart) flags.push('--restart', spec.restart);
    flags.push(...this.extraFlags(spec, name));
    const detached = spec.detach !== false;
    const argv = [...this.base(), 'run', detached ? '-d' : '--rm', ...flags, IMAGE_REF, ...spec.args];
    const timeoutMs = spec.timeoutMs ?? 60_000;
    const cid = () => (existsSync(cidFile) ? readFileSync(cidFile, 'utf8').trim() : '');

    let r: CommandResult;
    try {
      r = await run(argv, { timeoutMs, env: this.env(), okCodes: detached ? [0] : ANY_CODE });
      if (r.code === 125) throw new CommandError(argv, r, 'exited with 125 (engine error)');
    } catch (e) {
      // Only what this run created (the cidfile says so): never a namesake.
      if (cid()) this.stopSync({ runtime: this.runtime, id: cid(), name });
      throw e;
    }
    const started: Started = { runtime: this.runtime, id: cid(), name, image: IMAGE_REF };
    if (!detached) return { started: { ...started, exitCode: r.code, stdout: r.stdout }, watch: [] };
    try {
      const pid = await run([...this.base(), 'inspect', '-f', '{{.State.Pid}}', started.id], { env: this.env() });
      started.initPid = Number(pid.stdout.trim());
    } catch (e) {
      this.stopSync(started);
      throw e;
    }
    const init = processRef(started.initPid);
    return { started, watch: [...(init ? [init] : []), ...this.helpers(name)] };
  }

  exec(c: Started, args: string[]): Promise<CommandResult> {
    return run([...this.base(), 'exec', c.id, ...args], { env: this.env(), okCodes: ANY_CODE });
  }

  stopSync(c: Started): void {
    if (!this.ready) return;
    deleteSync([...this.base(), 'rm', ...this.rmArgs(), c.id], { env: this.env() });
  }

  async cli(): Promise<string[]> {
    await this.prepare();
    return this.base();
  }
}

/** podman with private storage and tmp dirs, cgroupfs, runc (crun fails in hybrid mode). */
export class PodmanDriver extends EngineDriver {
  readonly cgroupParents: readonly string[] = ['libpod_parent'];
  protected readonly runtime = 'podman';

  protected base(): string[] {
    const d = this.dir;
    return [
      'podman',
      '--root',
      join(d, 'root'),
      '--runroot',
      join(d, 'runroot'),
      '--tmpdir',
      join(d, 'tmp'),
      '--volumepath',
      join(d, 'volumes'),
      '--network-config-dir',
      join(d, 'networks'),
      '--storage-driver',
      'overlay',
      '--cgroup-manager',
      'cgroupfs',
      '--events-backend',
      'file',
      '--runtime',
      'runc',
    ];
  }

  protected env(): undefined {
    return undefined;
  }

  private conmonPidFile(name: string): string {
    return join(this.dir, 'cid', `${name}.conmon.pid`);
  }

  protected extraFlags(spec: ContainerSpec, name: string): string[] {
    // Podman's default RLIMIT_NOFILE/NPROC exceed the hard limits, and raising them needs
    // CAP_SYS_RESOURCE, which this machine lacks ("error setting rlimit type 7").
    const flags = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
    flags.push('--conmon-pidfile', this.conmonPidFile(name));
    if (spec.privileged) flags.push('--privileged');
    for (const [k, v] of Object.entries(spec.annotations ?? {})) flags.push('--annotation', `${k}=${v}`);
    return flags;
  }

  protected helpers(name: string): ProcessRef[] {
    const file = this.conmonPidFile(name);
    const ref = existsSync(file) ? processRef(Number(readFileSync(file, 'utf8').trim())) : undefined;
    return ref ? [ref] : [];
  }

  protected async daemonStart(): Promise<void> {}

  protected rmArgs(): string[] {
    return ['--force', '--time', '0'];
  }

  cgroupNames(c: Started): string[] {
    return [`libpod-${c.id}`, `libpod-conmon-${c.id}`];
  }

  daemons(): Daemon[] {
    return [];
  }

  closeSync(): string[] {
    return [];
  }
}

/** docker.io: a private dockerd (started on first use) and docker.io's own CLI. */
export class DockerDriver extends EngineDriver {
  readonly cgroupParents: readonly string[] = ['docker'];
  protected readonly runtime = 'docker';
  private readonly paths = dockerPaths(this.dir);
  private daemon?: Daemon;

  protected base(): string[] {
    return [DOCKER_CLI, '-H', this.paths.host];
  }

  protected env(): NodeJS.ProcessEnv {
    return dockerEnv(this.paths);
  }

  protected extraFlags(spec: ContainerSpec): string[] {
    const flags: string[] = [];
    // --privileged asks for every capability; without CAP_SYS_RESOURCE in our bounding set it
    // fails ("unable to apply caps"), so use the flag set that gives the same container.
    if (spec.privileged && boundingCapabilities().includes('CAP_SYS_RESOURCE')) flags.push('--privileged');
    else if (spec.privileged) {
      flags.push('--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE', '--device-cgroup-rule', 'a *:* rwm');
      for (const o of ['seccomp=unconfined', 'apparmor=unconfined', 'systempaths=unconfined']) flags.push('--security-opt', o);
    }
    for (const [k, v] of Object.entries(spec.annotations ?? {})) flags.push('--label', `${k}=${v}`);
    return flags;
  }

  protected helpers(): ProcessRef[] {
    return [];
  }

  protected async daemonStart(): Promise<void> {
    this.daemon = await startDockerd(this.paths);
  }

  protected rmArgs(): string[] {
    return ['--force'];
  }

  cgroupNames(c: Started): string[] {
    return [c.id];
  }

  daemons(): Daemon[] {
    return this.daemon ? [this.daemon] : [];
  }

  closeSync(): string[] {
    return this.daemon ? stopDaemon(this.daemon) : [];
  }
}
