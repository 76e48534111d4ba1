// The entry of the single executable (`make package`: Node's single executable application).
// The executable carries the bundled JavaScript, the addon (with the BPF object built into it),
// events.proto, the OTLP protos and package.json as assets. The addon must be a file for
// dlopen and protobufjs reads protos from files: they are unpacked into a new private directory
// (mode 0700, a random name) and removed again when the process exits. /run comes first for
// root: /tmp is often mounted noexec, where dlopen fails.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import * as sea from 'node:sea';
import { setPackageRoot } from './paths';

/** The name of the asset that lists the others (relative paths under the package root). */
export const SEA_INDEX = 'files.json';

function privateDir(): string {
  const bases = process.getuid?.() === 0 ? ['/run/ctrwatch', tmpdir()] : [tmpdir()];
  let last: unknown;
  for (const base of bases) {
    try {
      mkdirSync(base, { recursive: true, mode: 0o700 });
      return mkdtempSync(join(base, 'sea-'));
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`ctrwatch: no directory to unpack into (${bases.join(', ')}): ${(last as Error).message}`);
}

/** Unpack the assets; returns the directory (the package root for the rest of the run). */
export function unpack(): string {
  const files = JSON.parse(sea.getAsset(SEA_INDEX, 'utf8')) as string[];
  const dir = privateDir();
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (const rel of files) {
    const to = join(dir, normalize(rel));
    if (!to.startsWith(dir + '/')) throw new Error(`ctrwatch: asset ${rel} outside the package`);
    mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
    writeFileSync(to, Buffer.from(sea.getAsset(rel)), { mode: 0o600 });
  }
  mkdirSync(join(dir, 'bpf'), { mode: 0o700 }); // packageRoot()'s marker
  return dir;
}

function start(): void {
  if (!sea.isSea()) {
    process.stderr.write('ctrwatch: sea.js runs inside the single executable only; use bin/ctrwatch\n');
    process.exit(2);
  }
  setPackageRoot(unpack());
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- after setPackageRoot: cli.ts loads protos and the addon from there
  const { main } = require('./cli') as typeof import('./cli');
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`ctrwatch: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

start();
