import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let unpacked: string | undefined;

/** The single executable (sea.ts) unpacks its files into a directory: the package root from then on. */
export function setPackageRoot(dir: string): void {
  unpacked = dir;
}

/** Where the single executable unpacked its files, if it did. */
export function unpackedRoot(): string | undefined {
  return unpacked;
}

/** The package's root folder, from src/ (vitest, tsx) or dist/src/ (built), or where sea.ts unpacked it. */
export function packageRoot(): string {
  if (unpacked) return unpacked;
  let d = __dirname;
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'bpf'))) return d;
    d = dirname(d);
  }
  throw new Error(`ctrwatch: package root not found above ${__dirname}`);
}

/** The package's version, from its package.json ('unknown' when unreadable). */
export function sensorVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
