// An OCI runtime bundle's config.json, summarised for enrichment and escape detection.
//
// The file sits in a directory the runtime made, but every value in it came from whoever asked
// for the container, so it is hostile input: capped in size (4 MiB, like the largest real
// configs with big seccomp profiles), capped in nesting before JSON.parse, type-checked field by
// field (a wrong type is an error naming the field), and long lists are trimmed with a flag.

import { readFileUnder } from './safe-read';

export const OCI_CONFIG_MAX_BYTES = 4 * 1024 * 1024;
export const OCI_CONFIG_MAX_DEPTH = 64;

export const LIMITS = {
  mounts: 1024,
  args: 1024,
  env: 4096,
  annotations: 1024,
  hooksPerStage: 64,
  capsPerSet: 64,
  maskedPaths: 256,
  additionalGids: 256,
  stringChars: 4096,
} as const;

export type OciConfigErrorReason = 'too-large' | 'too-deep' | 'malformed-json' | 'wrong-type' | 'invalid';

export class OciConfigError extends Error {
  override readonly name = 'OciConfigError';
  constructor(
    readonly reason: OciConfigErrorReason,
    /** JSON path of the offending field, e.g. "mounts[3].destination". */
    readonly field: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`OCI config: ${reason}${field ? ` at ${field}` : ''}: ${detail}`, options);
  }
}

export type OciNamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time';
const NAMESPACE_TYPES: readonly OciNamespaceType[] = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];

/** Our names for namespaces shared with the host (the proto's HostNamespace enum). TIME is left out: no runtime unshares it. */
export type HostNamespace = 'PID' | 'NET' | 'MNT' | 'IPC' | 'UTS' | 'USER' | 'CGROUP';
const HOST_NS_NAME: Record<Exclude<OciNamespaceType, 'time'>, HostNamespace> = {
  pid: 'PID',
  network: 'NET',
  mount: 'MNT',
  ipc: 'IPC',
  uts: 'UTS',
  user: 'USER',
  cgroup: 'CGROUP',
};

export type HookStage = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';
const HOOK_STAGES: readonly HookStage[] = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];

export interface OciMount {
  source: string;
  destination: string;
  type: string;
  readOnly: boolean;
  options: string[];
}

export interface OciHook {
  stage: HookStage;
  /**
   * A program the runtime runs as root. Per the runtime spec every stage's path resolves in the
   * runtime's (host) mount namespace except startContainer, whose path resolves in the container;
   * createContainer/startContainer execute in the container's namespaces, the others in the host's.
   */
  path: string;
  args: string[];
}

