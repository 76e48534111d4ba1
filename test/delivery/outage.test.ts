// The collector is killed while events keep flowing, and comes back: every event arrives, once.

import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { collected, killAll, sleep, spawnTs, tally, tmpDir, until, removeTmpDirs } from './helpers';

afterEach(killAll);
afterAll(removeTmpDirs);

function startCollector(out: string, port = 0) {
  const c = spawnTs('collector-proc.ts', { listen: `127.0.0.1:${port}`, outDir: out });
  return c;
}

describe('collector outage', () => {
  it('after the collector returns, every event is in its output exactly once', async () => {
    const out = tmpDir('out');
    const spool = tmpDir('spool');
    let col = startCollector(out);
    const { port } = (await col.waitLine((l) => 'listening' in l)) as { port: number };
    const N = 6000;
    const driver = spawnTs('driver.ts', { outputs: [`grpc://127.0.0.1:${port}`], spoolDir: spool, count: N, rate: 1500, run: 'r1' });
    await driver.waitLine((l) => (l.delivered as number) > 500);
    // Killed, not stopped: whatever it had not committed must be cut and sent again.
    col.child.kill('SIGKILL');
    await col.exited;
    const during = await driver.waitLine(
      (l) => (l.offered as number) > 4000 && (l.failures as Record<string, number>).unavailable > 0,
      20_000,
    );
    expect(during.spooled as number).toBeGreaterThan(1000);
    await sleep(500);
    col = startCollector(out, port);
    await col.waitLine((l) => 'listening' in l);
    const closed = await driver.waitLine((l) => l.what === 'closed', 60_000);
    expect(closed, JSON.stringify(closed) + driver.stderr.join('')).toMatchObject({ delivered: N });
    expect(closed.spooled).toBe(0);
    expect(closed.dropped).toEqual({});
    const counts = tally(collected(out));
    const missing: number[] = [];
    const twice: string[] = [];
    for (let s = 1; s <= N; s++) {
      const k = `r1/${s}`;
      const n = counts.get(k) ?? 0;
      if (n === 0) missing.push(s);
      if (n > 1) twice.push(k);
    }
    expect(missing).toEqual([]);
    expect(twice).toEqual([]);
    expect(counts.size).toBe(N);
    await until(() => driver.child.exitCode === 0, 5000, 'driver exit');
    col.child.kill('SIGTERM');
    expect(await col.exited).toBe(0);
    expect(path.basename(out)).toMatch(/ctrwatch-out/);
  });
});
