import { existsSync } from 'node:fs';
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
