import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import { CtrwatchProcess } from '../support/ctrwatch';
import { RuntimeLab } from '../support/runtimes';
import { freePort } from '../support/net';

const BIN = join(__dirname, '../../bin/ctrwatch');

function collectorLines(out: string): Record<string, any>[] {
  const dir = join(out, hostname());
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^events-\d+\.jsonl$/.test(f))
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    );
}

/** `ctrwatch collect` listening on port, writing under dir/out. */
function startCollector(dir: string, port: number): ChildProcess {
  return spawn(process.execPath, [BIN, 'collect', '--listen', `127.0.0.1:${port}`, '--out', join(dir, 'out')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** A real sensor shipping to that collector (and printing to stdout, where the test reads it). */
function startShippingSensor(dir: string, port: number, extra: string[] = []): Promise<CtrwatchProcess> {
  return CtrwatchProcess.start([
    '--output',
    'stdout',
    '--output',
    `grpc://127.0.0.1:${port}`,
    ...extra,
    '--spool-dir',
    join(dir, 'spool'),
    '--state-dir',
    join(dir, 'state'),
  ]);
}

describe.runIf(canRunKernelTests)(
  'a real sensor ships to the reference collector (ctrwatch run --output grpc:// → ctrwatch collect)',
  () => {
    it('a container started by a real runtime arrives at the collector, once, as on stdout', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cw-e2e-'));
      const port = await freePort();
      let collector: ChildProcess | undefined;
      let cw: CtrwatchProcess | undefined;
      const lab = await RuntimeLab.open();
      try {
        collector = startCollector(dir, port);
        cw = await startShippingSensor(dir, port);
        const c = await lab.start('runc', { args: ['/bin/sleep', '300'] });
        const st = await cw.waitFor((e) => e.containerStarted?.container?.id === c.id);
        await lab.stop(c);
        await cw.waitFor((e) => e.containerExited?.container?.id === c.id);
        const end = Date.now() + 15_000;
        let got: Record<string, any>[] = [];
        while (Date.now() < end) {
          got = collectorLines(join(dir, 'out'));
          if (got.some((e) => e.containerExited?.container?.id === c.id)) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        const started = got.filter((e) => e.containerStarted?.container?.id === c.id);
        expect(started).toHaveLength(1);
        expect(started[0]).toEqual(st);
        expect(got.filter((e) => e.containerExited?.container?.id === c.id)).toHaveLength(1);
        expect(got[0].sensorReady).toBeDefined();
      } finally {
        await cw?.stop();
        collector?.kill('SIGTERM');
        if (collector && collector.exitCode === null) await new Promise((r) => collector!.once('exit', r));
        await lab.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);

    it('the collector raises sensorSilent when a sensor stops sending its stats', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cw-silent-'));
      const port = await freePort();
      let collector: ChildProcess | undefined;
      let cw: CtrwatchProcess | undefined;
      try {
        collector = startCollector(dir, port);
        cw = await startShippingSensor(dir, port, ['--stats-interval-s', '1']);
        const waitLines = async (pred: (l: Record<string, any>[]) => boolean, ms: number) => {
          const end = Date.now() + ms;
          for (;;) {
            const got = collectorLines(join(dir, 'out'));
            if (pred(got)) return got;
            if (Date.now() > end) throw new Error(`not seen in ${ms} ms; last lines: ${JSON.stringify(got.slice(-3))}`);
            await new Promise((r) => setTimeout(r, 200));
          }
        };
        // Two stats delivered: the collector knows the interval (1 s); no silence while they flow.
        await waitLines((l) => l.filter((e) => e.sensorStats).length >= 3, 20_000);
        expect(collectorLines(join(dir, 'out')).some((e) => e.sensorSilent)).toBe(false);
        const stoppedAt = Date.now();
        await cw.stop(); // the sensor is gone: its stats stop
        const got = await waitLines((l) => l.some((e) => e.sensorSilent), 15_000);
        const silent = got.filter((e) => e.sensorSilent);
        expect(silent).toHaveLength(1);
        expect(silent[0]).toMatchObject({ node: hostname(), bootId: expect.any(String) });
        // The interval as the collector measured it from the sensor's own stamps: 1 s, give or take the timer.
        expect(Math.abs(Number(silent[0].sensorSilent.intervalMs) - 1000)).toBeLessThan(100);
        expect(Number(silent[0].sensorSilent.silentForMs)).toBeGreaterThan(2000);
        expect(Date.now() - stoppedAt).toBeLessThan(15_000);
      } finally {
        await cw?.stop();
        collector?.kill('SIGTERM');
        if (collector && collector.exitCode === null) await new Promise((r) => collector!.once('exit', r));
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  },
);
