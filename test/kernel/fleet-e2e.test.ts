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
const lines = (dir: string) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.jsonl'))
        .sort()
        .flatMap((f) =>
          readFileSync(join(dir, f), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l)),
        )
    : [];

describe.runIf(canRunKernelTests)('a real sensor ships to NATS JetStream and ctrwatch collect drains it', () => {
  it('a real container arrives through the stream, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-fleet-'));
    const port = await freePort();
    const procs: ChildProcess[] = [];
    let cw: CtrwatchProcess | undefined;
    const lab = await RuntimeLab.open();
    try {
      const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'js')], { stdio: 'ignore' });
      procs.push(nats);
      await new Promise((r) => setTimeout(r, 500));
      cw = await CtrwatchProcess.start([
        '--output',
        'stdout',
        '--output',
        `nats://127.0.0.1:${port}/ctrwatch.events?stream=CTRWATCH`,
        '--spool-dir',
        join(dir, 'spool'),
        '--state-dir',
        join(dir, 'state'),
      ]);
      const c = await lab.start('crun', { args: ['/bin/sleep', '300'] });
      const st = await cw.waitFor((e) => e.containerStarted?.container?.id === c.id);
      const col = spawn(process.execPath, [BIN, 'collect', '--from', `nats://127.0.0.1:${port}/CTRWATCH`, '--out', join(dir, 'out')], {
        stdio: 'ignore',
      });
      procs.push(col);
      const end = Date.now() + 20_000;
      let got: Record<string, any>[] = [];
      while (Date.now() < end) {
        got = lines(join(dir, 'out', hostname()));
        if (got.some((e) => e.containerStarted?.container?.id === c.id)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const started = got.filter((e) => e.containerStarted?.container?.id === c.id);
      expect(started).toHaveLength(1);
      expect(started[0]).toEqual(st);
      await lab.stop(c);
    } finally {
      await cw?.stop();
      for (const p of procs.reverse()) {
        if (p.exitCode === null) {
          p.kill('SIGTERM');
          await new Promise((r) => p.once('exit', r));
        }
      }
      await lab.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('the JetStream collector raises sensorSilent when a sensor stops sending its stats', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-fleet-silent-'));
    const port = await freePort();
    const procs: ChildProcess[] = [];
    let cw: CtrwatchProcess | undefined;
    try {
      const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'js')], { stdio: 'ignore' });
      procs.push(nats);
      await new Promise((r) => setTimeout(r, 500));
      cw = await CtrwatchProcess.start([
        '--output',
        'stdout',
        '--output',
        `nats://127.0.0.1:${port}/ctrwatch.events?stream=CTRWATCH`,
        '--spool-dir',
        join(dir, 'spool'),
        '--state-dir',
        join(dir, 'state'),
        '--stats-interval-s',
        '1',
      ]);
      const col = spawn(process.execPath, [BIN, 'collect', '--from', `nats://127.0.0.1:${port}/CTRWATCH`, '--out', join(dir, 'out')], {
        stdio: 'ignore',
      });
      procs.push(col);
      const waitLines = async (pred: (l: Record<string, any>[]) => boolean, ms: number) => {
        const end = Date.now() + ms;
        for (;;) {
          const got = lines(join(dir, 'out', hostname()));
          if (pred(got)) return got;
          if (Date.now() > end) throw new Error(`not seen in ${ms} ms; last lines: ${JSON.stringify(got.slice(-3))}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      // Stats flowing: the collector learns the 1 s interval, and no silence is raised meanwhile.
      await waitLines((l) => l.filter((e) => e.sensorStats).length >= 3, 30_000);
      expect(lines(join(dir, 'out', hostname())).some((e) => e.sensorSilent)).toBe(false);
      const stoppedAt = Date.now();
      await cw.stop();
      const got = await waitLines((l) => l.some((e) => e.sensorSilent), 15_000);
      const silent = got.filter((e) => e.sensorSilent);
      expect(silent).toHaveLength(1);
      expect(silent[0]).toMatchObject({ node: hostname(), bootId: expect.any(String) });
      expect(Math.abs(Number(silent[0].sensorSilent.intervalMs) - 1000)).toBeLessThan(100);
      expect(Number(silent[0].sensorSilent.silentForMs)).toBeGreaterThan(2000);
      expect(Date.now() - stoppedAt).toBeLessThan(15_000);
    } finally {
      await cw?.stop();
      for (const p of procs.reverse()) {
        if (p.exitCode === null) {
          p.kill('SIGTERM');
          await new Promise((r) => p.once('exit', r));
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
