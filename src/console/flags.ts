// The console's `ctrwatch collect` flags (--ui and its database's), checked with clear errors.

import * as path from 'node:path';
import { unpackedRoot } from '../paths';

/** A bad console flag: `ctrwatch collect` reports it as a usage error. */
export class ConsoleFlagError extends Error {
  override name = 'ConsoleFlagError';
}

export const CONSOLE_FLAGS = {
  ui: { type: 'string' },
  'ui-db': { type: 'string' },
  'ui-max-age': { type: 'string' },
  'ui-max-mb': { type: 'string' },
} as const;

export interface ConsoleFlags {
  listen: string;
  dbFile: string;
  maxAgeMs: number;
  maxBytes: number;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "30m", "12h", "7d" → ms. */
export function parseAge(v: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(v);
  if (!m || Number(m[1]) === 0)
    throw new ConsoleFlagError(`--ui-max-age must be a positive whole number and a unit (s, m, h, d), e.g. 7d; got '${v}'`);
  return Number(m[1]) * UNITS[m[2]];
}

type Values = { [K in keyof typeof CONSOLE_FLAGS]?: string };

/** undefined when --ui is not given (its companions then are an error). */
export function consoleFlags(v: Values, outDir: string | undefined): ConsoleFlags | undefined {
  if (!v.ui) {
    const stray = (['ui-db', 'ui-max-age', 'ui-max-mb'] as const).filter((k) => v[k] !== undefined);
    if (stray.length) throw new ConsoleFlagError(`--${stray[0]} needs --ui HOST:PORT`);
    return undefined;
  }
  // The page's files and SQLite's binding are read from the source install: the single
  // executable (and the .deb made from it) does not carry them yet.
  if (unpackedRoot())
    throw new ConsoleFlagError(
      '--ui: the web console is not in the single executable or the .deb yet; run `ctrwatch collect --ui` from a source install (make build)',
    );
  if (!/^(\[[^\]]+\]|[^:[\]]*):\d{1,5}$/.test(v.ui)) throw new ConsoleFlagError(`--ui must be HOST:PORT, got '${v.ui}'`);
  const mb = v['ui-max-mb'];
  if (mb !== undefined && (!/^\d{1,7}$/.test(mb) || Number(mb) < 1))
    throw new ConsoleFlagError(`--ui-max-mb must be a positive whole number of MiB, got '${mb}'`);
  const dbFile = v['ui-db'] ?? (outDir ? path.join(outDir, 'console.sqlite') : undefined);
  if (!dbFile) throw new ConsoleFlagError('--ui needs --ui-db FILE or --out DIR');
  return {
    listen: v.ui,
    dbFile,
    maxAgeMs: v['ui-max-age'] === undefined ? 7 * 86_400_000 : parseAge(v['ui-max-age']),
    maxBytes: (mb === undefined ? 1024 : Number(mb)) * 2 ** 20,
  };
}
