import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readOciConfig } from '../../src/meta/oci-config';
import {
  parsePodmanContainersJson,
  parsePodmanImagesJson,
  PodmanMetaError,
  podmanBundleDir,
  readPodmanContainer,
} from '../../src/meta/podman';
import { MetaReadError } from '../../src/meta/safe-read';

const GRAPH_ROOT = path.join(__dirname, '../fixtures/meta/podman-root');
const ID = 'a35c54ec232ea12cbce8abfcbe6503a6fe9e6a288d95ffa9abf3e8560283be18';
const PRIV_ID = '0062469f41e134460b2d8fd5f328966f723eb0e260aaecfb7df494910a5b919d';
const IMAGE_ID = '1462cbd0efda8ee97b6ebf2311da0aeb13df548d056d3d4c3b7205dab67315c4';

describe('recorded podman 4.3 storage (<graphroot>/overlay-containers, overlay-images)', () => {
  it('name, image name, image id and digest, created, bundle', () => {
    expect(readPodmanContainer(GRAPH_ROOT, ID)).toEqual({
      id: ID,
      name: 'cw-meta-podman',
      imageId: IMAGE_ID,
      imageName: 'localhost/busybox:latest',
      imageDigest: 'sha256:94dcb488b72927e1fb67f08b9aa2bf0d3b668dd559e7df7a587b1f95777ac602',
      created: '2026-11-29T03:41:18.133033865Z',
      createdUnixNano: 1795923678133033865n,
      bundleDir: path.join(GRAPH_ROOT, 'overlay-containers', ID, 'userdata'),
    });
    expect(readPodmanContainer(GRAPH_ROOT, PRIV_ID).name).toBe('cw-meta-podman-priv');
  });

  it('the bundle dir holds the OCI config.json', () => {
    const c = readOciConfig(podmanBundleDir(GRAPH_ROOT, PRIV_ID), { isHostNamespace: () => false });
    expect(c.cgroupsPath).toBe(`/libpod_parent/libpod-${PRIV_ID}`);
    expect(c.privileged).toBe(true);
  });

  it('an unknown id is not-found', () => {
    expect(() => readPodmanContainer(GRAPH_ROOT, 'f'.repeat(64))).toThrow(PodmanMetaError);
    expect(() => readPodmanContainer(GRAPH_ROOT, '../x')).toThrow(/bad-id/);
  });

  it('images.json gives names and digests', () => {
    const { images } = parsePodmanImagesJson(fs.readFileSync(path.join(GRAPH_ROOT, 'overlay-images/images.json')));
    expect(images).toEqual([
      {
        id: IMAGE_ID,
        digest: 'sha256:94dcb488b72927e1fb67f08b9aa2bf0d3b668dd559e7df7a587b1f95777ac602',
        names: ['localhost/busybox:latest'],
      },
    ]);
  });
});

describe('hostile podman storage', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-podman-'));
    fs.mkdirSync(path.join(root, 'overlay-containers'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('bad entries are skipped and counted, the good ones kept; bad metadata loses only the image name', () => {
    const doc = [
      null,
      { id: 'short' },
      { id: ID, names: ['a', 5], image: IMAGE_ID, metadata: '{not json', created: 7 },
      { id: PRIV_ID, names: 'x', image: 3, metadata: JSON.stringify({ 'image-name': 'img' }) },
    ];
    const { containers, skipped } = parsePodmanContainersJson(Buffer.from(JSON.stringify(doc)));
    expect(skipped).toBe(2);
    expect(containers).toEqual([
      { id: ID, names: ['a'], imageId: IMAGE_ID },
      { id: PRIV_ID, names: [], imageId: '', imageName: 'img' },
    ]);
  });

  it('a top level that is not an array, or malformed JSON, is a typed error', () => {
    expect(() => parsePodmanContainersJson(Buffer.from('{}'))).toThrow(/wrong-type/);
    expect(() => parsePodmanImagesJson(Buffer.from('[{'))).toThrow(/malformed-json/);
  });

  it('a symlinked containers.json is refused', () => {
    fs.symlinkSync(path.join(GRAPH_ROOT, 'overlay-containers/containers.json'), path.join(root, 'overlay-containers/containers.json'));
    expect(() => readPodmanContainer(root, ID)).toThrow(MetaReadError);
  });
});