export interface OciCapabilities {
  effective: string[];
  bounding: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

/** Annotations the CRI implementations (containerd, CRI-O) put in the spec. */
export interface CriAnnotations {
  containerType?: string; // "sandbox" | "container"
  sandboxId?: string;
  sandboxName?: string;
  sandboxNamespace?: string;
  sandboxUid?: string;
  containerName?: string;
  /** The image reference the user asked for (containerd io.kubernetes.cri.image-name, CRI-O ImageName). */
  imageName?: string;
  /** CRI-O's resolved image digest reference (io.kubernetes.cri-o.ImageRef). */
  imageRef?: string;
  podName?: string;
  podNamespace?: string;
  podUid?: string;
}

export interface OciConfigSummary {
  ociVersion: string;
  process?: {
    args: string[];
    cwd: string;
    uid: number;
    gid: number;
    additionalGids: number[];
    terminal: boolean;
    noNewPrivileges: boolean;
    apparmorProfile?: string;
    capabilities: OciCapabilities;
  };
  root?: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  namespaces: { type: OciNamespaceType; path?: string }[];
  /** Namespaces shared with the host: absent from linux.namespaces, or joined by a path that is the host's. */
  hostNamespaces: HostNamespace[];
  annotations: Record<string, string>;
  cri: CriAnnotations;
  hooks: OciHook[];
  cgroupsPath?: string;
  hasSeccomp: boolean;
  maskedPaths: string[];
  readonlyPaths: string[];
  /** See isPrivilegedLike. */
  privileged: boolean;
  /**
   * The Kubernetes API service the kubelet told the container of (process.env
   * KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT), when both are there and valid.
   */
  kubernetesService?: { host: string; port: number };
  /** Lists that were longer than our limits and were cut (e.g. "mounts", "annotations"), or strings cut short. */
  trimmed: string[];
}

export interface OciParseOptions {
  /** True when the namespace file at `path` (a host path, e.g. /proc/123/ns/net or /run/netns/x) is the host's own. */
  isHostNamespace: (type: OciNamespaceType, path: string) => boolean;
}

/**
 * The 38 capabilities of Linux 5.7 (CAP_CHOWN .. CAP_AUDIT_READ). Newer ones (PERFMON, BPF,
 * CHECKPOINT_RESTORE) are not required: engines of the docker 20.10 era grant "ALL" without them.
 */
export const CLASSIC_CAPS: readonly string[] = (
  'CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE ' +
  'NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT ' +
  'SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE ' +
  'AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ'
)
  .split(' ')
  .map((n) => `CAP_${n}`);

/**
 * "Privileged" as the engines mean it (docker/podman --privileged, ctr --privileged), seen from
 * the spec: (1) the effective set holds CAP_SYS_ADMIN and all but at most two of the 38 classic
 * capabilities (a host whose bounding set lacks one, like this project's CI without
 * CAP_SYS_RESOURCE, cannot grant it even to a privileged container), AND (2) no seccomp filter,
 * AND (3) no masked paths. Each engine's privileged mode does all three; a default container does
 * none. Host namespaces and device access are reported separately and not part of this flag.
 */
export function isPrivilegedLike(effective: readonly string[], hasSeccomp: boolean, maskedPaths: readonly string[]): boolean {
  const eff = new Set(effective);
  if (!eff.has('CAP_SYS_ADMIN')) return false;
  const missing = CLASSIC_CAPS.filter((c) => !eff.has(c)).length;
  return missing <= 2 && !hasSeccomp && maskedPaths.length === 0;
}

/** Deepest nesting of arrays/objects in a JSON text, stopping early once over `limit`. Linear, no recursion. */
export function jsonDepthExceeds(buf: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

// ---------------------------------------------------------------- typed field access

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Reader {
  readonly trimmed = new Set<string>();

  obj(v: Json | undefined, field: string): Obj | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) throw new OciConfigError('wrong-type', field, 'expected an object');
    return v;
  }

  str(v: Json | undefined, field: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new OciConfigError('wrong-type', field, `expected a string, got ${typeof v}`);
    if (v.length > LIMITS.stringChars) {
      this.trimmed.add(field.replace(/\[\d+\]/g, '[]'));
      return v.slice(0, LIMITS.stringChars);
    }
    return v;
  }

  reqStr(v: Json | undefined, field: string): string {
    const s = this.str(v, field);
    if (s === undefined) throw new OciConfigError('wrong-type', field, 'required string is missing');
    return s;
  }

  bool(v: Json | undefined, field: string): boolean {
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw new OciConfigError('wrong-type', field, 'expected a boolean');
    return v;
  }

  /** uint32 id (uid/gid). */
  id(v: Json | undefined, field: string): number {
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
      throw new OciConfigError('wrong-type', field, 'expected an integer in 0..2^32-1');
    return v;
  }

  /** Array, cut to `max` items (flagged under `name`), each item mapped. */
  arr<T>(v: Json | undefined, field: string, max: number, name: string, each: (item: Json, field: string) => T): T[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new OciConfigError('wrong-type', field, 'expected an array');
    if (v.length > max) this.trimmed.add(name);
    const n = Math.min(v.length, max);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(each(v[i], `${field}[${i}]`));
    return out;
  }

  strs(v: Json | undefined, field: string, max: number, name: string): string[] {
    return this.arr(v, field, max, name, (x, f) => this.reqStr(x, f));
  }
}

// ---------------------------------------------------------------- the parser

function parseCaps(r: Reader, v: Json | undefined): OciCapabilities {
  const o = r.obj(v, 'process.capabilities') ?? {};
  const set = (k: keyof OciCapabilities) => r.strs(o[k], `process.capabilities.${k}`, LIMITS.capsPerSet, `capabilities.${k}`);
  return {
    effective: set('effective'),
    bounding: set('bounding'),
    permitted: set('permitted'),
    inheritable: set('inheritable'),
    ambient: set('ambient'),
  };
}

