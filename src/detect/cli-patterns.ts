import { basename } from '../container/runtime-cli';

/**
 * Runtime and orchestrator command lines: enumeration (T1613), deployment
 * (T1610), local image import or build (T1204.003). Pure functions of argv.
 */
const CLIS = new Set(['docker', 'podman', 'nerdctl', 'crictl', 'ctr', 'kubectl', 'oc', 'runc', 'crun', 'buildah', 'kubeadm']);

/**
 * The CLI's verb and the word after it. Options are skipped; since an option's
 * value cannot be told from a word in general, the verb is the first word the
 * CLI knows as one (values like `overlay` or `runc` are not).
 */
function verb(cli: string, argv: string[]): [string?, string?] {
  const vocab = VOCAB[cli];
  for (let i = 1; i < argv.length; i++) {
    const x = argv[i];
    if (x.startsWith('-') || !vocab.has(x)) continue;
    for (let j = i + 1; j < argv.length; j++) if (!argv[j].startsWith('-')) return [x, argv[j]];
    return [x];
  }
  return [];
}

/**
 * argv[0] → its CLI or null, for the few hundred programs a node runs: asked at every exec, and
 * the decoder hands out one string per distinct argv[0], whose hash V8 keeps, where the basename
 * was a new string to hash every time. Bounded: cleared when full, and paths longer than any
 * program's are not kept (a container choosing long ones would hold that much memory here).
 */
const cliByPath = new Map<string, string | null>();
const CLI_PATHS_MAX = 4096;
const CLI_PATH_KEPT = 256;

export function cliOf(argv: string[]): string | undefined {
  const a0 = argv[0] ?? '';
  let cli = cliByPath.get(a0);
  if (cli === undefined) {
    const b = basename(a0);
    cli = CLIS.has(b) ? b : null;
    if (a0.length <= CLI_PATH_KEPT) {
      if (cliByPath.size >= CLI_PATHS_MAX) cliByPath.clear();
      cliByPath.set(a0, cli);
    }
  }
  return cli ?? undefined;
}

const ENUM_DOCKER = new Set(['ps', 'ls', 'list', 'images', 'inspect', 'info', 'top', 'stats', 'port']);
const OBJECTS = new Set([
  'container',
  'containers',
  'image',
  'images',
  'network',
  'volume',
  'pod',
  'pods',
  'c',
  'i',
  'task',
  'tasks',
  't',
  'namespace',
  'namespaces',
  'ns',
  'snapshot',
  'snapshots',
  'node',
  'system',
]);
const ENGINE_VERBS = [
  'run',
  'create',
  'start',
  'restart',
  'import',
  'load',
  'build',
  'buildx',
  'exec',
  'rm',
  'stop',
  'kill',
  'pull',
  'push',
  'commit',
  'save',
  'tag',
];
const set = (...xs: (string | string[] | Set<string>)[]) => new Set(xs.flatMap((x) => (typeof x === 'string' ? [x] : [...x])));
const VOCAB: Record<string, Set<string>> = {
  docker: set(ENUM_DOCKER, OBJECTS, ENGINE_VERBS),
  podman: set(ENUM_DOCKER, OBJECTS, ENGINE_VERBS),
  nerdctl: set(ENUM_DOCKER, OBJECTS, ENGINE_VERBS),
  crictl: set(
    'ps',
    'pods',
    'images',
    'img',
    'inspect',
    'inspectp',
    'inspecti',
    'info',
    'stats',
    'statsp',
    'run',
    'runp',
    'create',
    'start',
    'exec',
    'rm',
    'rmp',
    'stop',
    'stopp',
    'pull',
  ),
  ctr: set(OBJECTS, 'run', 'image', 'images', 'i'),
  kubectl: set(
    'get',
    'describe',
    'top',
    'api-resources',
    'api-versions',
    'cluster-info',
    'auth',
    'run',
    'create',
    'apply',
    'exec',
    'delete',
    'logs',
  ),
  oc: set(
    'get',
    'describe',
    'top',
    'api-resources',
    'api-versions',
    'cluster-info',
    'auth',
    'run',
    'create',
    'apply',
    'exec',
    'delete',
    'logs',
  ),
  runc: set('list', 'state', 'ps', 'run', 'create', 'start', 'exec', 'delete', 'kill'),
  crun: set('list', 'state', 'ps', 'run', 'create', 'start', 'exec', 'delete', 'kill'),
  buildah: set('bud', 'build', 'commit', 'from', 'images', 'containers'),
  kubeadm: set('init', 'join'),
};

/** Is this argv an enumeration of containers or cluster resources? Returns what it lists. */
export function enumeration(argv: string[]): string | undefined {
  const cli = cliOf(argv);
  if (!cli) return undefined;
  const [a = '', b = ''] = verb(cli, argv);
  switch (cli) {
    case 'docker':
    case 'podman':
    case 'nerdctl':
      if (ENUM_DOCKER.has(a)) return `${cli} ${a}`;
      if (OBJECTS.has(a) && ENUM_DOCKER.has(b)) return `${cli} ${a} ${b}`;
      return undefined;
    case 'crictl':
      return ['ps', 'pods', 'images', 'img', 'inspect', 'inspectp', 'inspecti', 'info', 'stats', 'statsp'].includes(a)
        ? `crictl ${a}`
        : undefined;
    case 'ctr':
      return OBJECTS.has(a) && ['ls', 'list', 'info'].includes(b) ? `ctr ${a} ${b}` : undefined;
    case 'kubectl':
    case 'oc':
      if (['get', 'describe', 'top', 'api-resources', 'api-versions', 'cluster-info'].includes(a)) return `${cli} ${a}${b ? ` ${b}` : ''}`;
      if (a === 'auth' && b === 'can-i') return `${cli} auth can-i`;
      return undefined;
    case 'runc':
    case 'crun':
      return ['list', 'state', 'ps'].includes(a) ? `${cli} ${a}` : undefined;
    default:
      return undefined;
  }
}

/** Does this argv deploy a container (run, create, start)? */
export function deployment(argv: string[]): string | undefined {
  const cli = cliOf(argv);
  if (!cli) return undefined;
  const [a = '', b = ''] = verb(cli, argv);
  switch (cli) {
    case 'docker':
    case 'podman':
    case 'nerdctl':
      if (['run', 'create', 'start', 'restart'].includes(a)) return `${cli} ${a}`;
      if (a === 'container' && ['run', 'create', 'start', 'restart'].includes(b)) return `${cli} container ${b}`;
      return undefined;
    case 'ctr':
      if (a === 'run') return 'ctr run';
      if (
        ((a === 'c' || a === 'container' || a === 'containers') && b === 'create') ||
        ((a === 't' || a === 'task' || a === 'tasks') && b === 'start')
      )
        return `ctr ${a} ${b}`;
      return undefined;
    case 'crictl':
      return ['run', 'runp', 'create', 'start'].includes(a) ? `crictl ${a}` : undefined;
    case 'kubectl':
    case 'oc':
      return ['run', 'create', 'apply'].includes(a) ? `${cli} ${a}` : undefined;
    case 'runc':
    case 'crun':
      return ['run', 'create', 'start'].includes(a) ? `${cli} ${a}` : undefined;
    default:
      return undefined;
  }
}

/** Does this argv import or build an image locally? Returns what it did. */
export function imageImport(argv: string[]): string | undefined {
  const cli = cliOf(argv);
  if (!cli) return undefined;
  const [a = '', b = ''] = verb(cli, argv);
  switch (cli) {
    case 'docker':
    case 'podman':
    case 'nerdctl':
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
