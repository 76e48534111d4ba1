import { basename } from '../container/runtime-cli';

/**
 * Runtime and orchestrator command lines: enumeration (T1613), deployment
 * (T1610), local image import or build (T1204.003). Pure functions of argv.
 */
const CLIS = new Set(['docker', 'podman', 'nerdctl', 'crictl', 'ctr', 'kubectl', 'oc', 'runc', 'crun', 'buildah', 'kubeadm']);

/** argv without options (and without the values of the few global options that take one). */
function words(argv: string[]): string[] {
  const out: string[] = [];
  const takesValue = new Set(['-H', '--host', '-a', '--address', '-n', '--namespace', '--context', '--kubeconfig', '--root', '--runroot', '--log', '-c', '--config', '--url', '-s', '--server', '-r', '--runtime-endpoint', '-i', '--image-endpoint', '-o', '--output']);
  for (let i = 1; i < argv.length && out.length < 4; i++) {
    const a = argv[i];
    if (a.startsWith('-')) {
      if (takesValue.has(a)) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

export function cliOf(argv: string[]): string | undefined {
  const b = basename(argv[0] ?? '');
  return CLIS.has(b) ? b : undefined;
}

const ENUM_DOCKER = new Set(['ps', 'ls', 'list', 'images', 'inspect', 'info', 'top', 'stats', 'port']);
const OBJECTS = new Set(['container', 'containers', 'image', 'images', 'network', 'volume', 'pod', 'pods', 'c', 'i', 'task', 'tasks', 't', 'namespace', 'namespaces', 'ns', 'snapshot', 'snapshots', 'node', 'system']);

/** Is this argv an enumeration of containers or cluster resources? Returns what it lists. */
export function enumeration(argv: string[]): string | undefined {
  const cli = cliOf(argv);
  if (!cli) return undefined;
  const w = words(argv);
  const [a, b] = w;
  switch (cli) {
    case 'docker': case 'podman': case 'nerdctl':
      if (ENUM_DOCKER.has(a)) return `${cli} ${a}`;
      if (OBJECTS.has(a) && ENUM_DOCKER.has(b)) return `${cli} ${a} ${b}`;
      return undefined;
    case 'crictl':
      return ['ps', 'pods', 'images', 'img', 'inspect', 'inspectp', 'inspecti', 'info', 'stats', 'statsp'].includes(a) ? `crictl ${a}` : undefined;
    case 'ctr':
      return OBJECTS.has(a) && ['ls', 'list', 'info'].includes(b) ? `ctr ${a} ${b}` : undefined;
    case 'kubectl': case 'oc':
      if (['get', 'describe', 'top', 'api-resources', 'api-versions', 'cluster-info'].includes(a)) return `${cli} ${a}${b ? ` ${b}` : ''}`;
      if (a === 'auth' && b === 'can-i') return `${cli} auth can-i`;
      return undefined;
    case 'runc': case 'crun':
      return ['list', 'state', 'ps'].includes(a) ? `${cli} ${a}` : undefined;
    default:
      return undefined;
  }
}

/** Does this argv deploy a container (run, create, start)? */
export function deployment(argv: string[]): string | undefined {
  const cli = cliOf(argv);
  if (!cli) return undefined;
  const [a, b] = words(argv);
  switch (cli) {
    case 'docker': case 'podman': case 'nerdctl':
      if (['run', 'create', 'start', 'restart'].includes(a)) return `${cli} ${a}`;
      if (a === 'container' && ['run', 'create', 'start', 'restart'].includes(b)) return `${cli} container ${b}`;
      return undefined;
    case 'ctr':
      if (a === 'run' || ((a === 'c' || a === 'container' || a === 'containers') && b === 'create') || ((a === 't' || a === 'task' || a === 'tasks') && b === 'start')) return `ctr ${w2(a, b)}`;
      return undefined;
    case 'crictl':
      return ['run', 'runp', 'create', 'start'].includes(a) ? `crictl ${a}` : undefined;
    case 'kubectl': case 'oc':
      return ['run', 'create', 'apply'].includes(a) ? `${cli} ${a}` : undefined;
    case 'runc': case 'crun':
      return ['run', 'create', 'start'].includes(a) ? `${cli} ${a}` : undefined;
    default:
      return undefined;
  }
}

const w2 = (a: string, b?: string) => (b ? `${a} ${b}` : a);

/** Does this argv import or build an image locally? Returns what it did. */
export function imageImport(argv: string[]): string | undefined {
  const cli = cliOf(argv);
  if (!cli) return undefined;
  const [a, b] = words(argv);
  switch (cli) {
    case 'docker': case 'podman': case 'nerdctl':
      if (['import', 'load', 'build'].includes(a)) return `${cli} ${a}`;
      if ((a === 'image' || a === 'buildx') && ['import', 'load', 'build'].includes(b)) return `${cli} ${a} ${b}`;
      return undefined;
    case 'ctr':
      return (a === 'i' || a === 'image' || a === 'images') && b === 'import' ? `ctr ${a} import` : undefined;
    case 'buildah':
      return ['bud', 'build', 'commit', 'from'].includes(a) ? `buildah ${a}` : undefined;
    default:
      return undefined;
  }
}