function parseMount(r: Reader, v: Json, f: string): OciMount {
  const o = r.obj(v, f);
  if (!o) throw new OciConfigError('wrong-type', f, 'expected a mount object');
  const options = r.strs(o.options, `${f}.options`, 64, 'mounts[].options');
  // Later options win in mount(8) semantics ("rw,ro" is read-only, "ro,rw" is not).
  let readOnly = false;
  for (const opt of options) {
    if (opt === 'ro') readOnly = true;
    else if (opt === 'rw') readOnly = false;
  }
  return {
    destination: r.reqStr(o.destination, `${f}.destination`),
    source: r.str(o.source, `${f}.source`) ?? '',
    type: r.str(o.type, `${f}.type`) ?? '',
    readOnly,
    options,
  };
}

function parseHooks(r: Reader, v: Json | undefined): OciHook[] {
  const o = r.obj(v, 'hooks');
  if (!o) return [];
  const out: OciHook[] = [];
  for (const stage of HOOK_STAGES) {
    out.push(
      ...r.arr(o[stage], `hooks.${stage}`, LIMITS.hooksPerStage, `hooks.${stage}`, (h, f) => {
        const ho = r.obj(h, f);
        if (!ho) throw new OciConfigError('wrong-type', f, 'expected a hook object');
        return { stage, path: r.reqStr(ho.path, `${f}.path`), args: r.strs(ho.args, `${f}.args`, LIMITS.args, 'hooks[].args') };
      }),
    );
  }
  return out;
}

function parseAnnotations(r: Reader, v: Json | undefined): Record<string, string> {
  const o = r.obj(v, 'annotations');
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!o) return out;
  const keys = Object.keys(o);
  if (keys.length > LIMITS.annotations) r.trimmed.add('annotations');
  for (const k of keys.slice(0, LIMITS.annotations)) {
    if (k.length > LIMITS.stringChars) {
      r.trimmed.add('annotations');
      continue;
    }
    const val = r.str(o[k], `annotations[${JSON.stringify(k.slice(0, 64))}]`);
    if (val !== undefined) out[k] = val;
  }
  return out;
}

/**
 * containerd's io.kubernetes.cri.* and CRI-O's io.kubernetes.cri-o.* / io.kubernetes.pod.* annotations.
 * Podman also writes io.kubernetes.cri-o.Created/TTY on every container: a cri-o.* key alone does
 * not mean CRI-O, so only the keys below are used.
 */
export function criFromAnnotations(a: Readonly<Record<string, string>>): CriAnnotations {
  const pick = (...keys: string[]) => {
    for (const k of keys) if (a[k] !== undefined && a[k] !== '') return a[k];
    return undefined;
  };
  const cri: CriAnnotations = {
    containerType: pick('io.kubernetes.cri.container-type', 'io.kubernetes.cri-o.ContainerType'),
    sandboxId: pick('io.kubernetes.cri.sandbox-id', 'io.kubernetes.cri-o.SandboxID'),
    sandboxName: pick('io.kubernetes.cri.sandbox-name', 'io.kubernetes.cri-o.SandboxName'),
    sandboxNamespace: pick('io.kubernetes.cri.sandbox-namespace'),
    sandboxUid: pick('io.kubernetes.cri.sandbox-uid'),
    containerName: pick('io.kubernetes.cri.container-name', 'io.kubernetes.container.name', 'io.kubernetes.cri-o.ContainerName'),
    imageName: pick('io.kubernetes.cri.image-name', 'io.kubernetes.cri-o.ImageName'),
    imageRef: pick('io.kubernetes.cri-o.ImageRef'),
    podName: pick('io.kubernetes.pod.name', 'io.kubernetes.cri.sandbox-name'),
    podNamespace: pick('io.kubernetes.pod.namespace', 'io.kubernetes.cri.sandbox-namespace'),
    podUid: pick('io.kubernetes.pod.uid', 'io.kubernetes.cri.sandbox-uid'),
  };
  for (const k of Object.keys(cri) as (keyof CriAnnotations)[]) if (cri[k] === undefined) delete cri[k];
  return cri;
}

