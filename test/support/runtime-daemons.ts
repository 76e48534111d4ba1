import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { scaled } from './env';
import { CommandError, run, sleep } from './runtime-exec';
import { childrenOf, isAlive, processRef, terminate, type ProcessRef } from './runtime-proc';

/** A daemon the lab started, stopped by pid (there is no systemd here). */
export interface Daemon {
  name: string;
  process: ProcessRef;
  log: string;
  /** Processes it started that must go with it (dockerd's containerd). */
  helpers: ProcessRef[];
  /** Settles when Node has reaped it (else it lingers as a zombie once we exit). */
  reaped: Promise<void>;
}

export async function startDaemon(name: string, argv: string[], log: string, ready: string[], readyMs = 30_000): Promise<Daemon> {
  const timeoutMs = scaled(readyMs);
  const fd = openSync(log, 'a');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const reaped = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawned = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid ?? -1));
    child.once('error', (e) =>
      reject(new CommandError(argv, undefined, `could not start (${(e as NodeJS.ErrnoException).code})`, { cause: e })),
    );
  });
  const ref = processRef(spawned);
  if (!ref) throw new CommandError(argv, { code: -1, stdout: '', stderr: tail(log) }, 'exited at once');
  const daemon: Daemon = { name, process: ref, log, helpers: [], reaped };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(ref))
      throw new CommandError(argv, { code: child.exitCode ?? -1, stdout: '', stderr: tail(log) }, 'exited before it was ready');
    try {
      await run(ready, { timeoutMs: 5_000 });
      return daemon;
    } catch (e) {
      if (Date.now() > deadline) {
        stopDaemon(daemon);
        throw new CommandError(argv, { code: -1, stdout: '', stderr: tail(log) }, `not ready after ${timeoutMs} ms`, { cause: e });
      }
      await sleep(50);
    }
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-3000);
  } catch {
    return '';
  }
}

/** SIGTERM, wait (SIGKILL after graceMs), then its helpers. Returns the names of what would not die. */
export function stopDaemon(d: Daemon, graceMs = 20_000): string[] {
  const stuck: string[] = [];
  if (!terminate(d.process, graceMs)) stuck.push(`${d.name} (pid ${d.process.pid})`);
  for (const h of d.helpers) if (!terminate(h, 5_000)) stuck.push(`${d.name} helper (pid ${h.pid})`);
  return stuck;
}

// ---------------------------------------------------------------- containerd, private everything
export interface ContainerdPaths {
  /** Its config and log. */
  dir: string;
  socket: string;
  /** containerd's persistent root and its state (bundles, shims' sockets). */
  root: string;
  state: string;
}

export function containerdPaths(dir: string): ContainerdPaths {
  return { dir, socket: join(dir, 'containerd.sock'), root: join(dir, 'root'), state: join(dir, 'state') };
}

export async function startContainerd(p: ContainerdPaths): Promise<Daemon> {
  mkdirSync(p.dir, { recursive: true });
  const config = join(p.dir, 'config.toml');
  // CRI is disabled: ctr does not need it, and it would set up CNI/netns state of its own.
  writeFileSync(
    config,
    [
      'version = 2',
      `root = ${JSON.stringify(p.root)}`,
      `state = ${JSON.stringify(p.state)}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(p.socket)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(p.socket + '.ttrpc')}`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(join(p.dir, 'opt'))}`,
      '',
    ].join('\n'),
  );
  return startDaemon('containerd', ['containerd', '--config', config], join(p.dir, 'containerd.log'), ['ctr', '-a', p.socket, 'version']);
}

// ---------------------------------------------------------------- dockerd, private everything
export const DOCKER_CLI = '/usr/bin/docker'; // docker.io's CLI; a newer one may come first in PATH

export interface DockerPaths {
  dir: string;
  host: string;
  execRoot: string;
  dataRoot: string;
  /** DOCKER_CONFIG for the CLI, so that it never reads or writes ~/.docker. */
  cliConfig: string;
}

export function dockerPaths(dir: string): DockerPaths {
  return {
    dir,
    host: `unix://${join(dir, 'docker.sock')}`,
    execRoot: join(dir, 'exec'),
    dataRoot: join(dir, 'data'),
    cliConfig: join(dir, 'cli'),
  };
}

export function dockerEnv(p: DockerPaths): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_CONFIG: p.cliConfig };
}

/**
 * The containerd dockerd would start for itself, at the paths it would give it (so a container's
 * bundle lies under dockerd's exec root as usual), started and waited for by us.
 */
function dockerContainerdPaths(p: DockerPaths): ContainerdPaths {
  const state = join(p.execRoot, 'containerd');
  return {
    dir: join(p.dir, 'containerd'),
    socket: join(state, 'containerd.sock'),
    root: join(p.dataRoot, 'containerd', 'daemon'),
    state: join(state, 'daemon'),
  };
}

export async function startDockerd(p: DockerPaths): Promise<Daemon> {
  mkdirSync(p.cliConfig, { recursive: true });
  const configFile = join(p.dir, 'daemon.json'); // also keeps the trust key (key.json) in p.dir
  writeFileSync(configFile, '{}\n');
  // dockerd left to start its own containerd gives it a fixed 15 s ("timeout waiting for
  // containerd to start"), which a loaded or emulated machine misses; so start it here, with the
  // readiness wait every lab daemon gets, and point dockerd at it.
  const cp = dockerContainerdPaths(p);
  mkdirSync(dirname(cp.socket), { recursive: true });
  const containerd = await startContainerd(cp);
  const argv = [
    'dockerd',
    '--config-file',
    configFile,
    '--containerd',
    cp.socket,
    '--iptables=false',
    '--ip-masq=false',
    '--bridge=none',
    '--userland-proxy=false',
    '-H',
    p.host,
    '--data-root',
    p.dataRoot,
    '--exec-root',
    p.execRoot,
    '--pidfile',
    join(p.dir, 'dockerd.pid'),
  ];
  let d: Daemon;
  try {
    d = await startDaemon('dockerd', argv, join(p.dir, 'dockerd.log'), [DOCKER_CLI, '-H', p.host, 'version']);
  } catch (e) {
    stopDaemon(containerd);
    throw e;
  }
  // Its containerd, and anything it started itself, must be gone before the lab is: stopped
  // after dockerd, which then has no containerd to wait for.
  d.helpers.push(containerd.process);
  for (const pid of childrenOf(d.process.pid)) {
    const ref = processRef(pid);
    if (ref) d.helpers.push(ref);
  }
  const reaped = d.reaped;
  d.reaped = Promise.all([reaped, containerd.reaped]).then(() => undefined);
  return d;
}
