import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerdPaths, startContainerd, stopDaemon, type Daemon } from './runtime-daemons';
import { ANY_CODE, deleteSync, run, type CommandResult } from './runtime-exec';
import { IMAGE_REF } from './runtime-image';
import { hostNamespacePath, processRef } from './runtime-proc';
import type { ContainerSpec, Driver, DriverStart, Started } from './runtime-types';

/** containerd + ctr: a private containerd (started on first use), namespace 'default'. */
export class CtrDriver implements Driver {
  readonly cgroupParents: readonly string[] = ['default']; // cgroup /<namespace>/<id>
  private readonly paths;
  private daemon?: Daemon;
  private ready?: Promise<void>;
  private execs = 0;

  constructor(
    private readonly dir: string,
    private readonly dockerArchive: string,
  ) {
    this.paths = containerdPaths(dir);
  }

  private get ctr(): string[] {
    return ['ctr', '-a', this.paths.socket];
  }

  /** Daemon and image, once. */
  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      this.daemon = await startContainerd(this.paths);
      await run([...this.ctr, 'images', 'import', this.dockerArchive], { timeoutMs: 60_000 });
    })();
    return this.ready;
  }

  async start(spec: ContainerSpec, name: string): Promise<DriverStart> {
    if (spec.user !== undefined) throw new Error('ctr 1.6 run has no --user');
    if (spec.restart) throw new Error('ctr has no restart policy');
    await this.prepare();
    const fifos = join(this.dir, 'fifo');
    mkdirSync(fifos, { recursive: true });
    const flags = ['--fifo-dir', fifos];
    if (spec.privileged) flags.push('--privileged');
    if (spec.hostNet) flags.push('--net-host');
    if (spec.hostPid) flags.push('--with-ns', `pid:${hostNamespacePath('pid')}`);
    if (spec.hostCgroupns) flags.push('--with-ns', `cgroup:${hostNamespacePath('cgroup')}`);
    for (const m of spec.mounts ?? []) {
      flags.push('--mount', `type=bind,src=${m.source},dst=${m.destination},options=rbind:${m.readonly ? 'ro' : 'rw'}`);
    }
    for (const [k, v] of Object.entries(spec.annotations ?? {})) flags.push('--annotation', `${k}=${v}`);
    const timeoutMs = spec.timeoutMs ?? 60_000;

    if (spec.detach === false) {
      const r = await run([...this.ctr, 'run', '--rm', ...flags, IMAGE_REF, name, ...spec.args], { timeoutMs, okCodes: ANY_CODE });
      return { started: { runtime: 'containerd', id: name, name, image: IMAGE_REF, exitCode: r.code, stdout: r.stdout }, watch: [] };
    }
    const logs = join(this.dir, 'logs');
    mkdirSync(logs, { recursive: true });
    const pidFile = join(logs, `${name}.pid`);
    const detach = ['-d', '--log-uri', `file://${join(logs, `${name}.log`)}`, '--pid-file', pidFile];
    const started: Started = { runtime: 'containerd', id: name, name, image: IMAGE_REF };
    try {
      await run([...this.ctr, 'run', ...detach, ...flags, IMAGE_REF, name, ...spec.args], { timeoutMs });
      started.initPid = Number(readFileSync(pidFile, 'utf8').trim());
    } catch (e) {
      if (!/already exists/.test(String(e))) this.stopSync(started); // never remove a namesake
      throw e;
    }
    const ref = processRef(started.initPid);
    return { started, watch: ref ? [ref] : [] };
  }

  exec(c: Started, args: string[]): Promise<CommandResult> {
    const execId = `exec-${++this.execs}`;
    return run([...this.ctr, 'tasks', 'exec', '--exec-id', execId, '--fifo-dir', join(this.dir, 'fifo'), c.id, ...args], {
      okCodes: ANY_CODE,
    });
  }

  stopSync(c: Started): void {
    if (!this.daemon) return;
    deleteSync([...this.ctr, 'tasks', 'delete', '--force', c.id]);
    deleteSync([...this.ctr, 'containers', 'delete', c.id]);
  }

  async cli(): Promise<string[]> {
    await this.prepare();
    return this.ctr;
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
