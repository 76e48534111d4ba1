// `ctrwatch run … --check` in this process, its output held back: an option's accepted and
// refused values, and the option named in the refusal.

import { expect, vi } from 'vitest';
import { main } from '../../src/cli';

/** Each of `ok` passes `run --check`; each of `bad` fails it, the error naming `flag`. */
export async function checkRunOption(flag: string, ok: string[], bad: string[]): Promise<void> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err: string[] = [];
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    for (const v of ok) expect(await main(['run', v, '--check', '--log-level', 'silent']), v).toBe(0);
    for (const v of bad) {
      err.length = 0;
      expect(await main(['run', v, '--check', '--log-level', 'silent']), v).not.toBe(0);
      expect(err.join(''), v).toContain(flag);
    }
  } finally {
    out.mockRestore();
    e.mockRestore();
  }
}