/**
 * KUBERNETES_SERVICE_HOST/PORT from process.env (later entries win, as in a process's own lookup).
 * Only those two are looked at, in the first LIMITS.env entries; the rest of the environment is
 * neither kept nor trimmed (it may hold secrets, and long values are common).
 */
function kubeServiceOf(v: Json | undefined): OciConfigSummary['kubernetesService'] {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new OciConfigError('wrong-type', 'process.env', 'expected an array');
  let host: string | undefined;
  let port: string | undefined;
  for (let i = 0; i < Math.min(v.length, LIMITS.env); i++) {
    const e = v[i];
    if (typeof e !== 'string') throw new OciConfigError('wrong-type', `process.env[${i}]`, `expected a string, got ${typeof e}`);
    if (e.startsWith('KUBERNETES_SERVICE_HOST=')) host = e.slice('KUBERNETES_SERVICE_HOST='.length);
    else if (e.startsWith('KUBERNETES_SERVICE_PORT=')) port = e.slice('KUBERNETES_SERVICE_PORT='.length);
  }
  // What the kubelet writes: an IP address (checked by its user) and a port; anything else is not used.
  if (!host || !port || host.length > 64 || !/^\d{1,5}$/.test(port) || +port < 1 || +port > 65535) return undefined;
  return { host, port: +port };
}

