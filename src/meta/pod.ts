// A container's Kubernetes pod, from what its CRI runtime left on the host.
//
// Trust, piece by piece:
// - name, namespace, uid, sandbox id, container name and the container type come from the
//   io.kubernetes.cri.* annotations that containerd itself writes into the OCI bundle's
//   config.json (its own values after the caller's, in a directory only root writes). The CRI
//   caller chose the pod's name, namespace and uid, so those are its claims; the type and the
//   sandbox id are containerd's. A container is the pod's sandbox only when the type says
//   "sandbox" AND the sandbox id is its own id, which containerd generated.
// - labels and annotations are the pod's, as the CRI caller passed them (for a kubelet: the pod
//   spec's author). containerd keeps them in its metadata store (meta.db, a bbolt file), in the
//   sandbox container's record: its labels bucket and the "io.cri-containerd.sandbox.metadata"
//   extension (a protobuf Any holding the sandbox's JSON, including the whole PodSandboxConfig).
//   They are read from the file containerd holds open, never through the CRI socket, and are
//   hostile input: capped in count and length, invalid UTF-8 and control characters replaced
//   by U+FFFD, and every cut or replacement flagged.

import { jsonDepthExceeds, type CriAnnotations } from './oci-config';
import { BoltError, type BoltFile } from './bolt';

export const POD_LIMITS = { entries: 256, keyChars: 317, valueChars: 4096, extensionBytes: 1024 * 1024, depth: 32 } as const;

/** containerd's own labels on its containers (io.cri-containerd.kind), not the pod's. */
const CONTAINERD_OWN = /^io\.cri-containerd\./;
export const SANDBOX_EXTENSION = 'io.cri-containerd.sandbox.metadata';

export interface PodIdentity {
  name?: string;
  namespace?: string;
  uid?: string;
  sandboxId?: string;
  containerName?: string;
  sandbox: boolean;
}

export interface PodLabels {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** What was cut ("labels", "annotations") or had invalid UTF-8 or control characters replaced ("labels.replaced"). */
  trimmed: string[];
}

export class PodMetaError extends Error {
  override readonly name = 'PodMetaError';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`pod metadata: ${detail}`, options);
  }
}

/** The pod a container belongs to, from its CRI annotations; undefined when it has none. */
export function podIdentity(cri: CriAnnotations, containerId: string): PodIdentity | undefined {
  if (!cri.sandboxId && !cri.podUid && !cri.containerType) return undefined;
  const sandbox = cri.containerType === 'sandbox' && cri.sandboxId === containerId;
  const p: PodIdentity = { sandbox };
  if (cri.podName) p.name = cri.podName;
  if (cri.podNamespace) p.namespace = cri.podNamespace;
  if (cri.podUid) p.uid = cri.podUid;
  if (cri.sandboxId) p.sandboxId = cri.sandboxId;
  if (cri.containerName && !sandbox) p.containerName = cri.containerName;
  return p;
}

/** A string from bytes or JSON, replacing what is not valid UTF-8 and cutting it to max chars. */
function clean(s: string, max: number, bad: () => void, cut: () => void): string {
  let out = s;
  if (out.includes('\uFFFD') || /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(out)) {
    bad();
    out = out.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '\uFFFD');
  }
  if (out.length > max) {
    cut();
    out = out.slice(0, max);
  }
  return out;
}

/** A string map (labels, annotations) within POD_LIMITS; what was cut is added to trimmed as `name`. */
export function cleanStringMap(entries: Iterable<[string, unknown]>, name: string, trimmed: Set<string>): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  let n = 0;
  for (const [k0, v0] of entries) {
    if (n >= POD_LIMITS.entries) {
      trimmed.add(name);
      break;
    }
    if (typeof v0 !== 'string') {
      trimmed.add(`${name}.not-a-string`);
      continue;
    }
    if (k0.length > POD_LIMITS.keyChars) {
      trimmed.add(name);
      continue;
    }
    const bad = () => trimmed.add(`${name}.replaced`);
    const cut = () => trimmed.add(name);
    out[clean(k0, POD_LIMITS.keyChars, bad, cut)] = clean(v0, POD_LIMITS.valueChars, bad, cut);
    n++;
  }
  return out;
}

