import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The package's root folder, from src/ (vitest, tsx) or dist/src/ (built). */
export function packageRoot(): string {
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
