#!/usr/bin/env node
// The OCI image, without a registry: one layer, a Debian 12 root made locally by mmdebstrap
// (debian-root.sh) with the .deb installed in it (apt takes its Depends from Debian's archive),
// wrapped as a `docker save` archive, which both `docker load` and `ctr image import` read.
// Tagged ctrwatch:VERSION, the name deploy/kubernetes/ctrwatch.yaml runs.
// Usage: node scripts/package/image.mjs DEB OUT_TAR   (as root)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const [deb, out] = process.argv.slice(2).map((p) => p && resolve(p));
if (!deb || !out) {
  console.error('usage: image.mjs DEB OUT_TAR');
  process.exit(2);
}
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const tag = `ctrwatch:${version}`;
mkdirSync(dirname(out), { recursive: true });
const work = mkdtempSync(join(dirname(out), '.image-'));
try {
  const layer = join(work, 'layer.tar');
  execFileSync('bash', [join(here, 'debian-root.sh'), layer], {
    env: { ...process.env, DEBIAN_ROOT_INCLUDE: deb },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(layer)) hash.update(chunk);
  const diffId = hash.digest('hex');
  const config = JSON.stringify({
    architecture: execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim(),
    os: 'linux',
    created: new Date().toISOString(),
    config: {
      Entrypoint: ['/usr/bin/ctrwatch'],
      Cmd: ['run', '--policy=/etc/ctrwatch/policy.yaml', '--state-dir=/var/lib/ctrwatch'],
      Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
      Labels: { 'org.opencontainers.image.title': 'ctrwatch', 'org.opencontainers.image.version': version },
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created_by: `mmdebstrap bookworm minbase + ${deb.split('/').pop()}` }],
  });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  const layerName = `${diffId}/layer.tar`;
  mkdirSync(join(work, diffId));
  linkSync(layer, join(work, layerName));
  writeFileSync(join(work, configName), config);
  writeFileSync(join(work, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: [layerName] }]));
  writeFileSync(join(work, 'repositories'), JSON.stringify({ ctrwatch: { [version]: diffId } }));
  rmSync(out, { force: true });
  execFileSync('tar', ['-C', work, '-cf', out, 'manifest.json', 'repositories', configName, layerName]);
  console.error(`image: ${out} (${tag})`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
