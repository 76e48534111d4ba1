import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './runtime-exec';

/** The image every runtime runs, built from busybox-static: no registry needed. */
export const IMAGE_REF = 'localhost/busybox:latest';

const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ls', 'cat', 'sleep', 'ps', 'echo', 'id', 'mount', 'hostname', 'true', 'false', 'nsenter', 'unshare', 'chroot'];
const DIRS = ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp', 'root', 'host', 'run', 'var/run'];

export interface ImageFiles {
  /** A real directory (runc/crun refuse a symlinked rootfs). */
  rootfs: string;
  /** Plain tar of rootfs: `podman import`, `docker import`. */
  rootfsTar: string;
  /** `docker save` format: `ctr image import`. */
  dockerArchive: string;
}

/** Builds the rootfs, its tar and a docker-archive under dir. */
export async function buildImage(dir: string): Promise<ImageFiles> {
  const rootfs = join(dir, 'rootfs');
  for (const d of DIRS) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');

  const rootfsTar = join(dir, 'rootfs.tar');
  await run(['tar', '-C', rootfs, '-cf', rootfsTar, '.']);
  const dockerArchive = await buildDockerArchive(dir, rootfsTar);
  return { rootfs, rootfsTar, dockerArchive };
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * A one-layer `docker save` archive: manifest.json, the image config, <diff id>/layer.tar; by
 * default tagged IMAGE_REF with /bin/sh as its command.
 */
export async function buildDockerArchive(
  dir: string,
  layerTar: string,
  opts: { refs?: string[]; cmd?: string[]; name?: string } = {},
): Promise<string> {
  const staging = join(dir, `${opts.name ?? 'docker'}-archive`);
  const diffId = sha256(readFileSync(layerTar));
  const config = JSON.stringify({
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config: { Cmd: opts.cmd ?? ['/bin/sh'], Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created_by: 'busybox-static' }],
  });
  const configName = `${sha256(config)}.json`;
  const layerName = `${diffId}/layer.tar`;
  mkdirSync(join(staging, diffId), { recursive: true });
  copyFileSync(layerTar, join(staging, layerName));
  writeFileSync(join(staging, configName), config);
  writeFileSync(
    join(staging, 'manifest.json'),
    JSON.stringify([{ Config: configName, RepoTags: opts.refs ?? [IMAGE_REF], Layers: [layerName] }]),
  );
  const out = join(dir, opts.name ? `${opts.name}-docker-archive.tar` : 'busybox-docker-archive.tar');
  // Name members explicitly: no "./" prefixes, no directory entries.
  await run(['tar', '-C', staging, '-cf', out, 'manifest.json', configName, layerName]);
  return out;
}
