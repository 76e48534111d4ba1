// The OCI runtime's own record of a container: runc's state.json, crun's status.
//
// Where they live (recorded on Debian 12 with runc 1.1.5, containerd 1.6, docker.io 20.10, podman 4.3):
//   runc (default root)             /run/runc/<id>/state.json       (podman as root uses this root too)
//   runc under containerd (ctr/CRI) /run/containerd/runc/<ns>/<id>/state.json   (even with a private
//                                   containerd state dir: the shim's runc root does not follow it)
//   runc under docker 20.10         <exec-root>/runtime-runc/moby/<id>/state.json (exec-root /var/run/docker)
//   crun                            /run/crun/<id>/status           (JSON, plus config.json beside it)
// And the OCI bundles whose config.json says what the container is:
//   runc/crun                       wherever --bundle pointed (state.json's "bundle=" label; crun's "bundle")
//   containerd                      <state>/io.containerd.runtime.v2.task/<ns>/<id>/   (state /run/containerd)
//   docker 20.10                    <exec-root>/containerd/daemon/io.containerd.runtime.v2.task/moby/<id>/
//   podman                          <graphroot>/overlay-containers/<id>/userdata/
// These files are written by the runtime as root, but a state dir is still read without
// following links and with a cap, and every field is type-checked.

import * as path from 'node:path';
import { listDirUnder, readFileUnder } from './safe-read';
import { MetaFileError } from './file-error';

export const RUNTIME_STATE_MAX_BYTES = 4 * 1024 * 1024;

export class RuntimeStateError extends MetaFileError {
  override readonly name = 'RuntimeStateError';
}

export interface OciRuntimeState {
  runtime: 'RUNC' | 'CRUN';
  id: string;
  initPid: number;
  /** The init process's start time in clock ticks since boot: field 22 of /proc/<pid>/stat. With the pid it names the process across pid reuse. */
  initStartTicks: number;
  /** RFC 3339 with nanoseconds, as the runtime wrote it. */
  created?: string;
  createdUnixNano?: bigint;
  bundle?: string;
  rootfs?: string;
  /** The container's cgroup path relative to the hierarchy root (runc: config.cgroups.path; crun: cgroup-path). Empty for runc's default (`/<id>` under the caller's cgroup). */
  cgroupPath?: string;
}

/** runc's container id rule (libcontainer: ^[\w+-\.]+$); it also keeps an id one path component. */
export function isValidOciId(id: string): boolean {
  return id.length > 0 && id.length <= 1024 && /^[\w+.-]+$/.test(id) && id !== '.' && id !== '..';
}

/** "2026-11-29T03:40:40.768379698Z" (or with a ±hh:mm offset) to nanoseconds since the epoch, exactly. */
export function rfc3339ToUnixNano(s: string): bigint | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/.exec(s);
  if (!m) return undefined;
  const [mo, d, h, mi, sec] = [+m[2], +m[3], +m[4], +m[5], +m[6]];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return undefined;
  const t = new Date(Date.UTC(2000, 0, 1, h, mi, sec));
  t.setUTCFullYear(+m[1], mo - 1, d); // Date.UTC maps years 0..99 to 19xx; docker writes "0001-01-01T00:00:00Z" for "never"
  const ms = t.getTime();
  if (!Number.isFinite(ms) || t.getUTCDate() !== d) return undefined;
  let ns = BigInt(ms) * 1_000_000n + BigInt((m[7] ?? '').padEnd(9, '0') || '0');
  if (m[8]) ns -= BigInt((m[8] === '-' ? -1 : 1) * (+m[9] * 60 + +m[10])) * 60_000_000_000n;
  return ns;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJsonObject(buf: Buffer, file: string): Obj {
  let doc: unknown;
  try {
    doc = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new RuntimeStateError(file, 'malformed-json', (err as Error).message, { cause: err });
  }
  if (!isObj(doc)) throw new RuntimeStateError(file, 'wrong-type', 'top level must be an object');
  return doc;
}

function posInt(v: unknown, file: string, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new RuntimeStateError(file, 'wrong-type', `${field} must be a non-negative integer`);
  return v;
}

function optStr(v: unknown, file: string, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new RuntimeStateError(file, 'wrong-type', `${field} must be a string`);
  return v;
}

function withCreated<T extends { created?: string; createdUnixNano?: bigint }>(o: T, created: string | undefined): T {
  if (created === undefined) return o;
  o.created = created;
  const ns = rfc3339ToUnixNano(created);
  if (ns !== undefined) o.createdUnixNano = ns;
  return o;
}

/**
 * Parse runc's state.json. The bundle is the LAST "bundle=" entry of config.labels: runc writes
 * each annotation as a "key=value" label and appends the real bundle after them, so an
 * annotation named "bundle" would otherwise pass for it.
 */
