#!/usr/bin/env node
// The single executable: the running Node (20.12 or later: assets) with the bundled sensor
// injected as a single executable application (node --experimental-sea-config, then postject
// from node_modules, pinned in package.json). Assets: the addon (the BPF object is built into
// it), events.proto, the OTLP protos and package.json; src/sea.ts unpacks them at start.
// Usage: node scripts/package/sea.mjs OUT_FILE   (after make build)
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = process.argv[2];
if (!out) {
  console.error('usage: sea.mjs OUT_FILE');
  process.exit(2);
}
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) {
  console.error(`sea: Node ${process.versions.node} cannot carry assets in a single executable (20.12 or later)`);
  process.exit(1);
}
const work = join(root, 'build', 'sea');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// One CommonJS file from the compiled tree (dist/src/sea.js → cli.js → every dependency).
await build({
  entryPoints: [join(root, 'dist', 'src', 'sea.js')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: join(work, 'bundle.js'),
  logLevel: 'warning',
  legalComments: 'none',
  // The require of an embedded main script loads built-in modules only; what the bundle still
  // requires at run time (optional modules probed in try/catch) goes through a real one.
  banner: { js: "var require = require('node:module').createRequire(__filename);" },
  logOverride: { 'require-resolve-not-external': 'silent' },
});

const files = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
const otlp = join(root, 'node_modules', '@opentelemetry', 'otlp-grpc-exporter-base');
const assets = [
  join(root, 'package.json'),
  join(root, 'build', 'Release', 'ctrwatch.node'),
  ...files(join(root, 'proto')).filter((f) => f.endsWith('.proto')),
  join(otlp, 'package.json'),
  ...files(join(otlp, 'build', 'protos')).filter((f) => f.endsWith('.proto')),
].map((f) => relative(root, f));
for (const a of assets) statSync(join(root, a)); // every one is there (make build)
writeFileSync(join(work, 'files.json'), JSON.stringify(assets));
const config = {
  main: join(work, 'bundle.js'),
  output: join(work, 'sea-prep.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: false,
  assets: Object.fromEntries([['files.json', join(work, 'files.json')], ...assets.map((a) => [a, join(root, a)])]),
};
writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')], { stdio: 'inherit' });

mkdirSync(dirname(out), { recursive: true });
rmSync(out, { force: true });
copyFileSync(process.execPath, out);
chmodSync(out, 0o755);
execFileSync(
  process.execPath,
  [
    join(root, 'node_modules', 'postject', 'dist', 'cli.js'),
    out,
    'NODE_SEA_BLOB',
    join(work, 'sea-prep.blob'),
    '--sentinel-fuse',
    'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  ],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
console.error(`sea: ${out} (${(statSync(out).size / 2 ** 20).toFixed(1)} MiB, Node ${process.versions.node})`);
