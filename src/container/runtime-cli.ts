/**
 * What a container's ancestors' command lines say about it: the OCI runtime's
 * `create`/`run` (runc, crun, youki, runsc) with its id, bundle and state root,
 * and above it the manager: containerd's shim (namespace `moby` is Docker's),
 * Podman's or CRI-O's conmon. Pure functions of argv.
 */

export type RuntimeKind = 'RUNC' | 'CRUN' | 'CONTAINERD' | 'DOCKER' | 'PODMAN' | 'CRIO' | 'UNKNOWN';

export interface OciRuntimeCall {
  runtime: 'runc' | 'crun' | 'youki' | 'runsc';
  subcommand: 'create' | 'run' | 'exec';
  id: string;
  bundle?: string;
  root?: string;
  systemdCgroup: boolean;
}

const OCI_RUNTIMES = ['runc', 'crun', 'youki', 'runsc'] as const;
// Options of runc/crun that take a value, global and per command (both --x v and --x=v forms).
const VALUE_OPTS = new Set([
  '--root',
  '--log',
  '--log-format',
  '--criu',
  '--rootless',
  '--cgroup-manager',
  '--bundle',
  '-b',
  '--pid-file',
  '--console-socket',
  '--preserve-fds',
  '--process',
  '-p',
  '--cwd',
  '--env',
  '-e',
  '--user',
  '-u',
  '--additional-gids',
  '-g',
  '--cap',
  '-c',
  '--apparmor',
  '--process-label',
  '--preserve-fds',
  '--cgroup',
]);

export const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** Parses `runc [global opts] create|run|exec [opts] <id>`; undefined when argv is not one. */
export function parseOciRuntime(argv: string[]): OciRuntimeCall | undefined {
  const rt = OCI_RUNTIMES.find((r) => basename(argv[0] ?? '') === r);
  if (!rt) return undefined;
  let sub: OciRuntimeCall['subcommand'] | undefined;
  const opts: Record<string, string> = {};
  const positional: string[] = [];
  let systemd = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('-')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (name === '--systemd-cgroup') systemd = true;
      if (VALUE_OPTS.has(name)) {
        opts[name] = eq > 0 ? a.slice(eq + 1) : (argv[++i] ?? '');
      }
      continue;
    }
    if (!sub) {
      if (a === 'create' || a === 'run' || a === 'exec') sub = a;
      else return undefined; // another subcommand (start, delete, state, …)
      continue;
    }
    positional.push(a);
    if (sub === 'exec') break; // what follows the id is the command
  }
  if (!sub || positional.length === 0) return undefined;
  return {
    runtime: rt,
    subcommand: sub,
    id: sub === 'exec' ? positional[0] : positional[positional.length - 1],
    bundle: opts['--bundle'] ?? opts['-b'],
    root: opts['--root'],
    systemdCgroup: systemd,
  };
}

export interface ManagerCall {
  kind: 'containerd-shim' | 'conmon';
  runtime: RuntimeKind;
  id?: string;
  namespace?: string;
  bundle?: string;
}

function flag(argv: string[], ...names: string[]): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    for (const n of names) {
      if (argv[i] === n) return argv[i + 1];
      if (argv[i].startsWith(`${n}=`)) return argv[i].slice(n.length + 1);
    }
  }
  return undefined;
}

/** containerd-shim-* (-namespace, -id) or conmon (-c/--cid, -b/--bundle). */
export function parseManager(argv: string[]): ManagerCall | undefined {
  const b = basename(argv[0] ?? '');
  if (b.startsWith('containerd-shim')) {
    const namespace = flag(argv, '-namespace', '--namespace');
    return { kind: 'containerd-shim', runtime: namespace === 'moby' ? 'DOCKER' : 'CONTAINERD', namespace, id: flag(argv, '-id', '--id') };
  }
  if (b === 'conmon') {
    // CRI-O passes its own exit and log directories; Podman its --exit-command podman.
    const crio = argv.some((a) => a.includes('crio') || a.includes('cri-o'));
    return { kind: 'conmon', runtime: crio ? 'CRIO' : 'PODMAN', id: flag(argv, '-c', '--cid'), bundle: flag(argv, '-b', '--bundle') };
  }
  return undefined;
}
