// What a collector (gRPC or JetStream) wrote for one node: DIR/<node>/events-NNNNNN.jsonl.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

/** The node's JSON lines, parsed, in file order. */
export function nodeLines(nodeDir: string): Record<string, any>[] {
  if (!existsSync(nodeDir)) return [];
  return readdirSync(nodeDir)
    .filter((f) => /^events-\d+\.jsonl$/.test(f))
    .sort()
    .flatMap((f) =>
      readFileSync(join(nodeDir, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    );
}

/** Waits until pred holds on the node's lines; throws after ms, naming the last lines. */
export async function waitNodeLines(
  nodeDir: string,
  pred: (l: Record<string, any>[]) => boolean,
  ms: number,
): Promise<Record<string, any>[]> {
  const end = Date.now() + ms;
  for (;;) {
    const got = nodeLines(nodeDir);
    if (pred(got)) return got;
    if (Date.now() > end) throw new Error(`not seen in ${ms} ms; last lines: ${JSON.stringify(got.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * A sensor sending stats every second to a collector writing nodeDir: while they flow no
 * sensorSilent is written; once `stop` ends the sensor, exactly one is, within 15 s, with the
 * interval the collector measured from the sensor's own stamps (1 s, give or take its timer).
 */
export async function expectSilenceAfterStop(nodeDir: string, stop: () => Promise<void>, statsWithinMs: number): Promise<void> {
  await waitNodeLines(nodeDir, (l) => l.filter((e) => e.sensorStats).length >= 3, statsWithinMs);
  expect(nodeLines(nodeDir).some((e) => e.sensorSilent)).toBe(false);
  const stoppedAt = Date.now();
  await stop();
  const got = await waitNodeLines(nodeDir, (l) => l.some((e) => e.sensorSilent), 15_000);
  const silent = got.filter((e) => e.sensorSilent);
  expect(silent).toHaveLength(1);
  expect(silent[0]).toMatchObject({ node: hostname(), bootId: expect.any(String) });
  expect(Math.abs(Number(silent[0].sensorSilent.intervalMs) - 1000)).toBeLessThan(100);
  expect(Number(silent[0].sensorSilent.silentForMs)).toBeGreaterThan(2000);
  expect(Date.now() - stoppedAt).toBeLessThan(15_000);
}
