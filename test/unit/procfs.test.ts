import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readProc } from '../../src/process/procfs';

describe('readProc', () => {
  it('reads a live process, and says null for a pid no process has', () => {
    const me = readProc(process.pid);
    expect(me?.tgid).toBe(process.pid);
    expect(me?.startNs).toBeGreaterThan(0n);
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    expect(readProc(pidMax + 1)).toBeNull();
  });

  it('keeps at most 64 KiB of a command line, which the process chose', async () => {
    const long = 'x'.repeat(100_000);
    const child = spawn('/bin/sh', ['-c', 'read x', 'sh', long], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', () => resolve());
        child.once('error', reject);
      });
      // sh has exec'd once its own cmdline shows the argument.
      let p = readProc(child.pid!);
      for (let i = 0; i < 100 && !p?.argv.includes('read x'); i++) {
        await new Promise((r) => setTimeout(r, 20));
        p = readProc(child.pid!);
      }
      expect(p?.argv.slice(0, 4)).toEqual(['/bin/sh', '-c', 'read x', 'sh']);
      const bytes = p!.argv.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
      expect(bytes).toBeLessThanOrEqual(64 * 1024 + 1);
      expect(p!.argv[4].length).toBeGreaterThan(60_000);
      expect(p!.argv[4].length).toBeLessThan(long.length);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