/** Parse and validate config.json bytes. Throws OciConfigError; never returns partial garbage. */
// eslint-disable-next-line max-lines-per-function -- one validation pass over the config, field by field in the spec's order
export function parseOciConfig(buf: Buffer, opts: OciParseOptions): OciConfigSummary {
  if (buf.length > OCI_CONFIG_MAX_BYTES) throw new OciConfigError('too-large', '', `${buf.length} bytes > ${OCI_CONFIG_MAX_BYTES}`);
  if (jsonDepthExceeds(buf, OCI_CONFIG_MAX_DEPTH)) throw new OciConfigError('too-deep', '', `nesting deeper than ${OCI_CONFIG_MAX_DEPTH}`);
  let doc: Json;
  try {
    doc = JSON.parse(buf.toString('utf8')) as Json;
  } catch (err) {
    throw new OciConfigError('malformed-json', '', (err as Error).message, { cause: err });
  }
  if (!isObj(doc)) throw new OciConfigError('wrong-type', '', 'top level must be an object');
  const r = new Reader();

  const ociVersion = r.reqStr(doc.ociVersion, 'ociVersion');

  let proc: OciConfigSummary['process'];
  const p = r.obj(doc.process, 'process');
  if (p) {
    const user = r.obj(p.user, 'process.user') ?? {};
    proc = {
      args: r.strs(p.args, 'process.args', LIMITS.args, 'process.args'),
      cwd: r.str(p.cwd, 'process.cwd') ?? '',
      uid: r.id(user.uid, 'process.user.uid'),
      gid: r.id(user.gid, 'process.user.gid'),
      additionalGids: r.arr(
        user.additionalGids,
        'process.user.additionalGids',
        LIMITS.additionalGids,
        'process.user.additionalGids',
        (x, f) => r.id(x, f),
      ),
      terminal: r.bool(p.terminal, 'process.terminal'),
      noNewPrivileges: r.bool(p.noNewPrivileges, 'process.noNewPrivileges'),
      capabilities: parseCaps(r, p.capabilities),
    };
    const aa = r.str(p.apparmorProfile, 'process.apparmorProfile');
    if (aa !== undefined) proc.apparmorProfile = aa;
  }

  const kubernetesService = p ? kubeServiceOf(p.env) : undefined;

  let root: OciConfigSummary['root'];
  const ro = r.obj(doc.root, 'root');
  if (ro) root = { path: r.reqStr(ro.path, 'root.path'), readonly: r.bool(ro.readonly, 'root.readonly') };

  const mounts = r.arr(doc.mounts, 'mounts', LIMITS.mounts, 'mounts', (m, f) => parseMount(r, m, f));
  const annotations = parseAnnotations(r, doc.annotations);
  const hooks = parseHooks(r, doc.hooks);
  const hostname = r.str(doc.hostname, 'hostname');

  const linux = r.obj(doc.linux, 'linux') ?? {};
  const namespaces = r.arr(linux.namespaces, 'linux.namespaces', NAMESPACE_TYPES.length, 'linux.namespaces', (n, f) => {
    const no = r.obj(n, f);
    if (!no) throw new OciConfigError('wrong-type', f, 'expected a namespace object');
    const type = r.reqStr(no.type, `${f}.type`);
    if (!(NAMESPACE_TYPES as readonly string[]).includes(type))
      throw new OciConfigError('invalid', `${f}.type`, `unknown namespace type ${JSON.stringify(type.slice(0, 32))}`);
    const nsPath = r.str(no.path, `${f}.path`);
    return nsPath ? { type: type as OciNamespaceType, path: nsPath } : { type: type as OciNamespaceType };
  });
  if (Array.isArray(linux.namespaces) && linux.namespaces.length > NAMESPACE_TYPES.length)
    throw new OciConfigError('invalid', 'linux.namespaces', 'more entries than namespace types');
  const seen = new Set<string>();
  for (const n of namespaces) {
    if (seen.has(n.type)) throw new OciConfigError('invalid', 'linux.namespaces', `namespace ${n.type} listed twice`);
    seen.add(n.type);
  }
  const hostNamespaces: HostNamespace[] = [];
  for (const t of NAMESPACE_TYPES) {
    if (t === 'time') continue;
    const n = namespaces.find((x) => x.type === t);
    if (!n || (n.path !== undefined && opts.isHostNamespace(t, n.path))) hostNamespaces.push(HOST_NS_NAME[t]);
  }

  const hasSeccomp = r.obj(linux.seccomp, 'linux.seccomp') !== undefined;
  const maskedPaths = r.strs(linux.maskedPaths, 'linux.maskedPaths', LIMITS.maskedPaths, 'linux.maskedPaths');
  const readonlyPaths = r.strs(linux.readonlyPaths, 'linux.readonlyPaths', LIMITS.maskedPaths, 'linux.readonlyPaths');
  const cgroupsPath = r.str(linux.cgroupsPath, 'linux.cgroupsPath');

  const summary: OciConfigSummary = {
    ociVersion,
    mounts,
    namespaces,
    hostNamespaces,
    annotations,
    cri: criFromAnnotations(annotations),
    hooks,
    hasSeccomp,
    maskedPaths,
    readonlyPaths,
    privileged: isPrivilegedLike(proc?.capabilities.effective ?? [], hasSeccomp, maskedPaths),
    trimmed: [],
  };
  if (proc) summary.process = proc;
  if (root) summary.root = root;
  if (hostname !== undefined) summary.hostname = hostname;
  if (kubernetesService) summary.kubernetesService = kubernetesService;
  if (cgroupsPath !== undefined) summary.cgroupsPath = cgroupsPath;
  summary.trimmed = [...r.trimmed].sort();
  return summary;
}

/**
 * Read `<root>/<bundle>/config.json` following no link below root: for a bundle
 * named by a process in a container, root being that process's /proc/<pid>/root
 * (absolute bundle) or /proc/<pid>/cwd (relative bundle), so that the path means
 * what it meant to that process and never a host path.
 */
export function readOciConfigUnder(root: string, bundle: string, opts: OciParseOptions): OciConfigSummary {
  const rel = bundle.replace(/^\/+/, '');
  return parseOciConfig(readFileUnder(root, rel ? `${rel}/config.json` : 'config.json', { maxBytes: OCI_CONFIG_MAX_BYTES }), opts);
}

/** Read `<bundleDir>/config.json` safely (no links, regular file, 4 MiB cap) and parse it. */
export function readOciConfig(bundleDir: string, opts: OciParseOptions): OciConfigSummary {
  return parseOciConfig(readFileUnder(bundleDir, 'config.json', { maxBytes: OCI_CONFIG_MAX_BYTES }), opts);
}