/** Bytes as UTF-8; invalid sequences become U+FFFD (which clean() then flags). */
const utf8 = (b: Buffer): string => b.toString('utf8');

/** One length-delimited field of a protobuf message (wire type 2), by number. */
function protoBytesField(buf: Buffer, field: number): Buffer | undefined {
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (i >= buf.length || shift > 35) throw new PodMetaError('truncated varint in the sandbox extension');
      const b = buf[i++];
      v += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return v;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const wire = tag & 7;
    if (wire === 2) {
      const len = varint();
      if (i + len > buf.length) throw new PodMetaError('field overruns the sandbox extension');
      if (tag >>> 3 === field) return buf.subarray(i, i + len);
      i += len;
    } else if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new PodMetaError(`unexpected wire type ${wire} in the sandbox extension`);
  }
  return undefined;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * containerd's sandbox extension: a google.protobuf.Any {type_url = 1, value = 2} whose value is
 * the JSON {"Version":"v1","Metadata":{..., "Config": <PodSandboxConfig>}}. Labels and
 * annotations of the Config.
 */
export function parseSandboxExtension(buf: Buffer): { labels: Map<string, unknown>; annotations: Map<string, unknown> } {
  if (buf.length > POD_LIMITS.extensionBytes) throw new PodMetaError(`sandbox extension of ${buf.length} bytes`);
  const value = protoBytesField(buf, 2);
  if (!value) throw new PodMetaError('sandbox extension has no value');
  if (jsonDepthExceeds(value, POD_LIMITS.depth)) throw new PodMetaError(`sandbox extension nested deeper than ${POD_LIMITS.depth}`);
  let doc: Json;
  try {
    doc = JSON.parse(utf8(value)) as Json;
  } catch (err) {
    throw new PodMetaError(`sandbox extension is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const md = isObj(doc) ? doc.Metadata : undefined;
  const config = isObj(md) ? md.Config : undefined;
  if (!isObj(config)) throw new PodMetaError('sandbox extension has no Metadata.Config object');
  const map = (v: Json | undefined, what: string): Map<string, unknown> => {
    if (v === undefined || v === null) return new Map();
    if (!isObj(v)) throw new PodMetaError(`Metadata.Config.${what} is not an object`);
    return new Map(Object.entries(v));
  };
  return { labels: map(config.labels, 'labels'), annotations: map(config.annotations, 'annotations') };
}

/**
 * Labels and annotations of sandbox `sandboxId` in containerd namespace `ns`, from its
 * metadata store; undefined when the store has no such container. Both come from the sandbox
 * extension (the PodSandboxConfig as the caller sent it); failing that, labels from the
 * container's labels bucket, where containerd also merges the pause image's own labels and
 * its io.cri-containerd.* ones (dropped).
 */
export function readContainerdSandbox(db: BoltFile, ns: string, sandboxId: string): PodLabels | undefined {
  const base = ['v1', ns, 'containers', sandboxId];
  const ext = db.value([...base, 'extensions'], SANDBOX_EXTENSION);
  const trimmed = new Set<string>();
  if (ext) {
    const parsed = parseSandboxExtension(ext);
    const labels = cleanStringMap(parsed.labels, 'labels', trimmed);
    const annotations = cleanStringMap(parsed.annotations, 'annotations', trimmed);
    return { labels, annotations, trimmed: [...trimmed].sort() };
  }
  const bucket = db.values([...base, 'labels'], POD_LIMITS.entries + 1);
  if (!bucket) return undefined;
  if (bucket.truncated) trimmed.add('labels');
  const entries = bucket.entries.filter(([k]) => !CONTAINERD_OWN.test(k)).map(([k, v]) => [k, utf8(v)] as [string, unknown]);
  const labels = cleanStringMap(entries, 'labels', trimmed);
  return { labels, annotations: Object.create(null) as Record<string, string>, trimmed: [...trimmed].sort() };
}

/** containerd's namespace of a bundle under <state>/io.containerd.runtime.v2.task/<ns>/<id>. */
export function containerdNamespaceOfBundle(bundle: string): string | undefined {
  const m = /\/io\.containerd\.runtime\.v2\.task\/([^/]+)\/[^/]+\/?$/.exec(bundle);
  return m?.[1];
}

export { BoltError };
