import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import { CtrwatchProcess } from '../support/ctrwatch';
import { RuntimeLab } from '../support/runtimes';
import { freePort } from '../support/net';
import { expectSilenceAfterStop, nodeLines } from '../support/collector-out';

const BIN = join(__dirname, '../../bin/ctrwatch');

const collectorLines = (out: string) => nodeLines(join(out, hostname()));

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
        await expectSilenceAfterStop(join(dir, 'out', hostname()), () => cw!.stop(), 20_000);
      } finally {
        await cw?.stop();
        collector?.kill('SIGTERM');
        if (collector && collector.exitCode === null) await new Promise((r) => collector!.once('exit', r));
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  },
);
