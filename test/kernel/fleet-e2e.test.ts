import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import { CtrwatchProcess } from '../support/ctrwatch';
import { RuntimeLab } from '../support/runtimes';
import { freePort } from '../support/net';
import { expectSilenceAfterStop, nodeLines, waitNodeLines } from '../support/collector-out';

const BIN = join(__dirname, '../../bin/ctrwatch');

/** nats-server with JetStream, a real sensor publishing to it, and `ctrwatch collect --from` draining it into dir/out. */
class Fleet {
  readonly procs: ChildProcess[] = [];
  cw?: CtrwatchProcess;
  readonly out: string;
  private constructor(readonly dir: string) {
    this.out = join(dir, 'out', hostname());
  }

  static async start(sensorArgs: string[] = []): Promise<Fleet> {
    const f = new Fleet(mkdtempSync(join(tmpdir(), 'cw-fleet-')));
    const port = await freePort();
    f.procs.push(spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(f.dir, 'js')], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 500));
    f.cw = await CtrwatchProcess.start([
      '--output',
      'stdout',
      '--output',
      `nats://127.0.0.1:${port}/ctrwatch.events?stream=CTRWATCH`,
      '--spool-dir',
      join(f.dir, 'spool'),
      '--state-dir',
      join(f.dir, 'state'),
      ...sensorArgs,
    ]);
    const collect = [BIN, 'collect', '--from', `nats://127.0.0.1:${port}/CTRWATCH`, '--out', join(f.dir, 'out')];
    f.procs.push(spawn(process.execPath, collect, { stdio: 'ignore' }));
    return f;
  }

  async stop(): Promise<void> {
    await this.cw?.stop();
    for (const p of this.procs.reverse()) {
      if (p.exitCode === null) {
        p.kill('SIGTERM');
        await new Promise((r) => p.once('exit', r));
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe.runIf(canRunKernelTests)('a real sensor ships to NATS JetStream and ctrwatch collect drains it', () => {
  it('a real container arrives through the stream, once', async () => {
    let fleet: Fleet | undefined;
    const lab = await RuntimeLab.open();
    try {
      fleet = await Fleet.start();
      const c = await lab.start('crun', { args: ['/bin/sleep', '300'] });
      const st = await fleet.cw!.waitFor((e) => e.containerStarted?.container?.id === c.id);
      const mine = (l: Record<string, any>[]) => l.filter((e) => e.containerStarted?.container?.id === c.id);
      await waitNodeLines(fleet.out, (l) => mine(l).length > 0, 20_000);
      const started = mine(nodeLines(fleet.out));
      expect(started).toHaveLength(1);
      expect(started[0]).toEqual(st);
      await lab.stop(c);
    } finally {
      await fleet?.stop();
      await lab.close();
    }
  }, 120_000);

  it('the JetStream collector raises sensorSilent when a sensor stops sending its stats', async () => {
    let fleet: Fleet | undefined;
    try {
      fleet = await Fleet.start(['--stats-interval-s', '1']);
      await expectSilenceAfterStop(fleet.out, () => fleet!.cw!.stop(), 30_000);
    } finally {
      await fleet?.stop();
    }
  }, 120_000);
});
