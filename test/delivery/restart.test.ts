// The sensor is SIGKILLed mid-stream while the collector is frozen (nothing acknowledged for a
// while, so the spool holds events), then started again on the same spool: the events of the
// killed run are sent under its own instance id, nothing acknowledged is lost, nothing written
// twice, and the new run (whose seq starts at 1 again) does not collide with the old one.

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { collected, killAll, sleep, spawnTs, tally, tmpDir, removeTmpDirs } from './helpers';

afterEach(killAll);
afterAll(removeTmpDirs);

describe('sensor killed and restarted on the same spool', () => {
  it('delivers the killed run’s spooled events once, and the new run’s', async () => {
    const out = tmpDir('out');
    const spool = tmpDir('spool');
    const col = spawnTs('collector-proc.ts', { listen: '127.0.0.1:0', outDir: out });
    const { port } = (await col.waitLine((l) => 'listening' in l)) as { port: number };
    const url = `grpc://127.0.0.1:${port}`;
    const d1 = spawnTs('driver.ts', { outputs: [url], spoolDir: spool, count: 100_000, rate: 2000, run: 'r1', ackTimeoutMs: 60_000 });
    await d1.waitLine((l) => (l.delivered as number) > 2000);
    col.child.kill('SIGSTOP'); // a collector that takes the data and answers nothing
    await sleep(2500);
    const beforeKill = Date.now();
    d1.child.kill('SIGKILL');
    await d1.exited;
    // What the driver had offered a second before the kill had reached write(2) (a tick or two
    // after offer; a second leaves room for a loaded machine): it must all arrive.
    const safe = d1.lines.filter((l) => (l.t as number) <= beforeKill - 1000).at(-1)!;
    const acked = d1.lines.at(-1)!.delivered as number;
    expect(safe.offered as number).toBeGreaterThan(acked + 1000); // the spool held unacknowledged events
    col.child.kill('SIGCONT');

    const d2 = spawnTs('driver.ts', { outputs: [url], spoolDir: spool, count: 3000, rate: 3000, run: 'r2' });
    const closed = await d2.waitLine((l) => l.what === 'closed', 60_000);
    expect(closed.spooled).toBe(0);
    expect(closed.dropped).toEqual({});
    expect(closed.delivered as number).toBeGreaterThanOrEqual(3000 + (safe.offered as number) - acked);

    const counts = tally(collected(out));
    const dup = [...counts].filter(([, n]) => n > 1).map(([k]) => k);
    expect(dup).toEqual([]);
    const missing = (run: string, n: number) => Array.from({ length: n }, (_, i) => `${run}/${i + 1}`).filter((k) => !counts.has(k));
    expect(missing('r1', safe.offered as number)).toEqual([]);
    expect(missing('r2', 3000)).toEqual([]);
    col.child.kill('SIGTERM');
    expect(await col.exited).toBe(0);
  });
});
