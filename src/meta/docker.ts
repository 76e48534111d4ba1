// Docker's own record of a container, from its data root (not from the daemon's API):
//   <data-root>/containers/<64hex>/config.v2.json   name, image (as asked + image id), labels, created, state
//   <data-root>/containers/<64hex>/hostconfig.json  restart policy, --privileged, host modes, caps, binds
// (data-root defaults to /var/lib/docker.) dockerd writes both before it asks containerd to create
// the task, so they exist when the container's cgroup appears. The OCI bundle is elsewhere: see
// dockerBundleDir in runtime-state.ts. Env is deliberately not read: it is where secrets live.

import { readFileUnder } from './safe-read';
import { rfc3339ToUnixNano } from './runtime-state';
import { MetaFileError } from './file-error';

export const DOCKER_CONFIG_MAX_BYTES = 4 * 1024 * 1024;
export const DOCKER_HOSTCONFIG_MAX_BYTES = 1024 * 1024;
const MAX_LIST = 1024;
const MAX_STR = 4096;

export class DockerMetaError extends MetaFileError {
  override readonly name = 'DockerMetaError';
}

export interface DockerConfigV2 {
  id: string;
  /** Without docker's leading '/'. */
  name: string;
  /** The image as the user named it (Config.Image), e.g. "localhost/busybox:latest". */
  image: string;
  /** The image id, a digest of its config: "sha256:<64hex>". */
  imageId: string;
  labels: Record<string, string>;
  created?: string;
  createdUnixNano?: bigint;
  /** Entrypoint path and arguments (Path, Args). */
  path: string;
  args: string[];
  /** Config.User ("" = the image's default). */
  user: string;
  running: boolean;
  /** State.Pid: the init's pid while running, 0 otherwise. */
  pid: number;
  /** Labels or strings that were cut to our limits. */
  trimmed: boolean;
}

export interface DockerRestartPolicy {
  name: string; // "no" | "always" | "unless-stopped" | "on-failure" | ""
  maximumRetryCount: number;
}

export interface DockerHostConfig {
  privileged: boolean;
  restartPolicy: DockerRestartPolicy;
  pidMode: string;
  networkMode: string;
  ipcMode: string;
  utsMode: string;
  usernsMode: string;
  cgroupnsMode: string;
  capAdd: string[];
  capDrop: string[];
  binds: string[];
  securityOpt: string[];
  autoRemove: boolean;
}

export type DockerContainerMeta = DockerConfigV2 & DockerHostConfig;

const DOCKER_ID = /^[0-9a-f]{64}$/;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Fields {
  trimmed = false;
  constructor(readonly file: string) {}

  top(buf: Buffer): Obj {
    let doc: unknown;
    try {
      doc = JSON.parse(buf.toString('utf8'));
    } catch (err) {
      throw new DockerMetaError(this.file, 'malformed-json', (err as Error).message, { cause: err });
    }
    if (!isObj(doc)) throw new DockerMetaError(this.file, 'wrong-type', 'top level must be an object');
    return doc;
  }

  obj(v: unknown, field: string): Obj {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) throw new DockerMetaError(this.file, 'wrong-type', `${field} must be an object`);
    return v;
  }

  str(v: unknown, field: string): string {
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw new DockerMetaError(this.file, 'wrong-type', `${field} must be a string`);
    if (v.length > MAX_STR) {
      this.trimmed = true;
      return v.slice(0, MAX_STR);
    }
    return v;
  }

  bool(v: unknown, field: string): boolean {
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw new DockerMetaError(this.file, 'wrong-type', `${field} must be a boolean`);
    return v;
  }

  int(v: unknown, field: string): number {
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isSafeInteger(v))
      throw new DockerMetaError(this.file, 'wrong-type', `${field} must be an integer`);
    return v;
  }

  strs(v: unknown, field: string): string[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new DockerMetaError(this.file, 'wrong-type', `${field} must be an array`);
    if (v.length > MAX_LIST) this.trimmed = true;
    return v.slice(0, MAX_LIST).map((x, i) => this.str(x, `${field}[${i}]`));
  }

  map(v: unknown, field: string): Record<string, string> {
    const o = this.obj(v, field);
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    const keys = Object.keys(o);
    if (keys.length > MAX_LIST) this.trimmed = true;
    for (const k of keys.slice(0, MAX_LIST)) out[k.slice(0, MAX_STR)] = this.str(o[k], `${field}.${k.slice(0, 64)}`);
    return out;
  }
}

