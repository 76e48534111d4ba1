import type { CommandResult } from './runtime-exec';
import type { Daemon } from './runtime-daemons';
import type { ProcessRef } from './runtime-proc';

export type RuntimeName = 'runc' | 'crun' | 'containerd' | 'podman' | 'docker';
export const RUNTIMES: readonly RuntimeName[] = ['runc', 'crun', 'containerd', 'podman', 'docker'];

export interface BindMount {
  source: string;
  destination: string;
  readonly?: boolean;
}

export interface ContainerSpec {
  /** Entrypoint argv, e.g. ['/bin/sleep', '300'] or ['/bin/true']. */
  args: string[];
  /**
   * Every capability this machine's bounding set holds, no seccomp, no masked or read-only
   * paths, all devices. docker: `--privileged` where the bounding set is full, else the flag set
   * that works without CAP_SYS_RESOURCE (so hostconfig.json then says Privileged: false).
   */
  privileged?: boolean;
  /** Share the host's pid namespace. */
  hostPid?: boolean;
  /** Share the host's network namespace (otherwise a private one with no interfaces but lo). */
  hostNet?: boolean;
  /** Share the host's cgroup namespace (runtimes give containers their own on cgroup v2 nodes). */
  hostCgroupns?: boolean;
  /** Bind mounts (rbind); sources must exist and contain no comma. */
  mounts?: BindMount[];
  /** uid (and gid) of the entrypoint. Not supported by ctr 1.6. */
  user?: number;
  /** Runtime id (runc/crun/ctr) or name (podman/docker); unique 'cwt-…' when absent. */
  name?: string;
  /** Default true. false: run to completion and report the exit code (container removed after). */
  detach?: boolean;
  /** docker and podman only. */
  restart?: 'always' | 'unless-stopped';
  /** OCI annotations (runc, crun, ctr, podman); container labels for docker, which has no annotations. */
  annotations?: Record<string, string>;
  /** Timeout for the start (or, when not detached, the whole run). Default 60 s. */
  timeoutMs?: number;
}

export interface Started {
  runtime: RuntimeName;
  /** runc/crun id; ctr container name; docker/podman full 64-hex id. */
  id: string;
  name: string;
  /** 'localhost/busybox:latest' for image-based runtimes; absent for runc/crun bundles. */
  image?: string;
  /** Host pid of the container's init, when detached. */
  initPid?: number;
  /** Exit code of the entrypoint, when not detached. */
  exitCode?: number;
  /** stdout of the entrypoint, when not detached. */
  stdout?: string;
  /** runc/crun: the OCI bundle directory (config.json inside). */
  bundle?: string;
}

/** What a runtime driver hands back to the lab: the container and processes that must die with it. */
export interface DriverStart {
  started: Started;
  watch: ProcessRef[];
}

/** One runtime, as the lab drives it. Teardown is synchronous so that an 'exit' handler can run it. */
export interface Driver {
  start(spec: ContainerSpec, name: string): Promise<DriverStart>;
  exec(c: Started, args: string[]): Promise<CommandResult>;
  /** Kill and delete c; a container that is already gone is not an error. */
  stopSync(c: Started): void;
  /** The runtime's CLI with the lab's private flags, e.g. ['/usr/bin/docker', '-H', 'unix://…']. */
  cli(): Promise<string[]>;
  /** Names of cgroup directories c may leave behind. */
  cgroupNames(c: Started): string[];
  /** Parent cgroups the runtime creates, e.g. 'docker'; removed when the lab made them and they are empty. */
  readonly cgroupParents: readonly string[];
  /** Daemons started so far. */
  daemons(): Daemon[];
  /** Stops its daemons; returns what would not die. */
  closeSync(): string[];
}
