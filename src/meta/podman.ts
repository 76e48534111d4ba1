// Podman's container storage (containers/storage), read from the graph root (not from podman):
//   <graphroot>/<driver>-containers/containers.json        every container: id, names, image id,
//                                                          metadata (a JSON string: image-name, name, created-at)
//   <graphroot>/<driver>-containers/<id>/userdata/         the OCI bundle: config.json (see oci-config.ts)
//   <graphroot>/<driver>-images/images.json                every image: id, manifest digest, names
// graphroot is /var/lib/containers/storage for root, driver usually "overlay". Podman writes
// containers.json and the bundle before it runs the OCI runtime. Labels live in libpod's own
// database (bolt_state.db or db.sql), which is not read here.
// containers.json grows with the number of containers: callers that look up often should keep
// the parsed list and re-read when the file's mtime changes.

import * as path from 'node:path';
import { readFileUnder } from './safe-read';
import { rfc3339ToUnixNano } from './runtime-state';

export const PODMAN_LIST_MAX_BYTES = 32 * 1024 * 1024;
const MAX_METADATA_CHARS = 64 * 1024;

export class PodmanMetaError extends Error {
  override readonly name = 'PodmanMetaError';
  constructor(
    readonly file: string,
    readonly reason: 'malformed-json' | 'wrong-type' | 'bad-id' | 'not-found',
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${reason}: ${detail}`, options);
  }
}

export interface PodmanStorageContainer {
  id: string;
  names: string[];
  /** Image id (64 hex, no "sha256:"). */
  imageId: string;
  /** The image as the user named it, from the entry's metadata ("image-name"). */
  imageName?: string;
  created?: string;
  createdUnixNano?: bigint;
}

export interface PodmanStorageImage {
  id: string;
  /** Manifest digest, "sha256:<hex>". */
  digest?: string;
  names: string[];
}

export interface PodmanContainerMeta {
  id: string;
  name: string;
  imageId: string;
  imageName?: string;
  imageDigest?: string;
  created?: string;
  createdUnixNano?: bigint;
  /** The OCI bundle directory (holds config.json). */
  bundleDir: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseArray(buf: Buffer, file: string): unknown[] {
  let doc: unknown;
  try {
    doc = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new PodmanMetaError(file, 'malformed-json', (err as Error).message, { cause: err });
  }
  if (!Array.isArray(doc)) throw new PodmanMetaError(file, 'wrong-type', 'top level must be an array');
  return doc;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** Entries that are not objects with a 64-hex id are skipped (and counted): one bad entry must not hide the rest. */
export function parsePodmanContainersJson(
  buf: Buffer,
  file = 'containers.json',
): { containers: PodmanStorageContainer[]; skipped: number } {
  const containers: PodmanStorageContainer[] = [];
  let skipped = 0;
  for (const e of parseArray(buf, file)) {
    if (!isObj(e) || typeof e.id !== 'string' || !HEX64.test(e.id)) {
      skipped++;
      continue;
    }
    const c: PodmanStorageContainer = { id: e.id, names: strings(e.names), imageId: typeof e.image === 'string' ? e.image : '' };
    if (typeof e.metadata === 'string' && e.metadata.length <= MAX_METADATA_CHARS) {
      try {
        const md: unknown = JSON.parse(e.metadata);
        if (isObj(md) && typeof md['image-name'] === 'string') c.imageName = md['image-name'];
      } catch {
        // metadata is podman's free-form string; a bad one only loses the image name
      }
    }
    if (typeof e.created === 'string') {
      c.created = e.created;
      const ns = rfc3339ToUnixNano(e.created);
      if (ns !== undefined) c.createdUnixNano = ns;
    }
    containers.push(c);
  }
  return { containers, skipped };
}

export function parsePodmanImagesJson(buf: Buffer, file = 'images.json'): { images: PodmanStorageImage[]; skipped: number } {
  const images: PodmanStorageImage[] = [];
  let skipped = 0;
  for (const e of parseArray(buf, file)) {
    if (!isObj(e) || typeof e.id !== 'string' || !HEX64.test(e.id)) {
      skipped++;
      continue;
    }
    const img: PodmanStorageImage = { id: e.id, names: strings(e.names) };
    if (typeof e.digest === 'string') img.digest = e.digest;
    images.push(img);
  }
  return { images, skipped };
}

/** The OCI bundle directory of a podman container. */
export function podmanBundleDir(graphRoot: string, id: string, driver = 'overlay'): string {
  if (!HEX64.test(id)) throw new PodmanMetaError(id.slice(0, 80), 'bad-id', 'not 64 hex digits');
  return path.join(graphRoot, `${driver}-containers`, id, 'userdata');
}

/** Name, image and bundle of podman container `id` under `graphRoot`, read without following links. */
export function readPodmanContainer(graphRoot: string, id: string, driver = 'overlay'): PodmanContainerMeta {
  const bundleDir = podmanBundleDir(graphRoot, id, driver);
  const cRel = `${driver}-containers/containers.json`;
  const { containers } = parsePodmanContainersJson(
    readFileUnder(graphRoot, cRel, { maxBytes: PODMAN_LIST_MAX_BYTES }),
    path.join(graphRoot, cRel),
  );
  const c = containers.find((x) => x.id === id);
  if (!c) throw new PodmanMetaError(path.join(graphRoot, cRel), 'not-found', `no container ${id}`);
  const meta: PodmanContainerMeta = { id, name: c.names[0] ?? '', imageId: c.imageId, bundleDir };
  if (c.created !== undefined) meta.created = c.created;
  if (c.createdUnixNano !== undefined) meta.createdUnixNano = c.createdUnixNano;
  if (c.imageName !== undefined) meta.imageName = c.imageName;
  if (c.imageId) {
    const iRel = `${driver}-images/images.json`;
    const { images } = parsePodmanImagesJson(
      readFileUnder(graphRoot, iRel, { maxBytes: PODMAN_LIST_MAX_BYTES }),
      path.join(graphRoot, iRel),
    );
    const img = images.find((x) => x.id === c.imageId);
    if (img?.digest) meta.imageDigest = img.digest;
    if (meta.imageName === undefined && img?.names[0]) meta.imageName = img.names[0];
  }
  return meta;
}