export function parseDockerConfigV2(buf: Buffer, file = 'config.v2.json'): DockerConfigV2 {
  const f = new Fields(file);
  const doc = f.top(buf);
  const id = f.str(doc.ID, 'ID');
  if (!DOCKER_ID.test(id)) throw new DockerMetaError(file, 'bad-id', 'ID is not 64 hex digits');
  const config = f.obj(doc.Config, 'Config');
  const state = f.obj(doc.State, 'State');
  const created = f.str(doc.Created, 'Created');
  const out: DockerConfigV2 = {
    id,
    name: f.str(doc.Name, 'Name').replace(/^\//, ''),
    image: f.str(config.Image, 'Config.Image'),
    imageId: f.str(doc.Image, 'Image'),
    labels: f.map(config.Labels, 'Config.Labels'),
    path: f.str(doc.Path, 'Path'),
    args: f.strs(doc.Args, 'Args'),
    user: f.str(config.User, 'Config.User'),
    running: f.bool(state.Running, 'State.Running'),
    pid: f.int(state.Pid, 'State.Pid'),
    trimmed: false,
  };
  if (created) {
    out.created = created;
    const ns = rfc3339ToUnixNano(created);
    if (ns !== undefined) out.createdUnixNano = ns;
  }
  out.trimmed = f.trimmed;
  return out;
}

export function parseDockerHostConfig(buf: Buffer, file = 'hostconfig.json'): DockerHostConfig {
  const f = new Fields(file);
  const doc = f.top(buf);
  const rp = f.obj(doc.RestartPolicy, 'RestartPolicy');
  return {
    privileged: f.bool(doc.Privileged, 'Privileged'),
    restartPolicy: {
      name: f.str(rp.Name, 'RestartPolicy.Name'),
      maximumRetryCount: f.int(rp.MaximumRetryCount, 'RestartPolicy.MaximumRetryCount'),
    },
    pidMode: f.str(doc.PidMode, 'PidMode'),
    networkMode: f.str(doc.NetworkMode, 'NetworkMode'),
    ipcMode: f.str(doc.IpcMode, 'IpcMode'),
    utsMode: f.str(doc.UTSMode, 'UTSMode'),
    usernsMode: f.str(doc.UsernsMode, 'UsernsMode'),
    cgroupnsMode: f.str(doc.CgroupnsMode, 'CgroupnsMode'),
    capAdd: f.strs(doc.CapAdd, 'CapAdd'),
    capDrop: f.strs(doc.CapDrop, 'CapDrop'),
    binds: f.strs(doc.Binds, 'Binds'),
    securityOpt: f.strs(doc.SecurityOpt, 'SecurityOpt'),
    autoRemove: f.bool(doc.AutoRemove, 'AutoRemove'),
  };
}

/** "no", "always", "unless-stopped", "on-failure:3" (docker CLI spelling); "" when unset. */
export function formatRestartPolicy(p: DockerRestartPolicy): string {
  return p.name === 'on-failure' && p.maximumRetryCount > 0 ? `${p.name}:${p.maximumRetryCount}` : p.name;
}

/** Read both files of container `id` under `dataRoot` (e.g. /var/lib/docker) without following links. */
export function readDockerContainer(dataRoot: string, id: string): DockerContainerMeta {
  if (!DOCKER_ID.test(id)) throw new DockerMetaError(`${dataRoot}/containers/${id.slice(0, 80)}`, 'bad-id', 'not 64 hex digits');
  const dir = `containers/${id}`;
  const cfg = parseDockerConfigV2(
    readFileUnder(dataRoot, `${dir}/config.v2.json`, { maxBytes: DOCKER_CONFIG_MAX_BYTES }),
    `${dataRoot}/${dir}/config.v2.json`,
  );
  if (cfg.id !== id) throw new DockerMetaError(`${dataRoot}/${dir}/config.v2.json`, 'bad-id', `file names container ${cfg.id}`);
  const host = parseDockerHostConfig(
    readFileUnder(dataRoot, `${dir}/hostconfig.json`, { maxBytes: DOCKER_HOSTCONFIG_MAX_BYTES }),
    `${dataRoot}/${dir}/hostconfig.json`,
  );
  return { ...cfg, ...host };
}