export function parseRuncState(buf: Buffer, file = 'state.json'): OciRuntimeState {
  const doc = parseJsonObject(buf, file);
  const id = optStr(doc.id, file, 'id');
  if (id === undefined || !isValidOciId(id)) throw new RuntimeStateError(file, 'bad-id', 'id missing or not a valid container id');
  const st: OciRuntimeState = {
    runtime: 'RUNC',
    id,
    initPid: posInt(doc.init_process_pid, file, 'init_process_pid'),
    initStartTicks: posInt(doc.init_process_start, file, 'init_process_start'),
  };
  const config = doc.config;
  if (config !== undefined && !isObj(config)) throw new RuntimeStateError(file, 'wrong-type', 'config must be an object');
  if (config) {
    const rootfs = optStr(config.rootfs, file, 'config.rootfs');
    if (rootfs !== undefined) st.rootfs = rootfs;
    if (config.labels !== undefined && config.labels !== null) {
      if (!Array.isArray(config.labels)) throw new RuntimeStateError(file, 'wrong-type', 'config.labels must be an array');
      for (const l of config.labels) if (typeof l === 'string' && l.startsWith('bundle=')) st.bundle = l.slice('bundle='.length);
    }
    if (isObj(config.cgroups)) {
      const p = optStr(config.cgroups.path, file, 'config.cgroups.path');
      if (p !== undefined) st.cgroupPath = p;
    }
  }
  return withCreated(st, optStr(doc.created, file, 'created'));
}

/** Parse crun's status file (JSON: pid, process-start-time, cgroup-path, rootfs, bundle, created, ...). */
export function parseCrunStatus(buf: Buffer, id: string, file = 'status'): OciRuntimeState {
  if (!isValidOciId(id)) throw new RuntimeStateError(file, 'bad-id', 'not a valid container id');
  const doc = parseJsonObject(buf, file);
  const st: OciRuntimeState = {
    runtime: 'CRUN',
    id,
    initPid: posInt(doc.pid, file, 'pid'),
    initStartTicks: posInt(doc['process-start-time'], file, 'process-start-time'),
  };
  const bundle = optStr(doc.bundle, file, 'bundle');
  if (bundle !== undefined) st.bundle = bundle;
  const rootfs = optStr(doc.rootfs, file, 'rootfs');
  if (rootfs !== undefined) st.rootfs = rootfs;
  const cg = optStr(doc['cgroup-path'], file, 'cgroup-path');
  if (cg !== undefined) st.cgroupPath = cg;
  return withCreated(st, optStr(doc.created, file, 'created'));
}

function checkedId(id: string, root: string): string {
  if (!isValidOciId(id)) throw new RuntimeStateError(path.join(root, String(id).slice(0, 80)), 'bad-id', 'not a valid container id');
  return id;
}

/** Read `<stateRoot>/<id>/state.json` (stateRoot: /run/runc, /run/containerd/runc/<ns>, <exec-root>/runtime-runc/moby). */
export function readRuncState(stateRoot: string, id: string): OciRuntimeState {
  const rel = `${checkedId(id, stateRoot)}/state.json`;
  const st = parseRuncState(readFileUnder(stateRoot, rel, { maxBytes: RUNTIME_STATE_MAX_BYTES }), path.join(stateRoot, rel));
  if (st.id !== id) throw new RuntimeStateError(path.join(stateRoot, rel), 'bad-id', `state names id ${st.id}`);
  return st;
}

/** Read `<stateRoot>/<id>/status` (stateRoot: /run/crun). */
export function readCrunStatus(stateRoot: string, id: string): OciRuntimeState {
  const rel = `${checkedId(id, stateRoot)}/status`;
  return parseCrunStatus(readFileUnder(stateRoot, rel, { maxBytes: RUNTIME_STATE_MAX_BYTES }), id, path.join(stateRoot, rel));
}

// ---------------------------------------------------------------- where things are

export const DEFAULT_CONTAINERD_STATE = '/run/containerd';
export const DEFAULT_DOCKER_EXEC_ROOT = '/var/run/docker';

/** runc root used by containerd's runc shim for a namespace (its "Root" option, default /run/containerd/runc). */
export function containerdRuncRoot(namespace: string, base = `${DEFAULT_CONTAINERD_STATE}/runc`): string {
  return path.join(base, checkedId(namespace, base));
}

/** runc root used by docker 20.10's private containerd. */
export function dockerRuncRoot(execRoot = DEFAULT_DOCKER_EXEC_ROOT): string {
  return path.join(execRoot, 'runtime-runc', 'moby');
}

/** The OCI bundle containerd's v2 shim runs from. */
export function containerdBundleDir(stateDir: string, namespace: string, id: string): string {
  return path.join(stateDir, 'io.containerd.runtime.v2.task', checkedId(namespace, stateDir), checkedId(id, stateDir));
}

/** The OCI bundle of a docker 20.10 container (its private containerd, namespace "moby"). */
export function dockerBundleDir(execRoot: string, id: string): string {
  return containerdBundleDir(path.join(execRoot, 'containerd', 'daemon'), 'moby', id);
}

/** containerd namespaces that have (or had) tasks: the directories of <state>/io.containerd.runtime.v2.task. */
export function listContainerdNamespaces(stateDir = DEFAULT_CONTAINERD_STATE): string[] {
  return listDirUnder(stateDir, 'io.containerd.runtime.v2.task', { maxEntries: 1024 }).names.filter(isValidOciId);
}

/** Where runc and crun keep their state when called without --root. */
export const DEFAULT_RUNC_ROOT = '/run/runc';
export const DEFAULT_CRUN_ROOT = '/run/crun';
